import { RolloutRefusal, UnknownVersion } from '../errors.js';
import type { DataRef, Strategy } from '../shapes.js';
import { trafficState } from '../traffic/picker.js';
import { guard } from './phases.js';
import type { RolloutPlan } from './plan.js';
import type { CandidateState, RouteCore } from './route-core.js';
import type { Cause, RouteEvent } from './types.js';

/**
 * The moves that change which versions a route has: a new candidate, a promotion, a rollback to
 * a named revision. Each is checked against the phase table before it changes anything, swaps
 * the picker's state in one assignment, and returns the event for the controller to emit.
 */

export interface Deployment {
  version: string;
  url: string;
  weight: number;
  strategy: Strategy;
  data: DataRef | null;
}

/** A new candidate, the next revision; any candidate before it is replaced (rolled back or not). */
export function deploy<U>(core: RouteCore<U>, plan: RolloutPlan<U>, d: Deployment, cause: Cause): RouteEvent {
  if (core.deps.makeUpstream === undefined) throw new RolloutRefusal(`route ${core.name}: deployments need a data plane`);
  if (d.version === core.stable.version) throw new RolloutRefusal(`route ${core.name}: ${d.version} is the stable version`);
  const phase = guard('deploy', core.moveContext(d.strategy));
  plan.end();
  const s = core.deps.picker.state;
  const upstream = core.makeUpstream(d, '');
  core.deps.picker.state = trafficState(s.stable, s.stableLabel, upstream, d.version, 0, false);
  if (s.candidate !== null) core.deps.retire?.(s.candidate);
  const previous = core.candidate;
  if (previous !== null) core.history.setStatus(previous.revision, core.phase === 'rolled_back' ? 'rolled_back' : 'retired');
  const c = (core.candidate = { version: d.version, url: d.url, weight: d.weight, revision: core.history.take(), data: d.data });
  core.history.add(c, core.wallIso(), 'candidate');
  core.judge = core.newJudge(d.version);
  core.phase = phase;
  core.strategy = d.strategy;
  core.lastDecision = null;
  plan.begin(false);
  const how =
    d.strategy === 'shadow'
      ? `in shadow (${core.config.shadow.mirrorPercent}% of requests copied)`
      : d.strategy === 'blueGreen'
        ? 'blue-green (100% once healthy)'
        : `at ${c.weight}%${plan.stepIndex >= 0 ? ` (step 1 of ${core.config.steps.length})` : ''}`;
  const waiting = core.health.candidateHealthy ? '' : ', waiting for its first passing health check';
  return {
    route: core.name,
    type: 'deploy',
    cause,
    at: core.wallIso(),
    message: `route ${core.name}: candidate ${d.version} (revision ${c.revision}) deployed ${how}${waiting}`,
    from: previous,
    to: { ...c },
    weight: c.weight,
  };
}

/** The candidate becomes the stable version; the old stable's pool is released. */
export function promote<U>(core: RouteCore<U>, plan: RolloutPlan<U>, cause: Cause): RouteEvent {
  core.phase = guard('promote', core.moveContext());
  const c = core.candidate as CandidateState;
  plan.end();
  const s = core.deps.picker.state;
  core.deps.picker.state = trafficState(s.candidate as U, c.version, null, null, 0);
  core.deps.retire?.(s.stable);
  const from = core.stable;
  core.history.setStatus(from.revision, 'retired');
  core.history.setStatus(c.revision, 'stable');
  core.stable = { version: c.version, url: c.url, revision: c.revision, data: c.data ?? null };
  core.candidate = null;
  core.stableWindow = core.judge?.candidate ?? core.freshWindow();
  core.judge = null;
  core.health.promoted();
  const after = cause === 'schedule' ? ' after a clean schedule' : '';
  return {
    route: core.name,
    type: 'promote',
    cause,
    at: core.wallIso(),
    message: `route ${core.name}: ${c.version} (revision ${c.revision}) promoted to stable, replacing ${from.version}${after}`,
    from,
    to: { ...core.stable },
  };
}

/**
 * The revision with that label (or, failing that, that number) becomes stable and the route has
 * no candidate. Throws UnknownVersion when there is none.
 */
export function rollbackTo<U>(core: RouteCore<U>, plan: RolloutPlan<U>, version: string, cause: Cause): RouteEvent {
  const target = core.history.find(version);
  if (target === undefined) throw new UnknownVersion(`route ${core.name} has no version or revision ${version}`);
  const phase = guard('rollbackTo', core.moveContext());
  const s = core.deps.picker.state;
  let stableU: U;
  if (target.revision === core.stable.revision) stableU = s.stable;
  else if (core.candidate !== null && target.revision === core.candidate.revision && s.candidate !== null) stableU = s.candidate;
  else stableU = core.makeUpstream(target, `route ${core.name}: cannot bring back ${target.version} without a data plane`);
  core.deps.picker.state = trafficState(stableU, target.version, null, null, 0);
  core.phase = phase;
  plan.end();
  if (s.stable !== stableU) core.deps.retire?.(s.stable);
  if (s.candidate !== null && s.candidate !== stableU) core.deps.retire?.(s.candidate);
  const from = core.candidate ?? core.stable;
  if (core.candidate !== null && core.candidate.revision !== target.revision) core.history.setStatus(core.candidate.revision, 'rolled_back');
  if (core.stable.revision !== target.revision) {
    core.history.setStatus(core.stable.revision, 'retired');
    core.stableWindow = core.candidate?.revision === target.revision && core.judge !== null ? core.judge.candidate : core.freshWindow();
  }
  core.history.setStatus(target.revision, 'stable');
  core.stable = { version: target.version, url: target.url, revision: target.revision, data: target.data ?? null };
  core.candidate = null;
  core.judge = null;
  core.health.newStable();
  const at = core.wallIso();
  const message = `route ${core.name} rolled back (${cause}) to ${target.version} (revision ${target.revision})`;
  core.lastDecision = { reason: cause, at, message, evidence: null };
  return { route: core.name, type: 'rollback', cause, at, message, from: { ...from }, to: { ...core.stable }, weight: 0 };
}
