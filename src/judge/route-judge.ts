import type { RollbackRules } from '../config/types.js';
import type { Outcome, VersionRole } from '../proxy/outcome.js';
import { countedFailure, judgedLatency } from './judged.js';
import { SlidingWindow, type WindowSnapshot } from '../stats/window.js';
import { NO_SIGNALS, ruleAlphas, type JudgeSignals, type RuleAlphas } from './alpha.js';
import { AnswerSignals } from './answer-signals.js';
import { describeTrip, type Trip, type TripReason } from './decide.js';
import { DeferredTrip } from './deferred-trip.js';
import { FleetTally, type FleetDelta } from './fleet-delta.js';
import { BaselineLatency, baselineError, type BaselineError } from './rules/baseline.js';
import { ConsecutiveFailures } from './rules/consecutive-failures.js';
import { ErrorAbsolute } from './rules/error-absolute.js';
import { ErrorRelative } from './rules/error-relative.js';
import { Latency } from './rules/latency.js';
import { PairedLatency } from './rules/paired-latency.js';
import { round3, type JudgeEvent, type Rule, type RuleCrossing } from './rules/rule.js';
import { TrafficShare } from './traffic-share.js';

export { ALPHA_SHARES, EPOCHS_PER_WINDOW } from './alpha.js';
export { SHARED_CAUSE_MS } from './rules/consecutive-failures.js';

export { judgedLatency, recordOutcome } from './judged.js';

/**
 * The evidence of one deployment (one candidate against the stable): both versions' sliding
 * windows and the rules of SPEC §5 (see rules/), fed one outcome at a time. `observe()` is the
 * per-request entry point: O(1) but for a pass over a handful of alternatives when the evidence
 * against the candidate grew, never a scan of a window.
 */
export class RouteJudge {
  readonly rules: RollbackRules;
  readonly stableLabel: string;
  readonly candidateLabel: string;
  readonly stable: SlidingWindow;
  readonly candidate: SlidingWindow;
  readonly #alphas: RuleAlphas;
  readonly #latch: ConsecutiveFailures;
  readonly #errorRelative: ErrorRelative;
  readonly #errorAbsolute: ErrorAbsolute;
  readonly #latency: Latency;
  /** Shadow copies: latency judged on pairs (the copy and stable's answer to the same request). */
  readonly #paired: PairedLatency;
  /** Blue-green after the switch: the candidate against stable's window from before it. */
  #baselineError: BaselineError | null = null;
  #baselineLatency: BaselineLatency | null = null;
  /** The rules asked for a crossing, in SPEC order: the first that crosses is the reason. */
  #order: Rule[];
  /** What this judge saw since the last `takeFleetDelta()`: the replicas' shared evidence. */
  readonly #tally: FleetTally;
  readonly #share: TrafficShare;
  /** The one event the rules are fed with, filled afresh each time. */
  readonly #event: JudgeEvent = { kind: 'answer', role: 'stable', now: 0, latencyMs: 0, failed: false, counted: 0, share: Number.NaN, paired: false, pairedMs: Number.NaN, pastWarmup: false };
  #candidateSeen = 0;
  #pairedMode = false;
  #tripped: Trip | null = null;
  /** What is judged of the answers themselves (checks, tpot, agreement); null on a judge built without signals. */
  readonly signals: AnswerSignals | null;

  /**
   * `stableWindow`: stable's window so far, when the route kept one before this deployment
   * (the latency thresholds and blue-green's baseline then start from stable's history).
   */
  constructor(rules: RollbackRules, stableLabel: string, candidateLabel: string, now: number, stableWindow?: SlidingWindow, signals: JudgeSignals = NO_SIGNALS) {
    this.rules = rules;
    this.stableLabel = stableLabel;
    this.candidateLabel = candidateLabel;
    this.stable = stableWindow ?? new SlidingWindow(rules.windowMs, now);
    this.candidate = new SlidingWindow(rules.windowMs, now);
    this.#alphas = ruleAlphas(rules, rules.alpha, signals);
    this.signals = !signals.json && !signals.llm && signals.agreement === null ? null : new AnswerSignals(rules, this.#alphas, signals, now);
    this.#tally = new FleetTally(rules.latency.quantiles);
    this.#share = new TrafficShare(this.candidate, this.stable);
    this.#latch = new ConsecutiveFailures(rules.consecutiveFailures);
    this.#errorRelative = new ErrorRelative(rules, this.#alphas.errorRelative, now);
    this.#errorAbsolute = new ErrorAbsolute(rules, this.#alphas.errorAbsolute, now);
    this.#latency = new Latency(rules, this.#alphas.latency, now, this.stable, this.#tally.counts);
    this.#paired = new PairedLatency(rules, this.#alphas.paired);
    const kinds = this.signals?.kindTests ?? [];
    this.#order = [this.#latch, this.#errorRelative, this.#errorAbsolute, ...kinds, this.#paired, this.#latency];
    for (const rule of [this.signals?.tpot, this.signals?.agreement]) if (rule) this.#order.push(rule);
  }

  get tripped(): Trip | null {
    return this.#tripped;
  }

  /** The evidence since the last call (null when there was none), for the fleet's judge. */
  takeFleetDelta(): FleetDelta | null {
    return this.#tally.take();
  }

  /** Candidate requests judged so far (the step schedule asks whether a step had any). */
  get candidateSeen(): number {
    return this.#candidateSeen;
  }

  /**
   * Blue-green's switch: from now on the candidate is judged against stable's window as it is
   * now (see rules/baseline.ts), since stable takes no more traffic to compare with.
   */
  freezeStableBaseline(now: number): void {
    this.#latency.refresh(now);
    const snap = this.stable.snapshot(now, this.rules.latency.quantiles);
    const error = baselineError(this.rules, this.#alphas.errorRelative, now, snap);
    const latency = new BaselineLatency(this.rules, this.#alphas.latency, now, this.#latency.thresholds);
    this.#baselineError = error;
    this.#baselineLatency = latency;
    this.#latch.countEveryFailure();
    // The relative test takes no more events (see #feed), but what it holds still counts.
    const absolute = error === null ? [this.#errorAbsolute] : [error, this.#errorAbsolute];
    this.#order = [this.#latch, this.#errorRelative, ...absolute, latency, this.#paired];
  }

  /** Feeds one finished request; returns the trip it caused, if any (once per deployment). */
  observe(o: Outcome, now: number): Trip | null {
    if (o.failure === 'aborted') return null;
    const failure = countedFailure(o.failure);
    const latency = judgedLatency(o);
    if (this.#tripped !== null) {
      // Decided: the windows go on filling, for inspection; the tests are done. The trip's
      // evidence is fixed first, as it was at the deciding sample.
      void this.#tripped.evidence;
      (o.role === 'candidate' ? this.candidate : this.stable).record(now, latency, failure);
      return null;
    }
    this.#tick(now);
    (o.role === 'candidate' ? this.candidate : this.stable).record(now, latency, failure);
    this.#share.count(o.role);
    this.#tally.answer(o.role, failure !== null);
    if (o.role === 'candidate') {
      this.#candidateSeen++;
      this.#pairedMode = o.pairedMs !== undefined;
    } else if (this.#baselineLatency !== null) return null;
    const e = this.#fill('answer', o.role, now, latency, o.slowMask ?? 0);
    e.failed = failure !== null;
    e.pairedMs = o.pairedMs ?? Number.NaN;
    // This candidate request itself is not behind the warmup yet.
    e.pastWarmup = o.role === 'candidate' ? this.#candidateSeen > this.rules.warmup : this.#candidateSeen >= this.rules.warmup;
    const signals = this.signals;
    if (signals === null) return this.#feed(e);
    if (failure !== null && o.role === 'candidate') signals.candidateFailure(o);
    const trip = this.#feed(e);
    if (trip !== null) return trip;
    if (failure !== null && signals.kindFailure(failure, e)) return this.#check(now);
    return signals.observeTpot(o, e) ? this.#check(now) : null;
  }

  /** One pair of answers compared for the agreement (shadow copies, or canary copies to stable). */
  observeAgreement(agree: boolean, example: { stable: string; candidate: string } | null, now: number): Trip | null {
    const a = this.signals?.agreement;
    if (a === undefined || a === null || this.#tripped !== null) return null;
    this.#tick(now);
    return a.add(agree, example) ? this.#check(now) : null;
  }

  /**
   * A request in flight (from the periodic sweep): counts it as slow as soon as it passes a
   * threshold, once per test, marking `item.slowMask`. Shadow copies are measured against stable's
   * answer to the same request once that is known.
   */
  observeInFlight(role: VersionRole, elapsedMs: number, item: { slowMask: number; readonly pairedMs?: number }, now: number): Trip | null {
    if (item.pairedMs !== undefined) {
      if (role !== 'candidate' || (item.slowMask & 1) !== 0 || this.#tripped !== null || this.#candidateSeen < this.rules.warmup) return null;
      if (!this.#paired.admitInFlight(elapsedMs, item, now)) return null;
      this.#tick(now);
      this.#paired.observe(this.#fill('paired-slow', role, now, elapsedMs, item.slowMask));
      return this.#check(now);
    }
    if (this.#pairedMode) return null;
    const mask = this.slowMask(elapsedMs);
    if ((mask & ~item.slowMask) === 0) return null;
    const trip = this.observeSlow(role, elapsedMs, item.slowMask, now);
    item.slowMask |= mask;
    return trip;
  }

  /**
   * A request still in flight that has passed latency thresholds: it counts as a slow answer of
   * its version now, rather than when (or if) it ends. `countedMask` holds the tests that already
   * counted it (bit i: quantile i); `slowMask(elapsedMs)` gives the new mask to keep.
   */
  observeSlow(role: VersionRole, elapsedMs: number, countedMask: number, now: number): Trip | null {
    if (this.#tripped !== null || this.#candidateSeen < this.rules.warmup) return null;
    this.#tick(now);
    return this.#feed(this.#fill('slow', role, now, elapsedMs, countedMask));
  }

  /** The latency tests (bit i: quantile i) whose threshold `elapsedMs` passes. */
  slowMask(elapsedMs: number): number {
    return (this.#baselineLatency ?? this.#latency).slowMask(elapsedMs);
  }

  /** The smallest latency threshold in force (ms): younger in-flight requests are not slow yet. */
  get smallestThreshold(): number {
    return (this.#baselineLatency ?? this.#latency).smallestThreshold(this.#pairedMode ? this.rules.latency.minDeltaMs : Infinity);
  }

  snapshot(now: number): { stable: WindowSnapshot; candidate: WindowSnapshot } {
    const qs = this.rules.latency.quantiles;
    return { stable: this.stable.snapshot(now, qs), candidate: this.candidate.snapshot(now, qs) };
  }

  /**
   * The traffic mix changed on purpose (a weight set, a step): the conditional tests take the
   * share from the requests since (see TrafficShare) until the windows hold only the new mix.
   */
  shareChanged(now: number, weightPercent: number): void {
    this.#share.changed(now, weightPercent);
  }

  /**
   * Sets the one event up (`failed`, `pairedMs` cleared; `pastWarmup` set, as every caller but
   * an answer has checked it). Before the switch of blue-green the share is measured here, after
   * the window took the event: the rules that need it run only then.
   */
  #fill(kind: JudgeEvent['kind'], role: VersionRole, now: number, latencyMs: number, counted: number): JudgeEvent {
    const e = this.#event;
    e.kind = kind;
    e.role = role;
    e.now = now;
    e.latencyMs = latencyMs;
    e.failed = false;
    e.counted = counted;
    e.share = this.#baselineLatency === null && kind !== 'paired-slow' ? this.#share.at(now) : Number.NaN;
    e.paired = this.#pairedMode;
    e.pairedMs = Number.NaN;
    e.pastWarmup = true;
    return e;
  }

  /**
   * Hands the event to every rule of the mode; checks them when one says the evidence grew.
   * Each rule is called by name, not from a list: a call site that sees one class is inlined,
   * one that sees five (a loop over the rules) is megamorphic and is not.
   */
  #feed(e: JudgeEvent): Trip | null {
    let rose = this.#latch.observe(e);
    const baseline = this.#baselineLatency;
    if (baseline === null) {
      if (this.#errorRelative.observe(e)) rose = true;
      if (this.#errorAbsolute.observe(e)) rose = true;
      if (this.#paired.observe(e)) rose = true;
      if (this.#latency.observe(e)) rose = true;
    } else {
      // After the switch stable's answers no longer get here, and the candidate's own rates
      // take the place of the comparisons with stable.
      if (this.#errorAbsolute.observe(e)) rose = true;
      if (this.#baselineError?.observe(e) === true) rose = true;
      if (baseline.observe(e)) rose = true;
    }
    return rose ? this.#check(e.now) : null;
  }

  /** Every rule's epochs move together, on every event. */
  #tick(now: number): void {
    this.#errorRelative.tick(now);
    this.#errorAbsolute.tick(now);
    this.#latency.tick(now);
    this.#paired.tick(now);
    this.#baselineError?.tick(now);
    this.#baselineLatency?.tick(now);
    this.signals?.tick(now);
  }

  /** The rules in SPEC order; the first that crosses is the reason. */
  #check(now: number): Trip | null {
    const order = this.#order;
    for (let i = 0; i < order.length; i++) {
      const rule = order[i] as Rule;
      const c = rule.crossing();
      if (c !== null) return this.#trip(rule.reason, now, c);
    }
    return null;
  }

  #trip(ruleReason: TripReason, now: number, c: RuleCrossing): Trip {
    const named = this.signals?.rename(ruleReason) ?? null;
    const reason = named?.reason ?? ruleReason;
    const build = (): Trip => {
      const snap = this.snapshot(now);
      return describeTrip(reason, now, {
        stable: { version: this.stableLabel, ...snap.stable },
        candidate: { version: this.candidateLabel, ...snap.candidate },
        statistic: round3(c.statistic),
        boundary: round3(c.boundary),
        ...named?.detail,
        ...c.detail,
      });
    };
    this.#tripped = new DeferredTrip(reason, now, build);
    return this.#tripped;
  }
}
