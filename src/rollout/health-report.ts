import type { VersionRole } from '../proxy/outcome.js';
import type { RouteCore } from './route-core.js';
import type { RouteEvent } from './types.js';

/** What a health report may make the controller do. */
export interface HealthActions {
  emit(event: RouteEvent): void;
  /** The candidate's first pass: its plan starts (or its traffic comes back). */
  start(): void;
  rollback(why: string): void;
}

/**
 * A health check's result (SPEC §3 `healthCheck`), for the version it was about (a report about
 * a version the route no longer has is dropped). The candidate's first pass starts its plan;
 * `unhealthyAfter` failures in a row roll it back (`health_check`) whatever its weight. An
 * unhealthy stable has nothing to roll back to: it is reported (logged, notified), once.
 */
export function reportHealth<U>(core: RouteCore<U>, role: VersionRole, version: string, ok: boolean, detail: string, act: HealthActions): void {
  const name = core.name;
  const event = (message: string, to: RouteEvent['to']): RouteEvent => ({ route: name, type: 'health', cause: 'health_check', at: core.wallIso(), message, to });
  if (role === 'stable') {
    if (version !== core.stable.version) return;
    const change = core.health.report('stable', ok);
    if (change === 'stable_recovered') act.emit(event(`route ${name}: stable ${version} is healthy again`, { ...core.stable }));
    else if (change === 'stable_unhealthy') {
      const n = core.health.stableFailures;
      act.emit(event(`route ${name}: stable ${version} is unhealthy: ${n} health checks failed in a row (last: ${detail}); there is no other version to send its traffic to`, { ...core.stable }));
    }
    return;
  }
  const c = core.candidate;
  if (c === null || c.version !== version || core.phase === 'rolled_back') return;
  const change = core.health.report('candidate', ok);
  if (change === 'candidate_healthy') {
    act.emit(event(`route ${name}: candidate ${version} passed its health check`, { ...c }));
    act.start();
  } else if (change === 'candidate_failed') {
    act.rollback(`candidate ${version} failed ${core.health.candidateFailures} health checks in a row (last: ${detail})`);
  }
}
