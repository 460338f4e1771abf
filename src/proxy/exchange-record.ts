import type { ResponseCheck } from '../checks/response-check.js';
import type { InFlightItem } from './inflight.js';
import type { FailureKind, Outcome, VersionRole } from './outcome.js';

/**
 * What an exchange records of its request: the outcome the sink reads, its links in the
 * in-flight list, and the shadow copy that goes with it. Exchange (exchange.ts) adds the work.
 */
export class ExchangeRecord implements Outcome, InFlightItem {
  readonly route: string;
  role: VersionRole;
  version: string;
  startedAt: number;
  readonly requestId: string;
  /** True on a candidate failure the client never saw: it was replayed on stable. */
  replayed = false;
  slowMask = 0;
  prev: InFlightItem | null = null;
  next: InFlightItem | null = null;
  status = 0;
  failure: FailureKind = 'none';
  latencyMs = 0;
  ttfbMs = Number.NaN;
  streaming = false;
  /** What the route's checks found of this answer; null on a route without checks. */
  check: ResponseCheck | null;
  /** Shadow: the copy of this request, told how stable did (and what it answered) when this exchange ends. */
  copy: { primaryEnded(latencyMs: number, answer: unknown): void } | null = null;
  /** Shadow: whether the copy is sent just before the client's request rather than just after. */
  copyFirst = false;
  /** Shadow: sends a copy of the request to the candidate along with the client's. */
  mirrorTo: ((method: string, headers: string[], body: Buffer | null) => void) | null = null;
  /**
   * With a replay on stable: whether a failure after the candidate may have received the request
   * is replayed too (its method is in the route's `replayMethods`). A request the candidate never
   * received (its connection refused, never opened) is replayed whatever its method.
   */
  replayIfReceived = true;

  constructor(route: string, role: VersionRole, version: string, startedAt: number, requestId: string, check: ResponseCheck | null) {
    this.route = route;
    this.role = role;
    this.version = version;
    this.startedAt = startedAt;
    this.requestId = requestId;
    this.check = check;
  }

  /** The replay of a failed candidate request: from now on the record is of stable's answer. */
  restartOnStable(version: string, now: number, check: ResponseCheck | null): void {
    this.slowMask = 0;
    this.role = 'stable';
    this.version = version;
    this.startedAt = now;
    this.status = 0;
    this.failure = 'none';
    this.ttfbMs = Number.NaN;
    this.streaming = false;
    this.replayed = false;
    this.check = check;
  }

  /** The answer began: its head came and, for an LLM stream, its first token. */
  get answered(): boolean {
    return !Number.isNaN(this.ttfbMs) && (this.check === null || this.check.firstToken);
  }

  /** The latency a judge takes of this answer: time to first token, else to first byte for a stream, else the whole. */
  judgedMs(): number {
    const ttft = this.check?.ttftMs ?? Number.NaN;
    if (!Number.isNaN(ttft)) return ttft;
    return this.streaming && !Number.isNaN(this.ttfbMs) ? this.ttfbMs : this.latencyMs;
  }
}
