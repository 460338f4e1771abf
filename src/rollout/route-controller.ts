import type { RouteConfig } from '../config/types.js';
import type { Trip } from '../judge/decide.js';
import { recordOutcome, type RouteJudge } from '../judge/route-judge.js';
import type { InFlight } from '../proxy/inflight.js';
import type { Outcome, VersionRole } from '../proxy/outcome.js';
import type { DataRef, Strategy } from '../shapes.js';
import { deploy, promote, rollbackTo } from './deployments.js';
import { reportHealth } from './health-report.js';
import { beforeTrafficEnded, hookEvent, type HookProgress } from './data-hooks.js';
import { applyPeer } from './peer.js';
import { sweepInFlight } from './sweep.js';
import { continueFrom, declaredVersions, persistRoute, restoreRoute } from './persistence.js';
import { guard, type Phase } from './phases.js';
import { formatMs, RolloutPlan } from './plan.js';
import { Publication } from './publication.js';
import { RouteCore, type CandidateState, type ControllerDeps } from './route-core.js';
import { routeView } from './route-view.js';
import type { Cause, PersistedRoute, Revision, RouteEvent, RouteState } from './types.js';

export type { ControllerDeps } from './route-core.js';

/**
 * One route's rollout: its versions, phase, plan and judge. A trip swaps the weights
 * synchronously, in the call that delivered the deciding outcome, before anything else happens;
 * the event is published afterwards and nothing done with it (persist, log, notify) can undo or
 * delay the swap. Every other move is checked against the phase table (`phases.ts`) before it
 * changes anything; the plan (`plan.ts`) moves the candidate on bake timers.
 */
export class RouteController<U> {
  readonly name: string;
  readonly config: RouteConfig;
  readonly #core: RouteCore<U>;
  readonly #plan: RolloutPlan<U>;
  readonly #out: Publication;

  constructor(config: RouteConfig, deps: ControllerDeps<U>) {
    this.name = config.name;
    this.config = config;
    this.#out = new Publication(deps.publish);
    const core = (this.#core = new RouteCore(config, deps));
    this.#plan = new RolloutPlan(core, { stepEvent: (m, w) => this.#stepEvent(m, w), promote: (cause) => this.promote(cause) });
    const at = core.wallIso();
    core.history.add(core.stable, at, 'stable');
    if (core.candidate !== null) {
      core.history.add(core.candidate, at, 'candidate');
      this.#plan.begin(false);
    }
  }

  /** The route's events, newest first. */
  get events(): readonly RouteEvent[] {
    return this.#core.history.events;
  }

  /** Every version deployed to this route, newest first. */
  get revisions(): readonly Revision[] {
    return this.#core.history.revisions;
  }

  get phase(): Phase {
    return this.#core.phase;
  }

  get judge(): RouteJudge | null {
    return this.#core.judge;
  }

  /**
   * Deploys a new candidate (the next revision number), replacing any candidate the route had,
   * rolled back or not; the judge starts afresh and the route's plan begins: with `steps`, the
   * first step's weight (`weight` is not used); blue-green, 100% once healthy; shadow, copies only.
   */
  deploy(version: string, url: string, weight: number, cause: Cause = 'manual', strategy: Strategy = this.config.strategy, data: DataRef | null = null): void {
    this.#emit(deploy(this.#core, this.#plan, { version, url, weight, strategy, data }, cause));
  }

  /** The candidate becomes the stable version; the old stable's pool is released. */
  promote(cause: Cause = 'manual'): void {
    this.#emit(promote(this.#core, this.#plan, cause));
  }

  /**
   * Rollback to a named version: the revision with that label (or, failing that, that number)
   * becomes stable and the route has no candidate. Throws UnknownVersion when there is none.
   */
  rollbackTo(version: string, cause: Cause = 'manual'): void {
    this.#emit(rollbackTo(this.#core, this.#plan, version, cause));
  }

  /** Holds the candidate where it is and stops its plan's clock; refused without a live candidate. */
  pause(cause: Cause = 'manual'): void {
    const core = this.#core;
    const phase = guard('pause', core.moveContext());
    core.pausedFrom = core.phase;
    core.phase = phase;
    this.#plan.bake.hold();
    const left = this.#plan.bake.remainingMs();
    const bakeLeft = left === null ? '' : `; ${formatMs(left)} of the ${this.#plan.stage} bake left`;
    this.#emit({ route: this.name, type: 'pause', cause, at: core.wallIso(), message: `route ${this.name} paused (${cause})${bakeLeft}` });
  }

  /** Continues a paused candidate: its plan's clock runs again for what was left. */
  resume(cause: Cause = 'manual'): void {
    const core = this.#core;
    core.phase = guard('resume', core.moveContext());
    core.pausedFrom = null;
    this.#plan.bake.continue();
    this.#emit({ route: this.name, type: 'resume', cause, at: core.wallIso(), message: `route ${this.name} resumed (${cause})` });
  }

  /**
   * Sets the candidate's weight (percent, two decimals). Refused with a RolloutRefusal when there
   * is no candidate, or it was rolled back (a rolled-back candidate stays so until a new one is
   * deployed). A shadowing route becomes a canary at that weight; a step schedule goes on (its
   * next step sets the next weight).
   */
  setWeight(weight: number, cause: Cause = 'manual'): void {
    const core = this.#core;
    const ctx = core.moveContext();
    core.phase = guard('weight', ctx);
    const c = core.candidate as CandidateState;
    const from = c.weight;
    c.weight = weight;
    if (ctx.phase === 'shadowing' || core.pausedFrom === 'shadowing') {
      // A canary from here: no more copies, no shadow clock.
      this.#plan.toCanary();
      core.strategy = 'canary';
      if (core.pausedFrom === 'shadowing') core.pausedFrom = 'progressing';
    }
    core.applyTraffic();
    const message = `route ${this.name}: candidate ${c.version} weight ${from}% -> ${weight}% (${cause})`;
    this.#emit({ route: this.name, type: 'weight', cause, at: core.wallIso(), message, weight });
  }

  /** Partial rollback: all traffic back on stable at once, candidate kept for inspection. */
  rollback(cause: Cause = 'manual', why?: string): void {
    const core = this.#core;
    const phase = guard('rollback', core.moveContext());
    const c = core.candidate as CandidateState;
    core.cutCandidate();
    core.phase = phase;
    this.#plan.end();
    core.history.setStatus(c.revision, 'rolled_back');
    const at = core.wallIso();
    const stable = core.stable.version;
    const message = `route ${this.name} rolled back (${cause}): ${why === undefined ? `candidate ${c.version} -> stable ${stable}` : `${why}; all traffic on stable ${stable}`}`;
    core.lastDecision = { reason: cause, at, message, evidence: null };
    this.#emit({ route: this.name, type: 'rollback', cause, at, message, from: { ...c }, to: { ...core.stable }, weight: 0 });
  }

  /** The outcome sink's per-route half: feeds the judge and acts on a trip at once. */
  observe(o: Outcome): void {
    const judge = this.#core.judge;
    const decidedAt = o.startedAt + o.latencyMs;
    if (judge === null) {
      if (o.role === 'stable') recordOutcome(this.#core.stableWindow, o, decidedAt);
      return;
    }
    const trip = judge.observe(o, decidedAt);
    if (trip !== null) this.#trip(trip, decidedAt);
    else if (o.role === 'candidate') this.#plan.candidateServed();
  }

  /** One pair of answers compared for the route's agreement. */
  observeAgreement(agree: boolean, example: { stable: string; candidate: string } | null): void {
    const [now, judge] = [this.#core.now(), this.#core.judge];
    const trip = judge?.observeAgreement(agree, example, now);
    if (trip) this.#trip(trip, now);
  }

  /** Requests in flight past the latency thresholds count as slow now (a periodic sweep, see sweep.ts). */
  sweepInFlight(lists: { stable: InFlight; candidate: InFlight }): void {
    if (this.#core.phase === 'rolled_back') return;
    const found = sweepInFlight(this.#core.judge, lists, this.#core.deps.now);
    if (found !== null) this.#trip(found.trip, found.at);
  }

  /** A trip decided on the fleet's pooled evidence for candidate `revision`: acted on like this replica's own. */
  tripFromFleet(trip: Trip, revision: number): boolean {
    const core = this.#core;
    if (core.candidate === null || core.candidate.revision !== revision || core.phase === 'rolled_back') return false;
    this.#trip(trip, core.now());
    return true;
  }

  #trip(trip: Trip, decidedAt: number): void {
    const core = this.#core;
    // Already rolled back (by an operator, a health check, a peer or the fleet's tests): requests
    // that were in flight still feed the judge, and may cross a test, but that is no new rollback.
    if (core.phase === 'rolled_back') return;
    // Weights first: the next pick() must already see 0% (and no copies); then the other processes.
    core.cutCandidate();
    if (core.candidate !== null) core.deps.tripped?.(this.name, core.candidate.revision);
    const decisionSeconds = Math.max(0, core.now() - decidedAt) / 1000;
    core.phase = 'rolled_back';
    this.#plan.end();
    if (core.candidate !== null) core.history.setStatus(core.candidate.revision, 'rolled_back');
    const at = core.wallIso();
    core.lastDecision = { reason: trip.reason, at, message: trip.message, evidence: trip.evidence };
    const message = `route ${this.name} rolled back (${trip.reason}): ${trip.message}`;
    this.#emit({ route: this.name, type: 'rollback', cause: trip.reason, at, message, from: core.candidate, to: core.stable, weight: 0, evidence: trip.evidence, decisionSeconds }, true);
  }

  /** A health check's result (SPEC §3 `healthCheck`; see `health-report.ts`). */
  reportHealth(role: VersionRole, version: string, ok: boolean, detail: string): void {
    reportHealth(this.#core, role, version, ok, detail, {
      emit: (e) => this.#emit(e),
      start: () => (this.#plan.stage === 'waiting' && this.#core.health.candidateReady ? this.#plan.start(true) : this.#core.applyTraffic()),
      rollback: (why) => this.rollback('health_check', why),
    });
  }

  /** A data hook job's progress: in the history, the restore state, and for beforeTraffic the gate. */
  hookProgress(p: HookProgress, message: string): void {
    this.#emit(hookEvent(this.#core, p, message));
    if (p.event !== 'beforeTraffic') return;
    const failed = beforeTrafficEnded(this.#core, this.#plan, p);
    if (failed !== null) this.rollback('hook_failed', failed);
  }

  /** The candidate revision waiting for its beforeTraffic hooks, or null. */
  get awaitingData(): number | null {
    return this.#core.live && !this.#core.health.dataReady ? (this.#core.candidate?.revision ?? null) : null;
  }

  /** The versions the config declares for this route. */
  get declared(): PersistedRoute['declared'] {
    return declaredVersions(this.#core);
  }

  /** What survives a restart. */
  persisted(): PersistedRoute {
    return persistRoute(this.#core, this.#plan);
  }

  /** Takes a saved state back (the config declared the same versions as when it was saved). */
  restore(p: PersistedRoute): void {
    restoreRoute(this.#core, this.#plan, p);
  }

  /** The config declares other versions than the saved state knew: they are a new deployment. */
  continueFrom(p: PersistedRoute): void {
    continueFrom(this.#core, p);
  }

  /** How many changes this route has had (the replicas' ordering). */
  get generation(): number {
    return this.#core.generation;
  }

  /** The generation the shared store has for this state (after a write or a load). */
  adoptGeneration(generation: number): void {
    this.#core.generation = generation;
  }

  /** Holds the candidate at no traffic (nor copies) until released: a replica started without the fleet's state. */
  holdCandidate(held: boolean): void {
    if (this.#core.held !== held) this.#core.hold(held);
  }

  /** Another process rolled back candidate `revision`: no traffic to it from now, ahead of the record. */
  peerTripped(revision: number): void {
    if (this.#core.candidate?.revision === revision && this.#core.cutRevision !== revision) this.#core.cutFor(revision);
  }

  get held(): boolean {
    return this.#core.held;
  }

  /** Another replica's state for this route (see `peer.ts`); false when it was not newer. */
  applyPeer(p: PersistedRoute, generation: number, by: string, force = false): boolean {
    const event = applyPeer(this.#core, this.#plan, p, generation, by, force);
    if (event === false) return false;
    if (event !== null) this.#out.later(event, this.state());
    return true;
  }

  /** The view's windows from elsewhere: the primary of `listen.workers` shows its workers' merged. */
  showWindows(source: (stable: string, candidate: string | null) => RouteState['windows'] | null): void {
    this.#core.windowsSource = source;
  }

  /** The route's state as the admin API shows it (SPEC §6). */
  state(): RouteState {
    return routeView(this.#core, this.#plan);
  }

  #stepEvent(message: string, weight?: number): void {
    this.#emit({ route: this.name, type: 'step', cause: 'schedule', at: this.#core.wallIso(), message: `route ${this.name}: ${message}`, ...(weight === undefined ? {} : { weight }) });
  }

  /** Records the change and publishes it after it (see publication.ts); a trip's `soon`. */
  #emit(event: RouteEvent, soon = false): void {
    this.#core.generation++;
    this.#core.history.record(event);
    if (soon) this.#out.soon(event, this.state());
    else this.#out.later(event, this.state());
  }
}
