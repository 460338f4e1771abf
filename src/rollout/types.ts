import type { TripEvidence, TripReason } from '../judge/decide.js';
import type { DataRef, Phase, Strategy } from '../shapes.js';
import type { WindowSnapshot } from '../stats/window.js';
import type { HookJob } from '../hooks/job.js';

/**
 * The types of a route's rollout that the rest of the gateway reads (store, admin, metrics,
 * notify, cli): they import these, never the controller.
 */

export type { Phase, Strategy } from '../shapes.js';

export type Cause = 'manual' | 'peer' | 'config' | 'schedule' | TripReason | 'health_check' | 'hook_failed';

/**
 * Where a candidate's rollout stands: `waiting` for its first passing health check, `shadow`
 * (judged copies), a canary `step`, the `blueGreen` bake, or `hold` (no clock runs: a canary at
 * a fixed weight, the last step without autoPromote, shadowing after its bake).
 */
export type Stage = 'waiting' | 'shadow' | 'step' | 'blueGreen' | 'hold';

/** A route's plan as it is saved. */
export interface PersistedPlan {
  strategy: Strategy;
  stage: Stage;
  stepIndex: number;
  /** What was left of the running bake. */
  remainingMs: number | null;
  healthy: boolean;
  pausedFrom: Phase | null;
  awaitingTraffic: boolean;
  /** The candidate's beforeTraffic hooks are done (absent in older saves: true). */
  dataReady?: boolean;
}

export interface VersionState {
  version: string;
  revision: number;
  url: string;
  /** The data snapshot the version was built for (absent in states saved before pinning). */
  data?: DataRef | null;
}

/** A data restore hook's run after a rollback (SPEC §9), as the route state shows it. */
export interface RestoreState {
  state: 'pending' | 'running' | 'done' | 'failed';
  attempts: number;
  lastError: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface RouteEvent {
  route: string;
  /** What happened: a deployment, a weight change, a trip, a manual rollback, a promotion. */
  type: 'deploy' | 'weight' | 'step' | 'rollback' | 'promote' | 'pause' | 'resume' | 'health' | 'hook';
  /** Who or what caused it (SPEC §5 reasons, `manual`, `peer`, `config`). */
  cause: Cause;
  at: string;
  message: string;
  from?: VersionState | null;
  to?: VersionState | null;
  weight?: number;
  evidence?: TripEvidence;
  /** A data hook's progress (type hook only). */
  hook?: { event: 'beforeTraffic' | 'afterRollback' | 'afterPromote'; state: RestoreState['state']; attempts: number; lastError: string | null };
  /** Deciding sample to new weights visible, seconds (trips only). */
  decisionSeconds?: number;
  /** With cause `peer`: the cause on the process that made the change. */
  peerCause?: Cause;
}

export interface Revision extends VersionState {
  deployedAt: string;
  /** What became of it: serving, candidate, rolled_back, retired (replaced by a promotion). */
  status: 'stable' | 'candidate' | 'rolled_back' | 'retired';
}

export interface RouteState {
  name: string;
  phase: Phase;
  weight: number;
  strategy: Strategy;
  stable: VersionState & { healthy: boolean; data: DataRef | null };
  candidate: (VersionState & { weight: number; healthy: boolean; data: DataRef | null }) | null;
  /** The data the serving version reads: its snapshot, and the restore after the last rollback. */
  data: { snapshot: string | null; restore: RestoreState | null };
  step: { index: number; weight: number; bakeEndsAt: string | null; count: number } | null;
  /** The clock that runs (or is held) for the candidate: which stage, when it ends, what is left. */
  bake: { stage: 'shadow' | 'step' | 'blueGreen'; endsAt: string | null; remainingMs: number } | null;
  /** Shadow: the percent of requests copied to the candidate now. */
  mirrorPercent: number;
  windows: { stable: WindowSnapshot | null; candidate: WindowSnapshot | null };
  lastDecision: { reason: Cause; at: string; message: string; evidence: TripEvidence | null } | null;
  /** What is learnt of the answers themselves (SPEC §9); null on a route without checks or agreement. */
  answers: AnswersState | null;
}

/** The checks of a route's answers and what they found so far, as the route state shows them. */
export interface AnswersState {
  /** The checks that run on every 2xx answer, in a fixed order. */
  checks: ('json' | 'llm')[];
  /** What the windows' `latencyMs` measure: time to first token on an LLM route, else the response. */
  latency: 'ttft' | 'response';
  /**
   * Time per output token (ms) of each version, at the route's latency quantiles; null without
   * `checks.llm`. A quantile is null when its window is empty; candidate is null without a judge.
   */
  tpotMs: { stable: Record<string, number | null>; candidate: Record<string, number | null> | null } | null;
  /** The candidate compared with stable at `pointer`; null without `agreement`. */
  agreement: { pointer: string; maxDisagreement: number; pairs: number; disagreements: number } | null;
}


/** What a route keeps across restarts. */
export interface PersistedRoute {
  /** The versions the config declared when this was saved: unchanged means the saved state wins. */
  declared: { stable: VersionState | { version: string; url: string }; candidate: { version: string; url: string } | null };
  phase: Phase;
  stable: VersionState;
  candidate: (VersionState & { weight: number }) | null;
  lastDecision: RouteState['lastDecision'];
  revisions: Revision[];
  events: RouteEvent[];
  nextRevision: number;
  /** The candidate's plan (stage, step, what was left of its bake); absent in older saves. */
  plan?: PersistedPlan | null;
  /** The data restore after the last rollback (absent in older saves). */
  restore?: RestoreState | null;
}

export interface PersistedState {
  format: 1;
  savedAt: string;
  routes: Record<string, PersistedRoute>;
  /** Data hook jobs: every unfinished one, and the newest finished (absent in older saves). */
  hooks?: HookJob[];
}

