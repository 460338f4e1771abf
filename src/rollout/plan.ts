import { BakeTimer, REAL_TIMERS } from './bake-timer.js';
import { allowed, TRANSITIONS } from './phases.js';
import type { RouteCore } from './route-core.js';
import type { PersistedPlan, Stage } from './types.js';

/** What the plan asks of the controller: the events it emits and the promotion at its end. */
export interface PlanHost {
  stepEvent(message: string, weight?: number): void;
  promote(cause: 'schedule'): void;
}

type BakeStage = 'shadow' | 'step' | 'blueGreen';

/**
 * A candidate's plan (SPEC §3 strategies): a health check gates the start; then shadow copies,
 * canary steps or the blue-green switch, each held for its bake on a timer; a step ends on
 * evidence, not on the clock alone. Where the rollout stands is its `stage`.
 */
export class RolloutPlan<U> {
  readonly #core: RouteCore<U>;
  readonly #host: PlanHost;
  readonly #bake: BakeTimer;
  stage: Stage | null = null;
  stepIndex = -1;
  /** The judge's candidate count when the current step began. */
  #stepStartCount = 0;
  /** A step's bake ended with no candidate request in it: the step ends on the next one. */
  awaitingTraffic = false;

  constructor(core: RouteCore<U>, host: PlanHost) {
    this.#core = core;
    this.#host = host;
    this.#bake = new BakeTimer(core.deps.timers ?? REAL_TIMERS, core.deps.now, core.deps.wallNow);
  }

  get bake(): BakeTimer {
    return this.#bake;
  }

  /** A new candidate's plan: wait for its health check, or start at once. */
  begin(announce: boolean): void {
    const core = this.#core;
    core.health.resetCandidate(core.config.healthCheck !== null, core.config.hooks.beforeTraffic.length > 0);
    this.awaitingTraffic = false;
    core.pausedFrom = null;
    this.stepIndex = -1;
    const c = core.candidate as { weight: number };
    if (core.strategy === 'shadow') {
      core.phase = 'shadowing';
      c.weight = 0;
    } else if (core.strategy === 'blueGreen') c.weight = 100;
    else if (core.config.steps.length > 0) {
      this.stepIndex = 0;
      c.weight = (core.config.steps[0] as { weight: number }).weight;
    }
    if (core.health.candidateReady) this.start(announce);
    else {
      this.stage = 'waiting';
      core.applyTraffic();
    }
  }

  /** The candidate is healthy: its strategy's first stage. */
  start(announce: boolean): void {
    const core = this.#core;
    const { config } = core;
    if (core.strategy === 'shadow') {
      this.stage = 'shadow';
      core.applyTraffic();
      this.#startBake(config.shadow.bakeMs, 'shadow');
    } else if (core.strategy === 'blueGreen') {
      this.stage = 'blueGreen';
      core.judge?.freezeStableBaseline(core.now());
      core.applyTraffic();
      this.#startBake(config.blueGreen.bakeMs, 'blueGreen');
      if (announce) this.#host.stepEvent(`candidate ${core.candidate?.version} takes 100% (blue-green); ${core.stable.version} stays the rollback target for ${formatMs(config.blueGreen.bakeMs)}`);
    } else if (this.stepIndex >= 0) {
      this.#enterStep(this.stepIndex, announce);
    } else {
      this.stage = 'hold';
      core.applyTraffic();
    }
  }

  /** Stops the plan: no clock, no stage. */
  end(): void {
    this.#bake.stop();
    this.stage = null;
    this.stepIndex = -1;
    this.awaitingTraffic = false;
    this.#core.pausedFrom = null;
  }

  /** The operator set a weight on a shadowing route: a canary from here, no shadow clock. */
  toCanary(): void {
    this.#bake.stop();
    if (this.stage !== 'waiting') this.stage = 'hold';
  }

  /** The candidate served a request: a step whose bake ended waiting for one ends now. */
  candidateServed(): void {
    if (this.awaitingTraffic && this.#core.phase === 'progressing') this.#bakeEnded();
  }

  /** A bake ran out without a trip: the plan's next move. */
  #bakeEnded(): void {
    const c = this.#core.candidate;
    if (c === null || this.#core.phase === 'rolled_back') return;
    if (this.stage === 'shadow') this.#shadowBaked(c.version);
    else if (this.stage === 'blueGreen') {
      if (this.#core.config.autoPromote) this.#host.promote('schedule');
      else {
        this.stage = 'hold';
        this.#host.stepEvent(`candidate ${c.version} passed its blue-green bake at 100%; waiting for a promote`);
      }
    } else if (this.stage === 'step') this.#stepBaked(c);
  }

  #shadowBaked(version: string): void {
    const core = this.#core;
    if (core.config.steps.length === 0) {
      this.stage = 'hold';
      this.#host.stepEvent(`candidate ${version} passed its shadow bake; waiting in shadowing for a weight or a promote`);
      return;
    }
    const ctx = core.moveContext();
    if (!allowed('shadowBaked', ctx)) return;
    core.strategy = 'canary';
    core.phase = TRANSITIONS.shadowBaked.to(ctx);
    if (core.pausedFrom !== null) core.pausedFrom = 'progressing';
    this.#host.stepEvent(`candidate ${version} passed its shadow bake; canary steps begin`);
    this.#enterStep(0, true);
  }

  /**
   * Where the judge can say so, a step ends on evidence, not on the clock alone: the candidate
   * must have served a request in this step, and `warmup` requests in all (before those, its
   * latency is not judged at all).
   */
  #stepBaked(c: { version: string; weight: number }): void {
    const { config, judge } = this.#core;
    const total = judge?.candidateSeen ?? 0;
    const inStep = total - this.#stepStartCount;
    const warmup = config.rollback.warmup;
    if (c.weight > 0 && (inStep === 0 || total < warmup)) {
      if (!this.awaitingTraffic) {
        this.awaitingTraffic = true;
        this.#host.stepEvent(
          `step ${this.stepIndex + 1}'s bake ended with too little evidence on candidate ${c.version} ` +
            `(${inStep} requests in the step, ${total} in all; the step ends once it has served one in the step and ${warmup} in all)`,
        );
      }
      return;
    }
    this.awaitingTraffic = false;
    const next = this.stepIndex + 1;
    if (next < config.steps.length) this.#enterStep(next, true);
    else if (config.autoPromote) this.#host.promote('schedule');
    else {
      this.stage = 'hold';
      this.#host.stepEvent(`the last step baked clean: candidate ${c.version} stays at ${c.weight}% until promoted`);
    }
  }

  #enterStep(index: number, announce: boolean): void {
    const core = this.#core;
    const step = core.config.steps[index] as { weight: number; bakeMs: number };
    const c = core.candidate as { weight: number; version: string };
    this.stage = 'step';
    this.stepIndex = index;
    this.awaitingTraffic = false;
    c.weight = step.weight;
    this.#stepStartCount = core.judge?.candidateSeen ?? 0;
    core.applyTraffic();
    this.#startBake(step.bakeMs, 'step');
    if (announce) this.#host.stepEvent(`step ${index + 1} of ${core.config.steps.length}: candidate ${c.version} at ${step.weight}% for ${formatMs(step.bakeMs)}`, step.weight);
  }

  #startBake(ms: number, stage: BakeStage): void {
    this.#bake.start(ms, this.#onBakeEnd(stage));
    if (this.#core.phase === 'paused') this.#bake.hold();
  }

  #onBakeEnd(stage: Stage): () => void {
    return () => {
      if (this.stage !== stage || this.#core.candidate === null || this.#core.phase === 'rolled_back') return;
      this.#bakeEnded();
    };
  }

  /** The plan as it is saved, or null when no candidate is under way. */
  persisted(): PersistedPlan | null {
    if (this.stage === null) return null;
    const core = this.#core;
    return {
      strategy: core.strategy,
      stage: this.stage,
      stepIndex: this.stepIndex,
      remainingMs: this.#bake.remainingMs(),
      healthy: core.health.candidateHealthy,
      pausedFrom: core.pausedFrom,
      awaitingTraffic: this.awaitingTraffic,
      dataReady: core.health.dataReady,
    };
  }

  /** A saved plan, with what was left of its bake; without one, the candidate holds. */
  restore(plan: PersistedPlan | null): void {
    const core = this.#core;
    if (plan !== null && core.live) {
      core.strategy = plan.strategy;
      this.stage = plan.stage;
      this.stepIndex = plan.stepIndex;
      core.health.candidateHealthy = plan.healthy;
      core.health.dataReady = plan.dataReady ?? true;
      core.pausedFrom = plan.pausedFrom;
      this.awaitingTraffic = plan.awaitingTraffic;
      this.#stepStartCount = core.judge?.candidateSeen ?? 0;
      if (plan.remainingMs !== null && plan.stage !== 'waiting' && plan.stage !== 'hold') {
        this.#bake.start(plan.remainingMs, this.#onBakeEnd(plan.stage));
        if (core.phase === 'paused') this.#bake.hold();
      }
    } else {
      core.health.candidateHealthy = core.config.healthCheck === null || core.phase === 'rolled_back';
      core.health.dataReady = true;
      if (core.live) this.stage = core.health.candidateHealthy ? 'hold' : 'waiting';
    }
  }
}

export function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1_000) return `${Math.round(ms / 100) / 10}s`;
  return `${Math.round(ms)}ms`;
}
