import type { Trip } from '../judge/decide.js';
import type { RouteJudge } from '../judge/route-judge.js';
import type { InFlight } from '../proxy/inflight.js';

/**
 * Counts requests still waiting for their answer that have passed the latency thresholds, as
 * soon as they pass them (a hanging candidate is judged before its timeouts end). Called by a
 * periodic sweep, never per request; walks each list from the oldest and stops at the first
 * request younger than every threshold. Returns the trip it caused, with its time.
 */
export function sweepInFlight(judge: RouteJudge | null, lists: { stable: InFlight; candidate: InFlight }, now: () => number): { trip: Trip; at: number } | null {
  if (judge === null) return null;
  const threshold = judge.smallestThreshold;
  if (!(threshold < Infinity)) return null;
  for (const role of ['stable', 'candidate'] as const) {
    for (let item = lists[role].head; item !== null; item = item.next) {
      const at = now();
      const age = at - item.startedAt;
      if (!(age > threshold)) break;
      if (item.answered) continue;
      const trip = judge.observeInFlight(role, age, item, at);
      if (trip !== null) return { trip, at };
    }
  }
  return null;
}
