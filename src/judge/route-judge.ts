import type { RollbackRules } from '../config/types.js';
import type { FailureKind, Outcome, VersionRole } from '../proxy/outcome.js';
import { SlidingWindow, type CountedFailure, type WindowSnapshot } from '../stats/window.js';
import { ALPHA_SHARES, EPOCHS_PER_WINDOW } from './alpha.js';
import { describeTrip, type Trip, type TripReason } from './decide.js';
import type { FleetDelta } from './fleet-delta.js';
import { ConditionalTest, RateAboveTest, SpendingTests, crossing, type Crossing } from './sequential.js';

export { ALPHA_SHARES, EPOCHS_PER_WINDOW } from './alpha.js';

/**
 * A candidate failure while stable is failing too (stable's latest answer failed, within this
 * long) has a shared cause, such as a dependency both use: the latch skips it.
 */
export const SHARED_CAUSE_MS = 1_000;
/** How many newest window buckets give the traffic share the conditional tests use. */
const SHARE_BUCKETS = 2;
/** Requests since a change of the mix before their own share is used instead of the weight set. */
const MIX_MIN_REQUESTS = 20;
/** Stable records between two refreshes of the latency thresholds (a quantile costs a histogram pass). */
const THRESHOLD_REFRESH = 64;

/** The latency a judge looks at: time to first byte for streams, else the whole answer. */
export function judgedLatency(o: Outcome): number {
  return o.streaming && !Number.isNaN(o.ttfbMs) ? o.ttfbMs : o.latencyMs;
}

function countedFailure(kind: FailureKind): CountedFailure | null {
  return kind === 'none' || kind === 'aborted' ? null : kind;
}

/** Records a finished request in a window with no judge (stable's, while a route has no candidate). */
export function recordOutcome(w: SlidingWindow, o: Outcome, now: number): void {
  if (o.failure !== 'aborted') w.record(now, judgedLatency(o), countedFailure(o.failure));
}

interface LatencyTest {
  q: number;
  /** Current threshold in ms; NaN until stable has answered. */
  threshold: number;
  stableQuantile: number;
  tests: SpendingTests<ConditionalTest>;
}

/**
 * Blue-green: while stable takes no traffic, the candidate is tested against stable's window
 * from just before the switch: its failure rate against stable's (at the upper end of what that
 * window allows, times the tolerance), and how often it is slower than the thresholds stable's
 * quantiles gave then (no more often than 1 - q for a candidate no slower than stable).
 */
interface Baseline {
  stableFailureRate: number;
  stableCount: number;
  error: SpendingTests<RateAboveTest> | null;
  latency: { q: number; threshold: number; stableQuantile: number; tests: SpendingTests<RateAboveTest> }[];
}

/**
 * The evidence of one deployment (one candidate against the stable): both versions' sliding
 * windows and the sequential tests of SPEC §5, fed one outcome at a time. `observe()` is the
 * per-request entry point: O(1) but for a pass over a handful of alternatives when the evidence
 * against the candidate grew, never a scan of a window.
 */
export class RouteJudge {
  readonly rules: RollbackRules;
  readonly stableLabel: string;
  readonly candidateLabel: string;
  readonly stable: SlidingWindow;
  readonly candidate: SlidingWindow;
  readonly #errorRelative: SpendingTests<ConditionalTest>;
  readonly #errorAbsolute: SpendingTests<RateAboveTest>;
  readonly #latency: LatencyTest[];
  readonly #alphaEach: { errorRelative: number; errorAbsolute: number; latency: number };
  #consecutive = 0;
  #lastStableFailureAt = -Infinity;
  #stableLastFailed = false;
  #candidateSeen = 0;
  #stableSinceRefresh = THRESHOLD_REFRESH;
  #tripped: Trip | null = null;
  #baseline: Baseline | null = null;
  /** Since the last deliberate change of the traffic mix: when, the weight set, requests per version. */
  /** What this judge saw since the last `takeFleetDelta()`: the replicas' shared evidence. */
  readonly #delta: FleetDelta;
  #mixFrom = -Infinity;
  #mixWeight = 0;
  #mixCandidate = 0;
  #mixStable = 0;
  /** Shadow copies: latency judged on pairs (the copy and stable's answer to the same request). */
  #paired: SpendingTests<ConditionalTest> | null = null;
  #pairedMode = false;
  /**
   * One stall (a pause of a model server or of the host) slows every request in flight at once:
   * one episode, not many independent events. A version's slow pair counts only when its request
   * started after the last counted one of that version ended; the rule is the same for both
   * versions of a pair, so a candidate no slower than stable still wins half the counted pairs.
   */
  readonly #episodeEnd = { candidate: -Infinity, stable: -Infinity };

  /**
   * `stableWindow`: stable's window so far, when the route kept one before this deployment
   * (the latency thresholds and blue-green's baseline then start from stable's history).
   */
  constructor(rules: RollbackRules, stableLabel: string, candidateLabel: string, now: number, stableWindow?: SlidingWindow) {
    this.rules = rules;
    this.stableLabel = stableLabel;
    this.candidateLabel = candidateLabel;
    this.stable = stableWindow ?? new SlidingWindow(rules.windowMs, now);
    this.candidate = new SlidingWindow(rules.windowMs, now);
    const latencyAlpha = (rules.alpha * ALPHA_SHARES.latency) / Math.max(1, rules.latency.quantiles.length);
    this.#alphaEach = {
      errorRelative: rules.alpha * ALPHA_SHARES.errorRelative,
      errorAbsolute: rules.alpha * ALPHA_SHARES.errorAbsolute,
      latency: latencyAlpha,
    };
    const epochMs = rules.windowMs / EPOCHS_PER_WINDOW;
    this.#errorRelative = new SpendingTests(this.#alphaEach.errorRelative, epochMs, now, () => new ConditionalTest(rules.errorRate.tolerance));
    this.#errorAbsolute = new SpendingTests(this.#alphaEach.errorAbsolute, epochMs, now, () => new RateAboveTest(rules.errorRate.maxAbsolute));
    const zeros = () => rules.latency.quantiles.map(() => 0);
    this.#delta = { stable: { requests: 0, failures: 0, slow: zeros() }, candidate: { requests: 0, failures: 0, slow: zeros() } };
    this.#latency = rules.latency.quantiles.map((q) => ({
      q,
      threshold: Number.NaN,
      stableQuantile: Number.NaN,
      tests: new SpendingTests(latencyAlpha, epochMs, now, () => new ConditionalTest(1)),
    }));
  }

  get tripped(): Trip | null {
    return this.#tripped;
  }

  /** The evidence since the last call (null when there was none), for the fleet's judge. */
  takeFleetDelta(): FleetDelta | null {
    const d = this.#delta;
    if (d.stable.requests + d.candidate.requests + d.stable.slow.reduce((a, b) => a + b, 0) + d.candidate.slow.reduce((a, b) => a + b, 0) === 0) return null;
    const out: FleetDelta = { stable: { ...d.stable, slow: [...d.stable.slow] }, candidate: { ...d.candidate, slow: [...d.candidate.slow] } };
    for (const v of [d.stable, d.candidate]) {
      v.requests = 0;
      v.failures = 0;
      v.slow.fill(0);
    }
    return out;
  }

  /** Candidate requests judged so far (the step schedule asks whether a step had any). */
  get candidateSeen(): number {
    return this.#candidateSeen;
  }

  /**
   * Blue-green's switch: from now on the relative tests compare the candidate with stable's
   * window as it is now (see Baseline), since stable takes no more traffic to compare with.
   */
  freezeStableBaseline(now: number): void {
    this.#refreshThresholds(now);
    const snap = this.stable.snapshot(now, this.rules.latency.quantiles);
    const n = snap.count;
    const p = n === 0 ? 0 : snap.failures / n;
    // Stable's failure rate at the upper end of its 95% interval, so that its own noise does not count against the candidate.
    const upper = n === 0 ? 1 : Math.min(1, p + 2 * Math.sqrt((p * (1 - p)) / n) + 1 / n);
    const p0 = Math.min(0.999, this.rules.errorRate.tolerance * upper);
    const epochMs = this.rules.windowMs / EPOCHS_PER_WINDOW;
    this.#baseline = {
      stableFailureRate: p,
      stableCount: n,
      error: n === 0 || p0 >= this.rules.errorRate.maxAbsolute ? null : new SpendingTests(this.#alphaEach.errorRelative, epochMs, now, () => new RateAboveTest(p0)),
      latency: this.#latency
        .filter((l) => !Number.isNaN(l.threshold))
        .map((l) => ({ q: l.q, threshold: l.threshold, stableQuantile: l.stableQuantile, tests: new SpendingTests(this.#alphaEach.latency, epochMs, now, () => new RateAboveTest(1 - l.q)) })),
    };
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
    const counted = o.slowMask ?? 0;
    return o.role === 'candidate' ? this.#candidate(now, latency, failure, counted, o.pairedMs) : this.#stable(now, latency, failure, counted);
  }

  /**
   * A request in flight (from the periodic sweep): counts it as slow as soon as it passes a
   * threshold, once per test, marking `item.slowMask`. Shadow copies are measured against stable's
   * answer to the same request once that is known.
   */
  observeInFlight(role: VersionRole, elapsedMs: number, item: { slowMask: number; readonly pairedMs?: number }, now: number): Trip | null {
    if (item.pairedMs !== undefined) {
      if (role !== 'candidate' || (item.slowMask & 1) !== 0 || this.#tripped !== null || this.#candidateSeen < this.rules.warmup) return null;
      if (!(elapsedMs > this.#pairedThreshold(item.pairedMs))) return null;
      item.slowMask |= 1;
      const start = now - elapsedMs;
      if (start < this.#episodeEnd.candidate) return null;
      this.#episodeEnd.candidate = now;
      this.#tickEpochs(now);
      this.#feedConditional(this.#pairedTests(now), 0.5, true);
      return this.#check(now, null);
    }
    if (this.#pairedMode) return null;
    const mask = this.slowMask(elapsedMs);
    if ((mask & ~item.slowMask) === 0) return null;
    const trip = this.observeSlow(role, elapsedMs, item.slowMask, now);
    item.slowMask |= mask;
    return trip;
  }

  /** How much longer than `ms` another answer to the same request may take before it is slow. */
  #pairedThreshold(ms: number): number {
    const { tolerance, minDeltaMs } = this.rules.latency;
    return Number.isNaN(ms) ? Number.NaN : Math.max(ms * tolerance, ms + minDeltaMs);
  }

  #pairedTests(now: number): SpendingTests<ConditionalTest> {
    if (this.#paired === null) this.#paired = new SpendingTests(this.rules.alpha * ALPHA_SHARES.latency, this.rules.windowMs / EPOCHS_PER_WINDOW, now, () => new ConditionalTest(1));
    return this.#paired;
  }

  /**
   * A request still in flight that has passed latency thresholds: it counts as a slow answer of
   * its version now, rather than when (or if) it ends. `countedMask` holds the tests that already
   * counted it (bit i: quantile i); `slowMask(elapsedMs)` gives the new mask to keep.
   */
  observeSlow(role: VersionRole, elapsedMs: number, countedMask: number, now: number): Trip | null {
    if (this.#tripped !== null || this.#candidateSeen < this.rules.warmup) return null;
    this.#tickEpochs(now);
    const b = this.#baseline;
    if (b !== null) {
      if (role !== 'candidate') return null;
      let slow = false;
      b.latency.forEach((l, i) => {
        if (!(elapsedMs > l.threshold) || (countedMask & (1 << i)) !== 0) return;
        slow = true;
        for (const [t] of l.tests.live()) t.add(true);
      });
      return slow ? this.#check(now, null) : null;
    }
    const share = this.#share(now);
    let slow = false;
    for (let i = 0; i < this.#latency.length; i++) {
      const l = this.#latency[i] as LatencyTest;
      if (!(elapsedMs > l.threshold) || (countedMask & (1 << i)) !== 0) continue;
      slow = true;
      (this.#delta[role].slow[i] as number)++;
      this.#feedConditional(l.tests, share, role === 'candidate');
    }
    return slow && role === 'candidate' ? this.#check(now, null) : null;
  }

  /** The latency tests (bit i: quantile i) whose threshold `elapsedMs` passes. */
  slowMask(elapsedMs: number): number {
    const tests = this.#baseline?.latency ?? this.#latency;
    let mask = 0;
    for (let i = 0; i < tests.length; i++) if (elapsedMs > (tests[i] as { threshold: number }).threshold) mask |= 1 << i;
    return mask;
  }

  /** The smallest latency threshold in force (ms): younger in-flight requests are not slow yet. */
  get smallestThreshold(): number {
    let min = this.#pairedMode ? this.rules.latency.minDeltaMs : Infinity;
    for (const l of this.#baseline?.latency ?? this.#latency) if (l.threshold < min) min = l.threshold;
    return min;
  }

  snapshot(now: number): { stable: WindowSnapshot; candidate: WindowSnapshot } {
    const qs = this.rules.latency.quantiles;
    return { stable: this.stable.snapshot(now, qs), candidate: this.candidate.snapshot(now, qs) };
  }

  #stable(now: number, latency: number, failure: CountedFailure | null, counted: number): Trip | null {
    this.#tickEpochs(now);
    this.stable.record(now, latency, failure);
    this.#mixStable++;
    this.#delta.stable.requests++;
    if (failure !== null) this.#delta.stable.failures++;
    if (this.#baseline !== null) return null;
    this.#stableLastFailed = failure !== null;
    if (failure !== null) this.#lastStableFailureAt = now;
    const share = this.#share(now);
    if (failure !== null) this.#feedConditional(this.#errorRelative, share, false);
    if (++this.#stableSinceRefresh >= THRESHOLD_REFRESH) this.#refreshThresholds(now);
    if (this.#candidateSeen >= this.rules.warmup && !this.#pairedMode) {
      for (let i = 0; i < this.#latency.length; i++) {
        const l = this.#latency[i] as LatencyTest;
        if (latency > l.threshold && (counted & (1 << i)) === 0) {
          (this.#delta.stable.slow[i] as number)++;
          this.#feedConditional(l.tests, share, false);
        }
      }
    }
    return null;
  }

  #candidate(now: number, latency: number, failure: CountedFailure | null, counted: number, pairedMs?: number): Trip | null {
    this.#tickEpochs(now);
    this.candidate.record(now, latency, failure);
    this.#candidateSeen++;
    this.#mixCandidate++;
    this.#delta.candidate.requests++;
    if (failure !== null) this.#delta.candidate.failures++;
    this.#pairedMode = pairedMs !== undefined;
    let rose = false;
    for (const [t] of this.#errorAbsolute.live()) t.add(failure !== null);
    const b = this.#baseline;
    if (b !== null) {
      if (failure !== null) {
        rose = true;
        this.#consecutive++;
      } else this.#consecutive = 0;
      if (b.error !== null) for (const [t] of b.error.live()) t.add(failure !== null);
      if (this.#candidateSeen > this.rules.warmup) {
        for (let i = 0; i < b.latency.length; i++) {
          const l = b.latency[i] as Baseline['latency'][number];
          if ((counted & (1 << i)) !== 0) continue;
          const slow = latency > l.threshold;
          for (const [t] of l.tests.live()) t.add(slow);
          if (slow) rose = true;
        }
      }
      return rose ? this.#check(now, failure) : null;
    }
    const share = this.#share(now);
    if (failure !== null) {
      rose = true;
      if (!this.#stableLastFailed || now - this.#lastStableFailureAt > SHARED_CAUSE_MS) this.#consecutive++;
      this.#feedConditional(this.#errorRelative, share, true);
    } else {
      this.#consecutive = 0;
    }
    if (pairedMs !== undefined) {
      // A shadow copy: its latency against stable's answer to the same request. Under H0 (not
      // slower) the copy is as likely to be the slow one of the pair as stable is.
      if (this.#candidateSeen > this.rules.warmup && !Number.isNaN(pairedMs) && (counted & 1) === 0) {
        const start = now - latency;
        let event: boolean | null = null;
        if (latency > this.#pairedThreshold(pairedMs)) {
          if (start >= this.#episodeEnd.candidate) {
            this.#episodeEnd.candidate = now;
            event = true;
          }
        } else if (pairedMs > this.#pairedThreshold(latency) && start >= this.#episodeEnd.stable) {
          this.#episodeEnd.stable = start + pairedMs;
          event = false;
        }
        if (event !== null) {
          this.#feedConditional(this.#pairedTests(now), 0.5, event);
          rose ||= event;
        }
      }
    } else if (this.#candidateSeen > this.rules.warmup) {
      if (Number.isNaN(this.#latency[0]?.threshold ?? 0)) this.#refreshThresholds(now);
      for (let i = 0; i < this.#latency.length; i++) {
        const l = this.#latency[i] as LatencyTest;
        if (latency > l.threshold && (counted & (1 << i)) === 0) {
          (this.#delta.candidate.slow[i] as number)++;
          this.#feedConditional(l.tests, share, true);
          rose = true;
        }
      }
    }
    return rose ? this.#check(now, failure) : null;
  }

  #feedConditional(tests: SpendingTests<ConditionalTest>, share: number, fromCandidate: boolean): void {
    for (const [t] of tests.live()) {
      t.setShare(share);
      t.event(fromCandidate);
    }
  }

  /**
   * The traffic mix changed on purpose (a weight set, a step): until the window's newest buckets
   * hold only traffic of the new mix, the share is measured on the requests since the change (the
   * new weight until there are a few), not on buckets that still hold the old mix. Buckets that
   * lag behind a step up would hand the candidate more of every shared slow or failed request than
   * its share says, and roll back healthy candidates at every step.
   */
  shareChanged(now: number, weightPercent: number): void {
    this.#mixFrom = now;
    this.#mixWeight = weightPercent / 100;
    this.#mixCandidate = 0;
    this.#mixStable = 0;
  }

  #share(now: number): number {
    if (now - this.#mixFrom < (SHARE_BUCKETS + 1) * this.candidate.bucketMs) {
      const n = this.#mixCandidate + this.#mixStable;
      return n < MIX_MIN_REQUESTS ? this.#mixWeight : this.#mixCandidate / n;
    }
    const c = this.candidate.recentCount(now, SHARE_BUCKETS);
    const s = this.stable.recentCount(now, SHARE_BUCKETS);
    return c + s === 0 ? 0 : c / (c + s);
  }

  #refreshThresholds(now: number): void {
    this.#stableSinceRefresh = 0;
    const { tolerance, minDeltaMs } = this.rules.latency;
    for (const l of this.#latency) {
      const q = this.stable.quantile(now, l.q);
      l.stableQuantile = q;
      l.threshold = Number.isNaN(q) ? Number.NaN : Math.max(q * tolerance, q + minDeltaMs);
    }
  }

  #tickEpochs(now: number): void {
    this.#errorRelative.tick(now);
    this.#errorAbsolute.tick(now);
    for (const l of this.#latency) l.tests.tick(now);
    this.#paired?.tick(now);
    const b = this.#baseline;
    if (b !== null) {
      b.error?.tick(now);
      for (const l of b.latency) l.tests.tick(now);
    }
  }

  /** The rules in SPEC order; the first that trips is the reason. */
  #check(now: number, failure: CountedFailure | null): Trip | null {
    let reason: TripReason | null = null;
    let statistic = 0;
    let boundary = 0;
    let detail: Record<string, unknown> = {};
    if (failure !== null && this.#consecutive >= this.rules.consecutiveFailures) {
      reason = 'consecutive_failures';
      statistic = this.#consecutive;
      boundary = this.rules.consecutiveFailures;
    }
    // The rules in order; within a rule, the first live test whose evidence reached its boundary.
    const take = <T>(c: Crossing<T> | null, r: TripReason, describe: (t: T) => Record<string, unknown>): boolean => {
      if (c === null) return false;
      reason = r;
      statistic = c.statistic;
      boundary = c.boundary;
      detail = describe(c.test);
      return true;
    };
    const base = this.#baseline;
    const { tolerance } = this.rules.errorRate;
    if (reason === null) {
      take(crossing(this.#errorRelative), 'error_rate', (t) => ({ test: 'relative', tolerance, share: t.share, candidateFailures: t.candidateEvents, stableFailures: t.stableEvents, alpha: this.#alphaEach.errorRelative }));
    }
    if (reason === null && base !== null && base.error !== null) {
      take(crossing(base.error), 'error_rate', (t) => ({
        test: 'baseline',
        tolerance,
        stableFailureRate: round3(base.stableFailureRate * 1000) / 1000,
        stableRequests: base.stableCount,
        p0: t.p0,
        candidateRequests: t.n,
        candidateFailures: t.k,
        alpha: this.#alphaEach.errorRelative,
      }));
    }
    if (reason === null) {
      take(crossing(this.#errorAbsolute), 'error_rate', (t) => ({ test: 'absolute', maxAbsolute: t.p0, candidateRequests: t.n, candidateFailures: t.k, alpha: this.#alphaEach.errorAbsolute }));
    }
    if (reason === null && base !== null) {
      for (const l of base.latency) {
        const describe = (t: RateAboveTest) => ({ test: 'baseline', q: l.q, stableQuantileMs: round3(l.stableQuantile), thresholdMs: round3(l.threshold), candidateSlow: t.k, candidateRequests: t.n, p0: round3(t.p0), alpha: this.#alphaEach.latency });
        if (take(crossing(l.tests), 'latency', describe)) break;
      }
    }
    if (reason === null && this.#paired !== null) {
      const { minDeltaMs } = this.rules.latency;
      take(crossing(this.#paired), 'latency', (t) => ({ test: 'paired', tolerance: this.rules.latency.tolerance, minDeltaMs, candidateSlower: t.candidateEvents, stableSlower: t.stableEvents, alpha: this.rules.alpha * ALPHA_SHARES.latency }));
    }
    if (reason === null && base === null) {
      for (const l of this.#latency) {
        const describe = (t: ConditionalTest) => ({ test: 'latency', q: l.q, stableQuantileMs: round3(l.stableQuantile), thresholdMs: round3(l.threshold), share: t.share, candidateSlow: t.candidateEvents, stableSlow: t.stableEvents, alpha: this.#alphaEach.latency });
        if (take(crossing(l.tests), 'latency', describe)) break;
      }
    }
    // `take` assigns it from a closure, which the compiler's narrowing does not follow.
    const decided = reason as TripReason | null;
    if (decided === null) return null;
    const build = (): Trip => {
      const snap = this.snapshot(now);
      return describeTrip(decided, now, {
        stable: { version: this.stableLabel, ...snap.stable },
        candidate: { version: this.candidateLabel, ...snap.candidate },
        statistic: round3(statistic),
        boundary: round3(boundary),
        ...detail,
      });
    };
    this.#tripped = new DeferredTrip(decided, now, build);
    return this.#tripped;
  }
}

/**
 * A trip whose evidence (window snapshots and the sentence) is built on first read: the caller
 * swaps the weights first and reads the evidence after, so the rollback waits for nothing.
 */
class DeferredTrip implements Trip {
  readonly reason: TripReason;
  readonly at: number;
  #built: Trip | null = null;
  #build: (() => Trip) | null;

  constructor(reason: TripReason, at: number, build: () => Trip) {
    this.reason = reason;
    this.at = at;
    this.#build = build;
  }

  get message(): string {
    return this.#get().message;
  }

  get evidence(): Trip['evidence'] {
    return this.#get().evidence;
  }

  toJSON(): Trip {
    return { reason: this.reason, at: this.at, message: this.message, evidence: this.evidence };
  }

  #get(): Trip {
    if (this.#built === null) {
      this.#built = (this.#build as () => Trip)();
      this.#build = null;
    }
    return this.#built;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
