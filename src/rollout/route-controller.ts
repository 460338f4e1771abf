import type { RouteConfig } from '../config/types.js';
import type { Strategy } from '../shapes.js';
import type { Trip, TripEvidence } from '../judge/decide.js';
import { RouteJudge, recordOutcome } from '../judge/route-judge.js';
import type { InFlight } from '../proxy/inflight.js';
import type { Outcome, VersionRole } from '../proxy/outcome.js';
import { SlidingWindow } from '../stats/window.js';
import { trafficState, type Picker } from '../traffic/picker.js';
import { RolloutRefusal, UnknownVersion } from '../errors.js';
import type { Cause, PersistedPlan, PersistedRoute, Phase, Revision, RouteEvent, RouteState, Stage, VersionState } from './types.js';
import { BakeTimer, REAL_TIMERS, type Timers } from './bake-timer.js';

export interface ControllerDeps<U> {
  picker: Picker<U>;
  /** Makes the data plane's handle (a connection pool) for a newly deployed version. */
  makeUpstream?: (version: string, url: string) => U;
  /** Releases a handle no route uses any more, after the requests still on it. */
  retire?: (upstream: U) => void;
  /** Monotonic clock in ms (performance.now() scale), the one outcomes are timed on. */
  now: () => number;
  /** Wall clock for event times. */
  wallNow?: () => number;
  /** Receives every event after the change it describes has taken effect. */
  publish: (event: RouteEvent, state: RouteState) => void;
  /** Bake timers (real ones unless a test gives a fake clock). */
  timers?: Timers;
  /**
   * The share of each rule's alpha this replica's own tests run at (1 alone; with replicas
   * sharing evidence, the rest goes to the fleet's tests).
   */
  alphaScale?: number;
}

/** How many events a route keeps, newest first. */
export const HISTORY_LIMIT = 1_000;

/**
 * One route's rollout: its versions, phase, plan and judge. A trip swaps the weights
 * synchronously, in the call that delivered the deciding outcome, before anything else happens;
 * the event is published afterwards and nothing done with it (persist, log, notify) can undo or
 * delay the swap. The plan (SPEC §3 strategies) moves the candidate on bake timers: canary
 * steps, the blue-green switch, shadowing; a health check gates the start.
 */
export class RouteController<U> {
  readonly name: string;
  readonly config: RouteConfig;
  readonly #deps: ControllerDeps<U>;
  readonly #bake: BakeTimer;
  /** The rules this replica's judges run on: the route's, at this replica's share of alpha. */
  readonly #judgeRules: RouteConfig['rollback'];
  #phase: Phase;
  #stable: VersionState;
  #candidate: (VersionState & { weight: number }) | null;
  #judge: RouteJudge | null = null;
  /** Stable's window, kept across deployments while the stable version stays the same. */
  #stableWindow: SlidingWindow;
  #lastDecision: RouteState['lastDecision'] = null;
  #nextRevision: number;
  #strategy: Strategy;
  #stage: Stage | null = null;
  #stepIndex = -1;
  /** The judge's candidate count when the current step began. */
  #stepStartCount = 0;
  /** A step's bake ended with no candidate request in it: the step ends on the next one. */
  #awaitingTraffic = false;
  #pausedFrom: Phase | null = null;
  /** The candidate passed a health check (always true without one). */
  #healthy = true;
  #candidateCheckFailures = 0;
  #stableCheckFailures = 0;
  #stableHealthy = true;
  /** Held: the candidate gets nothing until released (a replica that has not seen the fleet's state). */
  #held = false;
  /** Counts changes: one per event. Replicas sharing state apply only newer generations. */
  #generation = 0;
  readonly events: RouteEvent[] = [];
  /** Every version deployed to this route, newest first. */
  readonly revisions: Revision[] = [];

  constructor(config: RouteConfig, deps: ControllerDeps<U>) {
    this.name = config.name;
    this.config = config;
    this.#deps = deps;
    this.#bake = new BakeTimer(deps.timers ?? REAL_TIMERS, deps.now);
    this.#judgeRules = { ...config.rollback, alpha: config.rollback.alpha * (deps.alphaScale ?? 1) };
    this.#stableWindow = new SlidingWindow(config.rollback.windowMs, deps.now());
    this.#strategy = config.strategy;
    this.#stable = { version: config.stable.version, url: config.stable.url, revision: 1 };
    this.#nextRevision = 2;
    const c = config.candidate;
    this.#candidate = c === null ? null : { version: c.version, url: c.url, weight: c.weight, revision: this.#nextRevision++ };
    this.#phase = c === null ? 'stable' : 'progressing';
    if (c !== null) this.#judge = new RouteJudge(this.#judgeRules, this.#stable.version, c.version, deps.now(), this.#stableWindow);
    const at = this.#wallIso();
    this.revisions.unshift({ ...this.#stable, deployedAt: at, status: 'stable' });
    if (this.#candidate !== null) {
      this.revisions.unshift({ ...this.#candidate, deployedAt: at, status: 'candidate' });
      this.#beginPlan(false);
    }
  }

  /**
   * Deploys a new candidate (the next revision number), replacing any candidate the route had,
   * rolled back or not; the judge starts afresh and the route's plan begins: with `steps`, the
   * first step's weight (`weight` is not used); blue-green, 100% once healthy; shadow, copies only.
   */
  deploy(version: string, url: string, weight: number, cause: Cause = 'manual', strategy: Strategy = this.config.strategy): void {
    const make = this.#deps.makeUpstream;
    if (make === undefined) throw new RolloutRefusal(`route ${this.name}: deployments need a data plane`);
    if (version === this.#stable.version) throw new RolloutRefusal(`route ${this.name}: ${version} is the stable version`);
    this.#endPlan();
    const s = this.#deps.picker.state;
    const upstream = make(version, url);
    this.#deps.picker.state = trafficState(s.stable, s.stableLabel, upstream, version, 0, false);
    if (s.candidate !== null) this.#deps.retire?.(s.candidate);
    const previous = this.#candidate;
    if (previous !== null) this.#setRevisionStatus(previous.revision, this.#phase === 'rolled_back' ? 'rolled_back' : 'retired');
    this.#candidate = { version, url, weight, revision: this.#nextRevision++ };
    this.revisions.unshift({ ...this.#candidate, deployedAt: this.#wallIso(), status: 'candidate' });
    this.#judge = new RouteJudge(this.#judgeRules, this.#stable.version, version, this.#deps.now(), this.#stableWindow);
    this.#phase = 'progressing';
    this.#strategy = strategy;
    this.#lastDecision = null;
    this.#beginPlan(false);
    const c = this.#candidate;
    const how =
      strategy === 'shadow'
        ? `in shadow (${this.config.shadow.mirrorPercent}% of requests copied)`
        : strategy === 'blueGreen'
          ? 'blue-green (100% once healthy)'
          : `at ${c.weight}%${this.#stepIndex >= 0 ? ` (step 1 of ${this.config.steps.length})` : ''}`;
    this.#emit({
      route: this.name,
      type: 'deploy',
      cause,
      at: this.#wallIso(),
      message: `route ${this.name}: candidate ${version} (revision ${c.revision}) deployed ${how}${this.#healthy ? '' : ', waiting for its first passing health check'}`,
      from: previous,
      to: { ...c },
      weight: c.weight,
    });
  }

  /** The candidate becomes the stable version; the old stable's pool is released. */
  promote(cause: Cause = 'manual'): void {
    const c = this.#candidate;
    if (c === null) throw new RolloutRefusal(`route ${this.name} has no candidate to promote`);
    if (this.#phase === 'rolled_back') throw new RolloutRefusal(`route ${this.name}: candidate ${c.version} was rolled back and cannot be promoted`);
    this.#endPlan();
    const s = this.#deps.picker.state;
    this.#deps.picker.state = trafficState(s.candidate as U, c.version, null, null, 0);
    this.#deps.retire?.(s.stable);
    const from = this.#stable;
    this.#setRevisionStatus(from.revision, 'retired');
    this.#setRevisionStatus(c.revision, 'stable');
    this.#stable = { version: c.version, url: c.url, revision: c.revision };
    this.#candidate = null;
    this.#stableWindow = this.#judge?.candidate ?? new SlidingWindow(this.config.rollback.windowMs, this.#deps.now());
    this.#judge = null;
    this.#phase = 'stable';
    this.#stableHealthy = this.#healthy;
    this.#stableCheckFailures = this.#candidateCheckFailures;
    this.#emit({
      route: this.name,
      type: 'promote',
      cause,
      at: this.#wallIso(),
      message: `route ${this.name}: ${c.version} (revision ${c.revision}) promoted to stable, replacing ${from.version}${cause === 'schedule' ? ' after a clean schedule' : ''}`,
      from,
      to: { ...this.#stable },
    });
  }

  /**
   * Rollback to a named version: the revision with that label (or, failing that, that number)
   * becomes stable and the route has no candidate. Throws UnknownVersion when there is none.
   */
  rollbackTo(version: string, cause: Cause = 'manual'): void {
    const target =
      this.revisions.find((r) => r.version === version) ??
      (/^\d+$/.test(version) ? this.revisions.find((r) => r.revision === Number(version)) : undefined);
    if (target === undefined) throw new UnknownVersion(`route ${this.name} has no version or revision ${version}`);
    const s = this.#deps.picker.state;
    let stableU: U;
    if (target.revision === this.#stable.revision) stableU = s.stable;
    else if (this.#candidate !== null && target.revision === this.#candidate.revision && s.candidate !== null) stableU = s.candidate;
    else if (this.#deps.makeUpstream !== undefined) stableU = this.#deps.makeUpstream(target.version, target.url);
    else throw new RolloutRefusal(`route ${this.name}: cannot bring back ${target.version} without a data plane`);
    this.#deps.picker.state = trafficState(stableU, target.version, null, null, 0);
    this.#endPlan();
    if (s.stable !== stableU) this.#deps.retire?.(s.stable);
    if (s.candidate !== null && s.candidate !== stableU) this.#deps.retire?.(s.candidate);
    const from = this.#candidate ?? this.#stable;
    if (this.#candidate !== null && this.#candidate.revision !== target.revision) this.#setRevisionStatus(this.#candidate.revision, 'rolled_back');
    if (this.#stable.revision !== target.revision) this.#setRevisionStatus(this.#stable.revision, 'retired');
    this.#setRevisionStatus(target.revision, 'stable');
    if (this.#stable.revision !== target.revision) {
      this.#stableWindow = this.#candidate?.revision === target.revision && this.#judge !== null ? this.#judge.candidate : new SlidingWindow(this.config.rollback.windowMs, this.#deps.now());
    }
    this.#stable = { version: target.version, url: target.url, revision: target.revision };
    this.#candidate = null;
    this.#judge = null;
    this.#phase = 'stable';
    this.#stableHealthy = true;
    this.#stableCheckFailures = 0;
    const at = this.#wallIso();
    const message = `route ${this.name} rolled back (${cause}) to ${target.version} (revision ${target.revision})`;
    this.#lastDecision = { reason: cause, at, message, evidence: null };
    this.#emit({ route: this.name, type: 'rollback', cause, at, message, from: { ...from }, to: { ...this.#stable }, weight: 0 });
  }

  /** Holds the candidate where it is and stops its plan's clock; refused without a live candidate. */
  pause(cause: Cause = 'manual'): void {
    if (this.#candidate === null || (this.#phase !== 'progressing' && this.#phase !== 'shadowing')) {
      throw new RolloutRefusal(`route ${this.name} has no progressing candidate to pause`);
    }
    this.#pausedFrom = this.#phase;
    this.#phase = 'paused';
    this.#bake.hold();
    const left = this.#bake.remainingMs();
    this.#emit({
      route: this.name,
      type: 'pause',
      cause,
      at: this.#wallIso(),
      message: `route ${this.name} paused (${cause})${left === null ? '' : `; ${formatMs(left)} of the ${this.#stage} bake left`}`,
    });
  }

  /** Continues a paused candidate: its plan's clock runs again for what was left. */
  resume(cause: Cause = 'manual'): void {
    if (this.#candidate === null || this.#phase !== 'paused') {
      throw new RolloutRefusal(`route ${this.name} has no paused candidate to resume`);
    }
    this.#phase = this.#pausedFrom ?? 'progressing';
    this.#pausedFrom = null;
    this.#bake.continue();
    this.#emit({ route: this.name, type: 'resume', cause, at: this.#wallIso(), message: `route ${this.name} resumed (${cause})` });
  }

  /**
   * A health check's result (SPEC §3 `healthCheck`). The candidate's first pass starts its plan;
   * `unhealthyAfter` failures in a row roll it back (`health_check`) whatever its weight. An
   * unhealthy stable has nothing to roll back to: it is reported (logged, notified), once.
   */
  reportHealth(role: VersionRole, version: string, ok: boolean, detail: string): void {
    const limit = this.config.healthCheck?.unhealthyAfter ?? 1;
    if (role === 'stable') {
      if (version !== this.#stable.version) return;
      if (ok) {
        this.#stableCheckFailures = 0;
        if (!this.#stableHealthy) {
          this.#stableHealthy = true;
          this.#emit({ route: this.name, type: 'health', cause: 'health_check', at: this.#wallIso(), message: `route ${this.name}: stable ${version} is healthy again`, to: { ...this.#stable } });
        }
        return;
      }
      if (++this.#stableCheckFailures >= limit && this.#stableHealthy) {
        this.#stableHealthy = false;
        this.#emit({
          route: this.name,
          type: 'health',
          cause: 'health_check',
          at: this.#wallIso(),
          message: `route ${this.name}: stable ${version} is unhealthy: ${this.#stableCheckFailures} health checks failed in a row (last: ${detail}); there is no other version to send its traffic to`,
          to: { ...this.#stable },
        });
      }
      return;
    }
    const c = this.#candidate;
    if (c === null || c.version !== version || this.#phase === 'rolled_back') return;
    if (ok) {
      this.#candidateCheckFailures = 0;
      if (!this.#healthy) {
        this.#healthy = true;
        this.#emit({ route: this.name, type: 'health', cause: 'health_check', at: this.#wallIso(), message: `route ${this.name}: candidate ${version} passed its health check`, to: { ...c } });
        if (this.#stage === 'waiting') this.#start(true);
        else this.#applyTraffic();
      }
      return;
    }
    if (++this.#candidateCheckFailures >= limit) {
      this.rollback('health_check', `candidate ${version} failed ${this.#candidateCheckFailures} health checks in a row (last: ${detail})`);
    }
  }

  /** The versions the config declares for this route. */
  get declared(): PersistedRoute['declared'] {
    const c = this.config.candidate;
    return { stable: { version: this.config.stable.version, url: this.config.stable.url }, candidate: c === null ? null : { version: c.version, url: c.url } };
  }

  /** What survives a restart. */
  persisted(): PersistedRoute {
    return {
      declared: this.declared,
      phase: this.#phase,
      stable: { ...this.#stable },
      candidate: this.#candidate === null ? null : { ...this.#candidate },
      lastDecision: this.#lastDecision,
      revisions: this.revisions.map((r) => ({ ...r })),
      events: this.events.slice(0, HISTORY_LIMIT),
      nextRevision: this.#nextRevision,
      plan:
        this.#stage === null
          ? null
          : {
              strategy: this.#strategy,
              stage: this.#stage,
              stepIndex: this.#stepIndex,
              remainingMs: this.#bake.remainingMs(),
              healthy: this.#healthy,
              pausedFrom: this.#pausedFrom,
              awaitingTraffic: this.#awaitingTraffic,
            },
    };
  }

  /**
   * Takes a saved state back (the config declared the same versions as when it was saved): the
   * phase, the versions, the weights, the plan with what was left of its bake, a rollback, the
   * history. A rolled-back candidate stays rolled back.
   */
  restore(p: PersistedRoute): void {
    this.#endPlan();
    const s = this.#deps.picker.state;
    const make = (v: VersionState): U => {
      if (this.#deps.makeUpstream === undefined) throw new RolloutRefusal(`route ${this.name}: cannot restore ${v.version} without a data plane`);
      return this.#deps.makeUpstream(v.version, v.url);
    };
    let stableU = s.stable;
    if (p.stable.version !== s.stableLabel || p.stable.url !== this.#stable.url) {
      stableU = make(p.stable);
      this.#deps.retire?.(s.stable);
    }
    let candidateU = s.candidate;
    if (p.candidate === null) {
      if (s.candidate !== null) this.#deps.retire?.(s.candidate);
      candidateU = null;
    } else if (p.candidate.version !== s.candidateLabel || p.candidate.url !== this.#candidate?.url) {
      candidateU = make(p.candidate);
      if (s.candidate !== null) this.#deps.retire?.(s.candidate);
    }
    this.#deps.picker.state = trafficState(stableU, p.stable.version, candidateU, p.candidate?.version ?? null, 0, false);
    this.#takeSaved(p);
    this.#stableWindow = new SlidingWindow(this.config.rollback.windowMs, this.#deps.now());
    this.#judge = p.candidate === null ? null : new RouteJudge(this.#judgeRules, p.stable.version, p.candidate.version, this.#deps.now(), this.#stableWindow);
    this.#restorePlan(p.plan ?? null);
    this.#applyTraffic();
  }

  /** A saved state's phase, versions, last decision and history (not its plan or traffic). */
  #takeSaved(p: PersistedRoute): void {
    this.#phase = p.phase;
    this.#stable = { ...p.stable };
    this.#candidate = p.candidate === null ? null : { ...p.candidate };
    this.#lastDecision = p.lastDecision;
    this.#nextRevision = p.nextRevision;
    this.revisions.splice(0, this.revisions.length, ...p.revisions);
    this.events.splice(0, this.events.length, ...p.events);
  }

  #restorePlan(plan: PersistedPlan | null): void {
    if (plan !== null && this.#candidate !== null && this.#phase !== 'rolled_back') {
      this.#strategy = plan.strategy;
      this.#stage = plan.stage;
      this.#stepIndex = plan.stepIndex;
      this.#healthy = plan.healthy;
      this.#pausedFrom = plan.pausedFrom;
      this.#awaitingTraffic = plan.awaitingTraffic;
      this.#stepStartCount = this.#judge?.candidateSeen ?? 0;
      if (plan.remainingMs !== null && plan.stage !== 'waiting' && plan.stage !== 'hold') {
        this.#bake.start(plan.remainingMs, this.#onBakeEnd(plan.stage));
        if (this.#phase === 'paused') this.#bake.hold();
      }
    } else {
      this.#healthy = this.config.healthCheck === null || this.#phase === 'rolled_back';
      if (this.#candidate !== null && this.#phase !== 'rolled_back') this.#stage = this.#healthy ? 'hold' : 'waiting';
    }
  }

  /** How many changes this route has had (the replicas' ordering). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Holds the candidate at no traffic at all (nor copies) until released: a replica that starts
   * without the fleet's state cannot know whether the candidate was rolled back meanwhile.
   */
  holdCandidate(held: boolean): void {
    if (this.#held === held) return;
    this.#held = held;
    this.#applyTraffic();
  }

  get held(): boolean {
    return this.#held;
  }

  /** The generation the shared store has for this state (after a write or a load). */
  adoptGeneration(generation: number): void {
    this.#generation = generation;
  }

  /**
   * Another replica's state for this route, at `generation`: taken when newer than this one's.
   * A rollback is applied first, as a trip is (weights before anything else), and recorded
   * with reason `peer`, the deciding replica and its reason in the evidence. With the same
   * versions the judge and its windows stay; otherwise it is a restore. The change is published
   * to local subscribers with cause `peer` (not added to the history, which is the peer's).
   */
  applyPeer(p: PersistedRoute, generation: number, by: string, force = false): boolean {
    if (!force && generation <= this.#generation) return false;
    const wasLive = this.#candidate !== null && this.#phase !== 'rolled_back';
    const sameVersions = p.stable.revision === this.#stable.revision && (p.candidate?.revision ?? null) === (this.#candidate?.revision ?? null);
    const tripped = sameVersions && wasLive && p.phase === 'rolled_back';
    if (tripped) this.#cutCandidate();
    if (sameVersions) {
      this.#endPlan();
      this.#takeSaved(p);
      this.#restorePlan(p.plan ?? null);
      this.#applyTraffic();
    } else {
      this.restore(p);
    }
    this.#generation = generation;
    const latest = p.events[0];
    if (latest !== undefined) {
      const event: RouteEvent = { ...latest, cause: 'peer', message: `${latest.message} (applied from replica ${by})` };
      if (tripped && p.lastDecision !== null) {
        const evidence = { replica: by, reason: p.lastDecision.reason, ...(p.lastDecision.evidence ?? {}) } as unknown as TripEvidence;
        this.#lastDecision = { reason: 'peer', at: this.#wallIso(), message: `route ${this.name} rolled back (peer): replica ${by} decided ${p.lastDecision.reason}: ${p.lastDecision.message}`, evidence };
        event.evidence = evidence;
        event.message = this.#lastDecision.message;
      }
      const state = this.state();
      setImmediate(() => this.#deps.publish(event, state));
    }
    return true;
  }

  /**
   * The config declares other versions than the saved state knew: the config's versions are a
   * new deployment, numbered after every revision the route ever had (revisions are not reused).
   */
  continueFrom(p: PersistedRoute): void {
    const old = new Map(p.revisions.map((r) => [r.revision, r]));
    let next = Math.max(p.nextRevision, this.#nextRevision);
    const renumber = (v: VersionState): void => {
      const same = p.revisions.find((r) => r.version === v.version && r.url === v.url);
      if (same !== undefined) v.revision = same.revision;
      else v.revision = next++;
    };
    renumber(this.#stable);
    if (this.#candidate !== null) renumber(this.#candidate);
    this.#nextRevision = next;
    const fresh = this.revisions.map((r) => ({ ...r, revision: r.version === this.#stable.version ? this.#stable.revision : (this.#candidate?.revision ?? r.revision) }));
    const kept = [...old.values()].filter((r) => !fresh.some((f) => f.revision === r.revision)).map((r) => ({ ...r, status: r.status === 'stable' || r.status === 'candidate' ? ('retired' as const) : r.status }));
    this.revisions.splice(0, this.revisions.length, ...fresh, ...kept);
    this.events.splice(0, this.events.length, ...p.events);
  }

  #setRevisionStatus(revision: number, status: Revision['status']): void {
    const r = this.revisions.find((x) => x.revision === revision);
    if (r !== undefined) r.status = status;
  }

  get phase(): Phase {
    return this.#phase;
  }

  get judge(): RouteJudge | null {
    return this.#judge;
  }

  /** The outcome sink's per-route half: feeds the judge and acts on a trip at once. */
  observe(o: Outcome): void {
    const judge = this.#judge;
    const decidedAt = o.startedAt + o.latencyMs;
    if (judge === null) {
      if (o.role === 'stable') recordOutcome(this.#stableWindow, o, decidedAt);
      return;
    }
    const trip = judge.observe(o, decidedAt);
    if (trip !== null) this.#trip(trip, decidedAt);
    else if (this.#awaitingTraffic && o.role === 'candidate' && this.#phase === 'progressing') this.#bakeEnded();
  }

  /**
   * Counts requests still waiting for their answer that have passed the latency thresholds, as
   * soon as they pass them (a hanging candidate is judged before its timeouts end). Called by a
   * periodic sweep, never per request; walks each list from the oldest and stops at the first
   * request younger than every threshold.
   */
  sweepInFlight(lists: { stable: InFlight; candidate: InFlight }): void {
    const judge = this.#judge;
    if (judge === null || this.#phase === 'rolled_back') return;
    const threshold = judge.smallestThreshold;
    if (!(threshold < Infinity)) return;
    for (const role of ['stable', 'candidate'] as const) {
      for (let item = lists[role].head; item !== null; item = item.next) {
        const now = this.#deps.now();
        const age = now - item.startedAt;
        if (!(age > threshold)) break;
        if (item.answered) continue;
        const trip = judge.observeInFlight(role, age, item, now);
        if (trip !== null) {
          this.#trip(trip, now);
          return;
        }
      }
    }
  }

  /**
   * A trip decided on the fleet's pooled evidence (by the replica running the fleet's tests) for
   * candidate `revision`: acted on like one of this replica's own.
   */
  tripFromFleet(trip: Trip, revision: number): boolean {
    if (this.#candidate === null || this.#candidate.revision !== revision || this.#phase === 'rolled_back') return false;
    this.#trip(trip, this.#deps.now());
    return true;
  }

  #trip(trip: Trip, decidedAt: number): void {
    // Weights first: the next pick() must already see 0% (and no copies).
    this.#cutCandidate();
    const decisionSeconds = Math.max(0, this.#deps.now() - decidedAt) / 1000;
    this.#phase = 'rolled_back';
    this.#endPlan();
    if (this.#candidate !== null) this.#setRevisionStatus(this.#candidate.revision, 'rolled_back');
    const at = this.#wallIso();
    this.#lastDecision = { reason: trip.reason, at, message: trip.message, evidence: trip.evidence };
    this.#emit({
      route: this.name,
      type: 'rollback',
      cause: trip.reason,
      at,
      message: `route ${this.name} rolled back (${trip.reason}): ${trip.message}`,
      from: this.#candidate,
      to: this.#stable,
      weight: 0,
      evidence: trip.evidence,
      decisionSeconds,
    });
  }

  /**
   * Sets the candidate's weight (percent, two decimals). Refused with a RolloutRefusal when there
   * is no candidate, or it was rolled back (a rolled-back candidate stays so until a new one is
   * deployed). A shadowing route becomes a canary at that weight; a step schedule goes on (its
   * next step sets the next weight).
   */
  setWeight(weight: number, cause: Cause = 'manual'): void {
    const c = this.#candidate;
    if (c === null) throw new RolloutRefusal(`route ${this.name} has no candidate`);
    if (this.#phase === 'rolled_back') {
      throw new RolloutRefusal(`route ${this.name}: candidate ${c.version} was rolled back; deploy a new candidate first`);
    }
    const from = c.weight;
    c.weight = weight;
    if (this.#phase === 'shadowing' || this.#pausedFrom === 'shadowing') {
      // A canary from here: no more copies, no shadow clock.
      this.#bake.stop();
      if (this.#stage !== 'waiting') this.#stage = 'hold';
      this.#strategy = 'canary';
      if (this.#phase === 'shadowing') this.#phase = 'progressing';
      else this.#pausedFrom = 'progressing';
    }
    this.#applyTraffic();
    this.#emit({
      route: this.name,
      type: 'weight',
      cause,
      at: this.#wallIso(),
      message: `route ${this.name}: candidate ${c.version} weight ${from}% -> ${weight}% (${cause})`,
      weight,
    });
  }

  /** Partial rollback: all traffic back on stable at once, candidate kept for inspection. */
  rollback(cause: Cause = 'manual', why?: string): void {
    const c = this.#candidate;
    if (c === null || this.#phase === 'rolled_back') {
      throw new RolloutRefusal(`route ${this.name} has no candidate to roll back`);
    }
    this.#cutCandidate();
    this.#phase = 'rolled_back';
    this.#endPlan();
    this.#setRevisionStatus(c.revision, 'rolled_back');
    const at = this.#wallIso();
    const message = `route ${this.name} rolled back (${cause}): ${why === undefined ? `candidate ${c.version} -> stable ${this.#stable.version}` : `${why}; all traffic on stable ${this.#stable.version}`}`;
    this.#lastDecision = { reason: cause, at, message, evidence: null };
    this.#emit({ route: this.name, type: 'rollback', cause, at, message, from: { ...c }, to: { ...this.#stable }, weight: 0 });
  }

  /** The route's state as the admin API shows it (SPEC §6). */
  state(): RouteState {
    const now = this.#deps.now();
    const snap = this.#judge?.snapshot(now) ?? null;
    const live = this.#candidate !== null && this.#phase !== 'rolled_back';
    const weight = live ? (this.#candidate as { weight: number }).weight : 0;
    const steps = this.config.steps;
    const remaining = this.#bake.remainingMs();
    const endsAt = this.#bake.endsAt;
    const wall = (t: number): string => new Date((this.#deps.wallNow?.() ?? Date.now()) + (t - now)).toISOString();
    const stepLive = live && this.#stepIndex >= 0 && (this.#stage === 'step' || this.#stage === 'hold' || this.#stage === 'waiting');
    return {
      name: this.name,
      phase: this.#phase,
      weight,
      strategy: this.#strategy,
      stable: { ...this.#stable, healthy: this.#stableHealthy },
      candidate: this.#candidate === null ? null : { ...this.#candidate, weight, healthy: this.#healthy && this.#candidateCheckFailures === 0 },
      step: stepLive
        ? {
            index: this.#stepIndex,
            weight: (steps[this.#stepIndex] as { weight: number }).weight,
            bakeEndsAt: this.#stage === 'step' && endsAt !== null ? wall(endsAt) : null,
            count: steps.length,
          }
        : null,
      bake:
        live && remaining !== null && (this.#stage === 'step' || this.#stage === 'shadow' || this.#stage === 'blueGreen')
          ? { stage: this.#stage, endsAt: endsAt === null ? null : wall(endsAt), remainingMs: Math.round(remaining) }
          : null,
      mirrorPercent: this.#deps.picker.state.mirrorBp / 100,
      windows: { stable: snap?.stable ?? this.#stableWindow.snapshot(now, this.config.rollback.latency.quantiles), candidate: snap?.candidate ?? null },
      lastDecision: this.#lastDecision,
    };
  }

  // The plan.

  /** A new candidate's plan: wait for its health check, or start at once. */
  #beginPlan(announce: boolean): void {
    this.#healthy = this.config.healthCheck === null;
    this.#candidateCheckFailures = 0;
    this.#awaitingTraffic = false;
    this.#pausedFrom = null;
    this.#stepIndex = -1;
    const c = this.#candidate as { weight: number };
    if (this.#strategy === 'shadow') {
      this.#phase = 'shadowing';
      c.weight = 0;
    } else if (this.#strategy === 'blueGreen') c.weight = 100;
    else if (this.config.steps.length > 0) {
      this.#stepIndex = 0;
      c.weight = (this.config.steps[0] as { weight: number }).weight;
    }
    if (this.#healthy) this.#start(announce);
    else {
      this.#stage = 'waiting';
      this.#applyTraffic();
    }
  }

  /** The candidate is healthy: its strategy's first stage. */
  #start(announce: boolean): void {
    if (this.#strategy === 'shadow') {
      this.#stage = 'shadow';
      this.#applyTraffic();
      this.#startBake(this.config.shadow.bakeMs, 'shadow');
    } else if (this.#strategy === 'blueGreen') {
      this.#stage = 'blueGreen';
      this.#judge?.freezeStableBaseline(this.#deps.now());
      this.#applyTraffic();
      this.#startBake(this.config.blueGreen.bakeMs, 'blueGreen');
      if (announce) this.#stepEvent(`candidate ${this.#candidate?.version} takes 100% (blue-green); ${this.#stable.version} stays the rollback target for ${formatMs(this.config.blueGreen.bakeMs)}`);
    } else if (this.#stepIndex >= 0) {
      this.#enterStep(this.#stepIndex, announce);
    } else {
      this.#stage = 'hold';
      this.#applyTraffic();
    }
  }

  #enterStep(index: number, announce: boolean): void {
    const step = this.config.steps[index] as { weight: number; bakeMs: number };
    const c = this.#candidate as { weight: number; version: string };
    this.#stage = 'step';
    this.#stepIndex = index;
    this.#awaitingTraffic = false;
    c.weight = step.weight;
    this.#stepStartCount = this.#judge?.candidateSeen ?? 0;
    this.#applyTraffic();
    this.#startBake(step.bakeMs, 'step');
    if (announce) this.#stepEvent(`step ${index + 1} of ${this.config.steps.length}: candidate ${c.version} at ${step.weight}% for ${formatMs(step.bakeMs)}`, step.weight);
  }

  #startBake(ms: number, stage: 'shadow' | 'step' | 'blueGreen'): void {
    this.#bake.start(ms, this.#onBakeEnd(stage));
    if (this.#phase === 'paused') this.#bake.hold();
  }

  #onBakeEnd(stage: Stage): () => void {
    return () => {
      if (this.#stage !== stage || this.#candidate === null || this.#phase === 'rolled_back') return;
      this.#bakeEnded();
    };
  }

  /** A bake ran out without a trip: the plan's next move. */
  #bakeEnded(): void {
    const c = this.#candidate;
    if (c === null || this.#phase === 'rolled_back') return;
    if (this.#stage === 'shadow') {
      if (this.config.steps.length > 0) {
        this.#strategy = 'canary';
        this.#phase = this.#phase === 'paused' ? 'paused' : 'progressing';
        if (this.#pausedFrom !== null) this.#pausedFrom = 'progressing';
        this.#stepEvent(`candidate ${c.version} passed its shadow bake; canary steps begin`);
        this.#enterStep(0, true);
      } else {
        this.#stage = 'hold';
        this.#stepEvent(`candidate ${c.version} passed its shadow bake; waiting in shadowing for a weight or a promote`);
      }
      return;
    }
    if (this.#stage === 'blueGreen') {
      if (this.config.autoPromote) this.promote('schedule');
      else {
        this.#stage = 'hold';
        this.#stepEvent(`candidate ${c.version} passed its blue-green bake at 100%; waiting for a promote`);
      }
      return;
    }
    if (this.#stage !== 'step') return;
    // Where the judge can say so: a step ends on evidence, not on the clock alone. The candidate
    // must have served a request in this step, and `warmup` requests in all (before those, its
    // latency is not judged at all).
    const total = this.#judge?.candidateSeen ?? 0;
    const inStep = total - this.#stepStartCount;
    const warmup = this.config.rollback.warmup;
    if (c.weight > 0 && (inStep === 0 || total < warmup)) {
      if (!this.#awaitingTraffic) {
        this.#awaitingTraffic = true;
        this.#stepEvent(
          `step ${this.#stepIndex + 1}'s bake ended with too little evidence on candidate ${c.version} ` +
            `(${inStep} requests in the step, ${total} in all; the step ends once it has served one in the step and ${warmup} in all)`,
        );
      }
      return;
    }
    this.#awaitingTraffic = false;
    const next = this.#stepIndex + 1;
    if (next < this.config.steps.length) this.#enterStep(next, true);
    else if (this.config.autoPromote) this.promote('schedule');
    else {
      this.#stage = 'hold';
      this.#stepEvent(`the last step baked clean: candidate ${c.version} stays at ${c.weight}% until promoted`);
    }
  }

  #stepEvent(message: string, weight?: number): void {
    this.#emit({ route: this.name, type: 'step', cause: 'schedule', at: this.#wallIso(), message: `route ${this.name}: ${message}`, ...(weight === undefined ? {} : { weight }) });
  }

  #endPlan(): void {
    this.#bake.stop();
    this.#stage = null;
    this.#stepIndex = -1;
    this.#awaitingTraffic = false;
    this.#pausedFrom = null;
  }

  /** A rollback's first move, in one assignment: the candidate gets nothing, not even copies. */
  #cutCandidate(): void {
    const s = this.#deps.picker.state;
    this.#deps.picker.state = trafficState(s.stable, s.stableLabel, s.candidate, s.candidateLabel, 0, false);
  }

  /** The picker's state from the route's: weight, whether the candidate may be reached, copies. */
  #applyTraffic(): void {
    const s = this.#deps.picker.state;
    const before = s.weightBp;
    const c = this.#candidate;
    const live = c !== null && this.#phase !== 'rolled_back' && this.#healthy && !this.#held;
    const shadowing = this.#phase === 'shadowing' || (this.#phase === 'paused' && this.#pausedFrom === 'shadowing');
    this.#deps.picker.state = trafficState(
      s.stable,
      s.stableLabel,
      s.candidate,
      s.candidateLabel,
      live && !shadowing ? c.weight : 0,
      live,
      live && shadowing ? this.config.shadow.mirrorPercent : 0,
    );
    const after = this.#deps.picker.state.weightBp;
    if (after !== before) this.#judge?.shareChanged(this.#deps.now(), after / 100);
  }

  #emit(event: RouteEvent): void {
    this.#generation++;
    this.events.unshift(event);
    if (this.events.length > HISTORY_LIMIT) this.events.length = HISTORY_LIMIT;
    const state = this.state();
    // After the change, off this call stack: a slow or throwing subscriber cannot touch the swap.
    setImmediate(() => this.#deps.publish(event, state));
  }

  #wallIso(): string {
    return new Date(this.#deps.wallNow?.() ?? Date.now()).toISOString();
  }
}

function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1_000) return `${Math.round(ms / 100) / 10}s`;
  return `${Math.round(ms)}ms`;
}
