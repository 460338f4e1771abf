import type { RouteConfig } from '../config/types.js';
import { RolloutRefusal } from '../errors.js';
import { RouteJudge } from '../judge/route-judge.js';
import type { DataRef, Phase, Strategy } from '../shapes.js';
import { SlidingWindow } from '../stats/window.js';
import { trafficState, type Picker } from '../traffic/picker.js';
import type { Timers } from './bake-timer.js';
import { HealthTracker } from './health.js';
import type { MoveContext } from './phases.js';
import { RevisionHistory } from './revisions.js';
import type { RestoreState, RouteEvent, RouteState, VersionState } from './types.js';

export interface ControllerDeps<U> {
  picker: Picker<U>;
  /** Makes the data plane's handle (a connection pool) for a newly deployed version. */
  makeUpstream?: (version: string, url: string, data: DataRef | null) => U;
  /** Releases a handle no route uses any more, after the requests still on it. */
  retire?: (upstream: U) => void;
  /** Monotonic clock in ms (performance.now() scale), the one outcomes are timed on. */
  now: () => number;
  /** Wall clock for event times. */
  wallNow?: () => number;
  /** Receives every event after the change it describes has taken effect. */
  publish: (event: RouteEvent, state: RouteState) => void;
  /** Told in a trip's own call, right after the swap: candidate `revision` of `route` is cut. */
  tripped?: (route: string, revision: number) => void;
  /** Bake timers (real ones unless a test gives a fake clock). */
  timers?: Timers;
  /**
   * The share of each rule's alpha this replica's own tests run at (1 alone; with replicas
   * sharing evidence, the rest goes to the fleet's tests).
   */
  alphaScale?: number;
}

export type CandidateState = VersionState & { weight: number };

/**
 * A route's facts (phase, versions, judge, history, health) and the two moves of its traffic that
 * every part of the rollout uses: cut the candidate off, and set the picker from the facts. The
 * controller, the plan, persistence and peers change these; nothing else does.
 */
export class RouteCore<U> {
  readonly name: string;
  readonly config: RouteConfig;
  readonly deps: ControllerDeps<U>;
  /** The rules this replica's judges run on: the route's, at this replica's share of alpha. */
  readonly judgeRules: RouteConfig['rollback'];
  readonly history = new RevisionHistory();
  readonly health: HealthTracker;
  phase: Phase;
  pausedFrom: Phase | null = null;
  strategy: Strategy;
  stable: VersionState;
  candidate: CandidateState | null;
  judge: RouteJudge | null = null;
  /** Stable's window, kept across deployments while the stable version stays the same. */
  stableWindow: SlidingWindow;
  lastDecision: RouteState['lastDecision'] = null;
  /** Where the view's windows come from instead of this process's judge (see RouteController.showWindows). */
  windowsSource: ((stable: string, candidate: string | null) => RouteState['windows'] | null) | null = null;
  /** The data restore after the last rollback, as the route state shows it. */
  restore: RestoreState | null = null;
  /** Held: the candidate gets nothing until released (a replica that has not seen the fleet's state). */
  held = false;
  /** A candidate revision another process said it rolled back, before its record arrived: never routed to. */
  cutRevision: number | null = null;
  /** Counts changes: one per event. Replicas sharing state apply only newer generations. */
  generation = 0;

  constructor(config: RouteConfig, deps: ControllerDeps<U>) {
    this.name = config.name;
    this.config = config;
    this.deps = deps;
    this.judgeRules = { ...config.rollback, alpha: config.rollback.alpha * (deps.alphaScale ?? 1) };
    this.health = new HealthTracker(config.healthCheck?.unhealthyAfter ?? 1);
    this.stableWindow = this.freshWindow();
    this.strategy = config.strategy;
    this.stable = { version: config.stable.version, url: config.stable.url, revision: this.history.take(), data: config.stable.data };
    const c = config.candidate;
    this.candidate = c === null ? null : { version: c.version, url: c.url, weight: c.weight, revision: this.history.take(), data: c.data };
    this.phase = c === null ? 'stable' : 'progressing';
    if (c !== null) this.judge = this.newJudge(c.version);
  }

  /** A live candidate: deployed and not rolled back. */
  get live(): boolean {
    return this.candidate !== null && this.phase !== 'rolled_back';
  }

  /** Whether the route copies requests to the candidate rather than routing them to it. */
  get shadowing(): boolean {
    return this.phase === 'shadowing' || (this.phase === 'paused' && this.pausedFrom === 'shadowing');
  }

  now(): number {
    return this.deps.now();
  }

  wallIso(): string {
    return new Date(this.deps.wallNow?.() ?? Date.now()).toISOString();
  }

  freshWindow(): SlidingWindow {
    return new SlidingWindow(this.config.rollback.windowMs, this.deps.now());
  }

  /** A judge for a deployment of `candidate` against the stable version and its window so far. */
  newJudge(candidate: string): RouteJudge {
    const { checks, agreement } = this.config;
    const signals = { json: checks.json !== null, llm: checks.llm !== null, agreement: agreement === null ? null : { maxDisagreement: agreement.maxDisagreement } };
    return new RouteJudge(this.judgeRules, this.stable.version, candidate, this.deps.now(), this.stableWindow, signals);
  }

  /** The data plane's handle for a version; refused without a data plane. */
  makeUpstream(v: { version: string; url: string; data?: DataRef | null }, refusal: string): U {
    const make = this.deps.makeUpstream;
    if (make === undefined) throw new RolloutRefusal(refusal);
    return make(v.version, v.url, v.data ?? null);
  }

  moveContext(strategy: Strategy = this.strategy): MoveContext {
    return { route: this.name, phase: this.phase, candidate: this.candidate?.version ?? null, strategy, pausedFrom: this.pausedFrom, hasSteps: this.config.steps.length > 0 };
  }

  /** A rollback's first move, in one assignment: the candidate gets nothing, not even copies. */
  cutCandidate(): void {
    const s = this.deps.picker.state;
    this.deps.picker.state = trafficState(s.stable, s.stableLabel, s.candidate, s.candidateLabel, 0, false);
  }

  /** Holds the candidate at no traffic, or releases it (see RouteController.holdCandidate). */
  hold(held: boolean): void {
    this.held = held;
    this.applyTraffic();
  }

  /** No traffic to candidate `revision` from now on (see RouteController.peerTripped). */
  cutFor(revision: number): void {
    this.cutRevision = revision;
    this.applyTraffic();
  }

  /** The picker's state from the route's: weight, whether the candidate may be reached, copies. */
  applyTraffic(): void {
    const s = this.deps.picker.state;
    const before = s.weightBp;
    const c = this.candidate;
    const live = c !== null && this.phase !== 'rolled_back' && this.health.candidateReady && !this.held && c.revision !== this.cutRevision;
    const shadowing = this.shadowing;
    this.deps.picker.state = trafficState(
      s.stable,
      s.stableLabel,
      s.candidate,
      s.candidateLabel,
      live && !shadowing ? c.weight : 0,
      live,
      live && shadowing ? this.config.shadow.mirrorPercent : 0,
    );
    const after = this.deps.picker.state.weightBp;
    if (after !== before) this.judge?.shareChanged(this.deps.now(), after / 100);
  }
}
