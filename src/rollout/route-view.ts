import { answersView } from './answers-view.js';
import type { RolloutPlan } from './plan.js';
import type { RouteCore } from './route-core.js';
import type { RouteState } from './types.js';

/** The route's state as the admin API shows it (SPEC §6). */
export function routeView<U>(core: RouteCore<U>, plan: RolloutPlan<U>): RouteState {
  const now = core.now();
  const snap = core.judge?.snapshot(now) ?? null;
  const live = core.live;
  const weight = live ? (core.candidate as { weight: number }).weight : 0;
  const steps = core.config.steps;
  const bake = plan.bake;
  const remaining = bake.remainingMs();
  const endsAt = bake.endsAtWall === null ? null : new Date(bake.endsAtWall).toISOString();
  const stage = plan.stage;
  const stepLive = live && plan.stepIndex >= 0 && (stage === 'step' || stage === 'hold' || stage === 'waiting');
  return {
    name: core.name,
    phase: core.phase,
    weight,
    strategy: core.strategy,
    stable: { ...core.stable, healthy: core.health.stableHealthy, data: core.stable.data ?? null },
    candidate: core.candidate === null ? null : { ...core.candidate, weight, healthy: core.health.candidateShownHealthy, data: core.candidate.data ?? null },
    data: { snapshot: core.stable.data?.snapshot ?? null, restore: core.restore },
    step: stepLive
      ? {
          index: plan.stepIndex,
          weight: (steps[plan.stepIndex] as { weight: number }).weight,
          bakeEndsAt: stage === 'step' ? endsAt : null,
          count: steps.length,
        }
      : null,
    bake:
      live && remaining !== null && (stage === 'step' || stage === 'shadow' || stage === 'blueGreen')
        ? { stage, endsAt, remainingMs: Math.round(remaining) }
        : null,
    mirrorPercent: core.deps.picker.state.mirrorBp / 100,
    windows: core.windowsSource?.(core.stable.version, core.candidate?.version ?? null) ?? { stable: snap?.stable ?? core.stableWindow.snapshot(now, core.config.rollback.latency.quantiles), candidate: snap?.candidate ?? null },
    lastDecision: core.lastDecision,
    answers: answersView(core.config, core.judge?.signals ?? null, core.candidate !== null, now),
  };
}
