import type { FailureKind, Outcome } from '../proxy/outcome.js';
import type { CountedFailure, SlidingWindow } from '../stats/window.js';

/** The latency a judge looks at: time to first token when a check measured it, else time to first byte for streams, else the whole answer. */
export function judgedLatency(o: Outcome): number {
  const check = o.check;
  if (check !== undefined && check !== null && !Number.isNaN(check.ttftMs)) return check.ttftMs;
  return o.streaming && !Number.isNaN(o.ttfbMs) ? o.ttfbMs : o.latencyMs;
}

export function countedFailure(kind: FailureKind): CountedFailure | null {
  return kind === 'none' || kind === 'aborted' ? null : kind;
}

/** Records a finished request in a window with no judge (stable's, while a route has no candidate). */
export function recordOutcome(w: SlidingWindow, o: Outcome, now: number): void {
  if (o.failure !== 'aborted') w.record(now, judgedLatency(o), countedFailure(o.failure));
}

