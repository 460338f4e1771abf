import type { RollbackRules } from '../../config/types.js';
import type { WindowSnapshot } from '../../stats/window.js';
import { rateAboveTests } from '../alpha.js';
import { crossing, type RateAboveTest, type SpendingTests } from '../sequential.js';
import { slowMaskOf, smallestOf, type QuantileThreshold } from './latency.js';
import { addToRate, round3, type JudgeEvent, type Rule, type RuleCrossing } from './rule.js';

/*
 * Blue-green: while stable takes no traffic, the candidate is tested against stable's window
 * from just before the switch: its failure rate against stable's (at the upper end of what that
 * window allows, times the tolerance), and how often it is slower than the thresholds stable's
 * quantiles gave then (no more often than 1 - q for a candidate no slower than stable).
 */

/**
 * `errorRate` after blue-green's switch: the candidate's failure rate against stable's before
 * it. Null when stable's window says nothing (empty), or when the rate it allows is already
 * `maxAbsolute`'s to guard.
 */
export function baselineError(rules: RollbackRules, alpha: number, now: number, stable: WindowSnapshot): BaselineError | null {
  const n = stable.count;
  const p = n === 0 ? 0 : stable.failures / n;
  // Stable's failure rate at the upper end of its 95% interval, so that its own noise does not count against the candidate.
  const upper = n === 0 ? 1 : Math.min(1, p + 2 * Math.sqrt((p * (1 - p)) / n) + 1 / n);
  const p0 = Math.min(0.999, rules.errorRate.tolerance * upper);
  return n === 0 || p0 >= rules.errorRate.maxAbsolute ? null : new BaselineError(rules, alpha, now, p, n, p0);
}

/** See `baselineError()`. */
export class BaselineError implements Rule {
  readonly reason = 'error_rate' as const;
  readonly #tests: SpendingTests<RateAboveTest>;
  readonly #tolerance: number;
  readonly #alpha: number;
  readonly #stableFailureRate: number;
  readonly #stableCount: number;

  constructor(rules: RollbackRules, alpha: number, now: number, stableFailureRate: number, stableCount: number, p0: number) {
    this.#tolerance = rules.errorRate.tolerance;
    this.#alpha = alpha;
    this.#stableFailureRate = stableFailureRate;
    this.#stableCount = stableCount;
    this.#tests = rateAboveTests(rules, alpha, now, p0);
  }

  tick(now: number): void {
    this.#tests.tick(now);
  }

  observe(e: JudgeEvent): boolean {
    if (e.kind !== 'answer' || e.role !== 'candidate') return false;
    addToRate(this.#tests, e.failed);
    return e.failed;
  }

  crossing(): RuleCrossing | null {
    const c = crossing(this.#tests);
    if (c === null) return null;
    const t = c.test;
    const detail = {
      test: 'baseline',
      tolerance: this.#tolerance,
      stableFailureRate: round3(this.#stableFailureRate * 1000) / 1000,
      stableRequests: this.#stableCount,
      p0: t.p0,
      candidateRequests: t.n,
      candidateFailures: t.k,
      alpha: this.#alpha,
    };
    return { statistic: c.statistic, boundary: c.boundary, detail };
  }
}

interface BaselineQuantile extends QuantileThreshold {
  readonly tests: SpendingTests<RateAboveTest>;
}

/**
 * `latency` after blue-green's switch: per quantile q stable had a threshold for then, how often
 * the candidate is slower than it (at most 1 - q of the time under H0).
 */
export class BaselineLatency implements Rule {
  readonly reason = 'latency' as const;
  readonly #quantiles: BaselineQuantile[];
  readonly #alpha: number;

  /** `thresholds`: the latency rule's at the switch; the quantiles stable had none for are left out. */
  constructor(rules: RollbackRules, alpha: number, now: number, thresholds: readonly QuantileThreshold[]) {
    this.#alpha = alpha;
    this.#quantiles = thresholds
      .filter((l) => !Number.isNaN(l.threshold))
      .map((l) => ({ q: l.q, threshold: l.threshold, stableQuantile: l.stableQuantile, tests: rateAboveTests(rules, alpha, now, 1 - l.q) }));
  }

  /** The tests (bit i: quantile i) whose threshold `elapsedMs` passes. */
  slowMask(elapsedMs: number): number {
    return slowMaskOf(this.#quantiles, elapsedMs);
  }

  /** The smallest of `min` and the thresholds. */
  smallestThreshold(min: number): number {
    return smallestOf(this.#quantiles, min);
  }

  tick(now: number): void {
    for (const l of this.#quantiles) l.tests.tick(now);
  }

  observe(e: JudgeEvent): boolean {
    if (e.role !== 'candidate') return false;
    if (e.kind === 'slow') return this.#slowInFlight(e);
    if (e.kind !== 'answer' || !e.pastWarmup) return false;
    let rose = false;
    for (let i = 0; i < this.#quantiles.length; i++) {
      if ((e.counted & (1 << i)) !== 0) continue;
      const l = this.#quantiles[i] as BaselineQuantile;
      const slow = e.latencyMs > l.threshold;
      addToRate(l.tests, slow);
      if (slow) rose = true;
    }
    return rose;
  }

  /** A request in flight counts as slow against each threshold it passed that did not count it yet. */
  #slowInFlight(e: JudgeEvent): boolean {
    let slow = false;
    for (let i = 0; i < this.#quantiles.length; i++) {
      const l = this.#quantiles[i] as BaselineQuantile;
      if (!(e.latencyMs > l.threshold) || (e.counted & (1 << i)) !== 0) continue;
      slow = true;
      addToRate(l.tests, true);
    }
    return slow;
  }

  crossing(): RuleCrossing | null {
    for (const l of this.#quantiles) {
      const c = crossing(l.tests);
      if (c === null) continue;
      const t = c.test;
      const detail = {
        test: 'baseline',
        q: l.q,
        stableQuantileMs: round3(l.stableQuantile),
        thresholdMs: round3(l.threshold),
        candidateSlow: t.k,
        candidateRequests: t.n,
        p0: round3(t.p0),
        alpha: this.#alpha,
      };
      return { statistic: c.statistic, boundary: c.boundary, detail };
    }
    return null;
  }
}
