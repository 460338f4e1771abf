import { trafficState } from '../traffic/picker.js';
import { HISTORY_LIMIT } from './revisions.js';
import type { RolloutPlan } from './plan.js';
import type { RouteCore } from './route-core.js';
import type { PersistedRoute } from './types.js';

/** The versions the config declares for this route. */
export function declaredVersions<U>(core: RouteCore<U>): PersistedRoute['declared'] {
  const c = core.config.candidate;
  return { stable: { version: core.config.stable.version, url: core.config.stable.url }, candidate: c === null ? null : { version: c.version, url: c.url } };
}

/** What survives a restart. */
export function persistRoute<U>(core: RouteCore<U>, plan: RolloutPlan<U>): PersistedRoute {
  return {
    declared: declaredVersions(core),
    phase: core.phase,
    stable: { ...core.stable },
    candidate: core.candidate === null ? null : { ...core.candidate },
    lastDecision: core.lastDecision,
    revisions: core.history.revisions.map((r) => ({ ...r })),
    events: core.history.events.slice(0, HISTORY_LIMIT),
    nextRevision: core.history.nextRevision,
    plan: plan.persisted(),
    restore: core.restore,
  };
}

/** A saved state's phase, versions, last decision and history (not its plan or traffic). */
export function takeSaved<U>(core: RouteCore<U>, p: PersistedRoute): void {
  core.phase = p.phase;
  core.stable = { ...p.stable };
  core.candidate = p.candidate === null ? null : { ...p.candidate };
  core.lastDecision = p.lastDecision;
  core.restore = p.restore ?? null;
  core.history.restore(p);
}

/**
 * Takes a saved state back (the config declared the same versions as when it was saved): the
 * phase, the versions, the weights, the plan with what was left of its bake, a rollback, the
 * history. A rolled-back candidate stays rolled back. Versions the data plane does not route to
 * yet get a handle; the ones it no longer needs are retired.
 */
export function restoreRoute<U>(core: RouteCore<U>, plan: RolloutPlan<U>, p: PersistedRoute): void {
  plan.end();
  const { picker, retire } = core.deps;
  const s = picker.state;
  const make = (v: { version: string; url: string }): U => core.makeUpstream(v, `route ${core.name}: cannot restore ${v.version} without a data plane`);
  let stableU = s.stable;
  if (p.stable.version !== s.stableLabel || p.stable.url !== core.stable.url) {
    stableU = make(p.stable);
    retire?.(s.stable);
  }
  let candidateU = s.candidate;
  if (p.candidate === null) {
    if (s.candidate !== null) retire?.(s.candidate);
    candidateU = null;
  } else if (p.candidate.version !== s.candidateLabel || p.candidate.url !== core.candidate?.url) {
    candidateU = make(p.candidate);
    if (s.candidate !== null) retire?.(s.candidate);
  }
  picker.state = trafficState(stableU, p.stable.version, candidateU, p.candidate?.version ?? null, 0, false);
  takeSaved(core, p);
  core.stableWindow = core.freshWindow();
  core.judge = p.candidate === null ? null : core.newJudge(p.candidate.version);
  plan.restore(p.plan ?? null);
  core.applyTraffic();
}

/**
 * The config declares other versions than the saved state knew: the config's versions are a
 * new deployment, numbered after every revision the route ever had (revisions are not reused).
 */
export function continueFrom<U>(core: RouteCore<U>, p: PersistedRoute): void {
  core.history.continueFrom(p, core.candidate === null ? [core.stable] : [core.stable, core.candidate]);
}
