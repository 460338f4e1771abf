import type { TripEvidence } from '../judge/decide.js';
import { restoreRoute, takeSaved } from './persistence.js';
import type { RolloutPlan } from './plan.js';
import type { RouteCore } from './route-core.js';
import type { PersistedRoute, RouteEvent } from './types.js';

/**
 * Another replica's state for a route, at `generation`: taken when newer than this one's. A
 * rollback is applied first, as a trip is (weights before anything else), and recorded with
 * reason `peer`, the deciding replica and its reason in the evidence. With the same versions the
 * judge and its windows stay; otherwise it is a restore. Returns the event to publish locally
 * with cause `peer` (not added to the history, which is the peer's), null when there is none, or
 * false when the state was not newer.
 */
export function applyPeer<U>(core: RouteCore<U>, plan: RolloutPlan<U>, p: PersistedRoute, generation: number, by: string, force: boolean): RouteEvent | null | false {
  if (!force && generation <= core.generation) return false;
  const sameVersions = p.stable.revision === core.stable.revision && (p.candidate?.revision ?? null) === (core.candidate?.revision ?? null);
  const tripped = sameVersions && core.live && p.phase === 'rolled_back';
  if (tripped) core.cutCandidate();
  if (sameVersions) {
    plan.end();
    takeSaved(core, p);
    plan.restore(p.plan ?? null);
    core.applyTraffic();
  } else {
    restoreRoute(core, plan, p);
  }
  core.generation = generation;
  const latest = p.events[0];
  if (latest === undefined) return null;
  const event: RouteEvent = { ...latest, cause: 'peer', peerCause: latest.cause, message: `${latest.message} (applied from replica ${by})` };
  if (tripped && p.lastDecision !== null) {
    const evidence = { replica: by, reason: p.lastDecision.reason, ...(p.lastDecision.evidence ?? {}) } as unknown as TripEvidence;
    core.lastDecision = { reason: 'peer', at: core.wallIso(), message: `route ${core.name} rolled back (peer): replica ${by} decided ${p.lastDecision.reason}: ${p.lastDecision.message}`, evidence };
    event.evidence = evidence;
    event.message = core.lastDecision.message;
  }
  return event;
}
