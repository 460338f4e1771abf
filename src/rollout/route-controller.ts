import type { RouteConfig } from '../config/types.js';
import type { Trip, TripEvidence } from '../judge/decide.js';
import { RouteJudge } from '../judge/route-judge.js';
import type { InFlight } from '../proxy/inflight.js';
import type { Outcome } from '../proxy/outcome.js';
import type { WindowSnapshot } from '../stats/window.js';
import { trafficState, type Picker } from '../traffic/picker.js';
import type { Phase } from './phases.js';
import type { PersistedRoute } from '../store/state-store.js';

export type Cause = 'manual' | 'peer' | 'config' | Trip['reason'] | 'health_check';

export interface VersionState {
  version: string;
  revision: number;
  url: string;
}

export interface RouteEvent {
  route: string;
  /** What happened: a deployment, a weight change, a trip, a manual rollback, a promotion. */
  type: 'deploy' | 'weight' | 'rollback' | 'promote' | 'pause' | 'resume';
  /** Who or what caused it (SPEC §5 reasons, `manual`, `peer`, `config`). */
  cause: Cause;
  at: string;
  message: string;
  from?: VersionState | null;
  to?: VersionState | null;
  weight?: number;
  evidence?: TripEvidence;
  /** Deciding sample to new weights visible, seconds (trips only). */
  decisionSeconds?: number;
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
  stable: VersionState;
  candidate: (VersionState & { weight: number; healthy: boolean }) | null;
  step: { index: number; weight: number; bakeEndsAt: string | null } | null;
  windows: { stable: WindowSnapshot | null; candidate: WindowSnapshot | null };
  lastDecision: { reason: Cause; at: string; message: string; evidence: TripEvidence | null } | null;
}

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
}

/** A change the route's state does not allow (the admin API answers 409). */
export class RolloutRefusal extends Error {
  override readonly name = 'RolloutRefusal';
}

/** No version or revision of that name (the admin API answers 404). */
export class UnknownVersion extends Error {
  override readonly name = 'UnknownVersion';
}

/** How many events a route keeps, newest first. */
export const HISTORY_LIMIT = 1_000;

/**
 * One route's rollout: its versions, phase and judge. A trip swaps the weights synchronously, in
 * the call that delivered the deciding outcome, before anything else happens; the event is
 * published afterwards and nothing done with it (persist, log, notify) can undo or delay the swap.
 */
export class RouteController<U> {
  readonly name: string;
  readonly config: RouteConfig;
  readonly #deps: ControllerDeps<U>;
  #phase: Phase;
  #stable: VersionState;
  #candidate: (VersionState & { weight: number }) | null;
  #judge: RouteJudge | null = null;
  #lastDecision: RouteState['lastDecision'] = null;
  #nextRevision: number;
  readonly events: RouteEvent[] = [];
  /** Every version deployed to this route, newest first. */
  readonly revisions: Revision[] = [];

  constructor(config: RouteConfig, deps: ControllerDeps<U>) {
    this.name = config.name;
    this.config = config;
    this.#deps = deps;
    this.#stable = { version: config.stable.version, url: config.stable.url, revision: 1 };
    this.#nextRevision = 2;
    const c = config.candidate;
    this.#candidate = c === null ? null : { version: c.version, url: c.url, weight: c.weight, revision: this.#nextRevision++ };
    this.#phase = c === null ? 'stable' : 'progressing';
    if (c !== null) this.#judge = new RouteJudge(config.rollback, this.#stable.version, c.version, deps.now());
    const at = this.#wallIso();
    this.revisions.unshift({ ...this.#stable, deployedAt: at, status: 'stable' });
    if (this.#candidate !== null) this.revisions.unshift({ ...this.#candidate, deployedAt: at, status: 'candidate' });
  }

  /**
   * Deploys a new candidate (the next revision number) at `weight`, replacing any candidate the
   * route had, rolled back or not; the judge starts afresh.
   */
  deploy(version: string, url: string, weight: number, cause: Cause = 'manual'): void {
    const make = this.#deps.makeUpstream;
    if (make === undefined) throw new RolloutRefusal(`route ${this.name}: deployments need a data plane`);
    if (version === this.#stable.version) throw new RolloutRefusal(`route ${this.name}: ${version} is the stable version`);
    const s = this.#deps.picker.state;
    const upstream = make(version, url);
    this.#deps.picker.state = trafficState(s.stable, s.stableLabel, upstream, version, weight, true);
    if (s.candidate !== null) this.#deps.retire?.(s.candidate);
    const previous = this.#candidate;
    if (previous !== null) this.#setRevisionStatus(previous.revision, this.#phase === 'rolled_back' ? 'rolled_back' : 'retired');
    this.#candidate = { version, url, weight, revision: this.#nextRevision++ };
    this.revisions.unshift({ ...this.#candidate, deployedAt: this.#wallIso(), status: 'candidate' });
    this.#judge = new RouteJudge(this.config.rollback, this.#stable.version, version, this.#deps.now());
    this.#phase = 'progressing';
    this.#lastDecision = null;
    this.#emit({
      route: this.name,
      type: 'deploy',
      cause,
      at: this.#wallIso(),
      message: `route ${this.name}: candidate ${version} (revision ${this.#candidate.revision}) deployed at ${weight}%`,
      from: previous,
      to: { ...this.#candidate },
      weight,
    });
  }

  /** The candidate becomes the stable version; the old stable's pool is released. */
  promote(cause: Cause = 'manual'): void {
    const c = this.#candidate;
    if (c === null) throw new RolloutRefusal(`route ${this.name} has no candidate to promote`);
    if (this.#phase === 'rolled_back') throw new RolloutRefusal(`route ${this.name}: candidate ${c.version} was rolled back and cannot be promoted`);
    const s = this.#deps.picker.state;
    this.#deps.picker.state = trafficState(s.candidate as U, c.version, null, null, 0);
    this.#deps.retire?.(s.stable);
    const from = this.#stable;
    this.#setRevisionStatus(from.revision, 'retired');
    this.#setRevisionStatus(c.revision, 'stable');
    this.#stable = { version: c.version, url: c.url, revision: c.revision };
    this.#candidate = null;
    this.#judge = null;
    this.#phase = 'stable';
    this.#emit({
      route: this.name,
      type: 'promote',
      cause,
      at: this.#wallIso(),
      message: `route ${this.name}: ${c.version} (revision ${c.revision}) promoted to stable, replacing ${from.version}`,
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
    if (s.stable !== stableU) this.#deps.retire?.(s.stable);
    if (s.candidate !== null && s.candidate !== stableU) this.#deps.retire?.(s.candidate);
    const from = this.#candidate ?? this.#stable;
    if (this.#candidate !== null && this.#candidate.revision !== target.revision) this.#setRevisionStatus(this.#candidate.revision, 'rolled_back');
    if (this.#stable.revision !== target.revision) this.#setRevisionStatus(this.#stable.revision, 'retired');
    this.#setRevisionStatus(target.revision, 'stable');
    this.#stable = { version: target.version, url: target.url, revision: target.revision };
    this.#candidate = null;
    this.#judge = null;
    this.#phase = 'stable';
    const at = this.#wallIso();
    const message = `route ${this.name} rolled back (${cause}) to ${target.version} (revision ${target.revision})`;
    this.#lastDecision = { reason: cause, at, message, evidence: null };
    this.#emit({ route: this.name, type: 'rollback', cause, at, message, from: { ...from }, to: { ...this.#stable }, weight: 0 });
  }

  /** Holds the candidate where it is (a step schedule's clock stops); refused without a live candidate. */
  pause(cause: Cause = 'manual'): void {
    if (this.#candidate === null || (this.#phase !== 'progressing' && this.#phase !== 'shadowing')) {
      throw new RolloutRefusal(`route ${this.name} has no progressing candidate to pause`);
    }
    this.#phase = 'paused';
    this.#emit({ route: this.name, type: 'pause', cause, at: this.#wallIso(), message: `route ${this.name} paused (${cause})` });
  }

  resume(cause: Cause = 'manual'): void {
    if (this.#candidate === null || this.#phase !== 'paused') {
      throw new RolloutRefusal(`route ${this.name} has no paused candidate to resume`);
    }
    this.#phase = 'progressing';
    this.#emit({ route: this.name, type: 'resume', cause, at: this.#wallIso(), message: `route ${this.name} resumed (${cause})` });
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
    };
  }

  /**
   * Takes a saved state back (the config declared the same versions as when it was saved): the
   * phase, the versions, the weights, a rollback, the history. A rolled-back candidate stays
   * rolled back.
   */
  restore(p: PersistedRoute): void {
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
    const live = p.phase !== 'rolled_back';
    this.#deps.picker.state = trafficState(stableU, p.stable.version, candidateU, p.candidate?.version ?? null, live ? (p.candidate?.weight ?? 0) : 0, candidateU !== null && live);
    this.#phase = p.phase;
    this.#stable = { ...p.stable };
    this.#candidate = p.candidate === null ? null : { ...p.candidate };
    this.#lastDecision = p.lastDecision;
    this.#nextRevision = p.nextRevision;
    this.revisions.splice(0, this.revisions.length, ...p.revisions);
    this.events.splice(0, this.events.length, ...p.events);
    this.#judge = p.candidate === null ? null : new RouteJudge(this.config.rollback, p.stable.version, p.candidate.version, this.#deps.now());
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
    if (judge === null) return;
    const decidedAt = o.startedAt + o.latencyMs;
    const trip = judge.observe(o, decidedAt);
    if (trip !== null) this.#trip(trip, decidedAt);
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
        const mask = judge.slowMask(age);
        if ((mask & ~item.slowMask) === 0) continue;
        const trip = judge.observeSlow(role, age, item.slowMask, now);
        item.slowMask |= mask;
        if (trip !== null) {
          this.#trip(trip, now);
          return;
        }
      }
    }
  }

  #trip(trip: Trip, decidedAt: number): void {
    // Weights first: the next pick() must already see 0%.
    const s = this.#deps.picker.state;
    this.#deps.picker.state = trafficState(s.stable, s.stableLabel, s.candidate, s.candidateLabel, 0, false);
    const decisionSeconds = Math.max(0, this.#deps.now() - decidedAt) / 1000;
    this.#phase = 'rolled_back';
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
   * deployed).
   */
  setWeight(weight: number, cause: Cause = 'manual'): void {
    const c = this.#candidate;
    if (c === null) throw new RolloutRefusal(`route ${this.name} has no candidate`);
    if (this.#phase === 'rolled_back') {
      throw new RolloutRefusal(`route ${this.name}: candidate ${c.version} was rolled back; deploy a new candidate first`);
    }
    const s = this.#deps.picker.state;
    this.#deps.picker.state = trafficState(s.stable, s.stableLabel, s.candidate, s.candidateLabel, weight, s.candidateRoutable);
    const from = c.weight;
    c.weight = weight;
    this.#emit({
      route: this.name,
      type: 'weight',
      cause,
      at: this.#wallIso(),
      message: `route ${this.name}: candidate ${c.version} weight ${from}% -> ${weight}% (${cause})`,
      weight,
    });
  }

  /** Partial rollback by an operator: all traffic back on stable at once, candidate kept for inspection. */
  rollback(cause: Cause = 'manual'): void {
    const c = this.#candidate;
    if (c === null || this.#phase === 'rolled_back') {
      throw new RolloutRefusal(`route ${this.name} has no candidate to roll back`);
    }
    const s = this.#deps.picker.state;
    this.#deps.picker.state = trafficState(s.stable, s.stableLabel, s.candidate, s.candidateLabel, 0, false);
    this.#phase = 'rolled_back';
    this.#setRevisionStatus(c.revision, 'rolled_back');
    const at = this.#wallIso();
    const message = `route ${this.name} rolled back (${cause}): candidate ${c.version} -> stable ${this.#stable.version}`;
    this.#lastDecision = { reason: cause, at, message, evidence: null };
    this.#emit({ route: this.name, type: 'rollback', cause, at, message, from: { ...c }, to: { ...this.#stable }, weight: 0 });
  }

  /** The route's state as the admin API shows it (SPEC §6). */
  state(): RouteState {
    const now = this.#deps.now();
    const snap = this.#judge?.snapshot(now) ?? null;
    const weight = this.#phase === 'rolled_back' || this.#candidate === null ? 0 : this.#candidate.weight;
    return {
      name: this.name,
      phase: this.#phase,
      weight,
      stable: { ...this.#stable },
      candidate: this.#candidate === null ? null : { ...this.#candidate, weight, healthy: true },
      step: null,
      windows: { stable: snap?.stable ?? null, candidate: snap?.candidate ?? null },
      lastDecision: this.#lastDecision,
    };
  }

  #emit(event: RouteEvent): void {
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
