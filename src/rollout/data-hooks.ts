import type { RolloutPlan } from './plan.js';
import type { RouteCore } from './route-core.js';
import type { RestoreState, RouteEvent } from './types.js';

/** A data hook job's progress as the rollout sees it (hooks/job.ts has the whole job). */
export interface HookProgress extends RestoreState {
  event: 'beforeTraffic' | 'afterRollback' | 'afterPromote';
  revision: number;
}

/**
 * The candidate's beforeTraffic hooks ended (SPEC §9): done, it may take traffic (its plan starts
 * once it is healthy too); failed, it is rolled back with reason hook_failed having had no
 * request and no copy. Returns the rollback's reason sentence when it must be rolled back.
 */
export function beforeTrafficEnded<U>(core: RouteCore<U>, plan: RolloutPlan<U>, p: HookProgress): string | null {
  if (!core.live || core.candidate?.revision !== p.revision) return null;
  if (p.state === 'failed') return `candidate ${core.candidate.version}'s beforeTraffic hook failed after ${p.attempts} attempts (${p.lastError ?? 'no error given'}); it took no traffic`;
  if (p.state !== 'done' || core.health.dataReady) return null;
  core.health.dataReady = true;
  if (plan.stage === 'waiting' && core.health.candidateReady) plan.start(true);
  else core.applyTraffic();
  return null;
}

/** The history event of a job's progress; an afterRollback job's is the route's restore state. */
export function hookEvent<U>(core: RouteCore<U>, p: HookProgress, message: string): RouteEvent {
  if (p.event === 'afterRollback') {
    core.restore = { state: p.state, attempts: p.attempts, lastError: p.lastError, startedAt: p.startedAt, finishedAt: p.finishedAt };
  }
  return {
    route: core.name,
    type: 'hook',
    cause: p.state === 'failed' ? 'hook_failed' : 'config',
    at: core.wallIso(),
    message: `route ${core.name}: ${message}`,
    hook: { event: p.event, state: p.state, attempts: p.attempts, lastError: p.lastError },
  };
}
