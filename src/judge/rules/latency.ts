import type { RollbackRules } from '../../config/types.js';
import type { SlidingWindow } from '../../stats/window.js';
import { slowEventTests } from '../alpha.js';
import type { FleetDelta } from '../fleet-delta.js';
import { crossing, type ConditionalTest, type SpendingTests } from '../sequential.js';
import { feedConditional, round3, type JudgeEvent, type Rule, type RuleCrossing } from './rule.js';

/** Stable records between two refreshes of the latency thresholds (a quantile costs a histogram pass). */
const THRESHOLD_REFRESH = 64;

/** One quantile's threshold, taken from stable's concurrent window, and its test. */
export interface QuantileThreshold {
  readonly q: number;
  /** Current threshold in ms; NaN until stable has answered. */
  threshold: number;
  stableQuantile: number;
}

interface QuantileTest extends QuantileThreshold {
  readonly tests: SpendingTests<ConditionalTest>;
}

/** The tests (bit i: quantile i) whose threshold `elapsedMs` passes. */
export function slowMaskOf(thresholds: readonly QuantileThreshold[], elapsedMs: number): number {
  let mask = 0;
  for (let i = 0; i < thresholds.length; i++) if (elapsedMs > (thresholds[i] as QuantileThreshold).threshold) mask |= 1 << i;
  return mask;
}

/** The smallest of `min` and the thresholds (NaN ones never are). */
export function smallestOf(thresholds: readonly QuantileThreshold[], min: number): number {
  for (const l of thresholds) if (l.threshold < min) min = l.threshold;
  return min;
}

/**
 * `latency`, per quantile q: how often each version is slower than `max(q x tolerance, q +
 * minDelta)` of stable's concurrent q, as a conditional test (the candidate no more often slow
 * than stable under H0). Its slow events are also the fleet's evidence.
 */
export class Latency implements Rule {
  /** `latency`; `ttft` on a route with `checks.llm` (what is judged is time to first token); `tpot` for time per output token. */
  readonly reason: 'latency' | 'ttft' | 'tpot';
  /** Whether shadow copies are judged here too (tpot: they have no paired test of their own). */
  readonly #takesPaired: boolean;
  readonly #quantiles: QuantileTest[];
  readonly #stable: SlidingWindow;
  readonly #tolerance: number;
  readonly #minDeltaMs: number;
  readonly #alpha: number;
  readonly #delta: FleetDelta;
  #stableSinceRefresh = THRESHOLD_REFRESH;

  /** `stable`: the window the thresholds come from; `delta`: where the slow events are counted for the fleet. */
  constructor(rules: RollbackRules, alpha: number, now: number, stable: SlidingWindow, delta: FleetDelta, reason: Latency['reason'] = 'latency') {
    this.reason = reason;
    this.#takesPaired = reason === 'tpot';
    this.#stable = stable;
    this.#tolerance = rules.latency.tolerance;
    this.#minDeltaMs = rules.latency.minDeltaMs;
    this.#alpha = alpha;
    this.#delta = delta;
    this.#quantiles = rules.latency.quantiles.map((q) => ({ q, threshold: Number.NaN, stableQuantile: Number.NaN, tests: slowEventTests(rules, alpha, now) }));
  }

  /** The thresholds in force, per quantile. */
  get thresholds(): readonly QuantileThreshold[] {
    return this.#quantiles;
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
    if (e.kind === 'slow') return this.#feed(e);
    if (e.kind !== 'answer') return false;
    if (e.role === 'stable') {
      if (++this.#stableSinceRefresh >= THRESHOLD_REFRESH) this.refresh(e.now);
      if (e.pastWarmup && (!e.paired || this.#takesPaired)) this.#feed(e);
      return false;
    }
    // A shadow copy's latency is judged against its pair instead.
    if ((e.paired && !this.#takesPaired) || !e.pastWarmup) return false;
    if (Number.isNaN(this.#quantiles[0]?.threshold ?? 0)) this.refresh(e.now);
    return this.#feed(e);
  }

  /** Counts the event as slow against each threshold it passes that did not count it yet. */
  #feed(e: JudgeEvent): boolean {
    const fromCandidate = e.role === 'candidate';
    const slowCounts = fromCandidate ? this.#delta.candidate.slow : this.#delta.stable.slow;
    let slow = false;
    for (let i = 0; i < this.#quantiles.length; i++) {
      const l = this.#quantiles[i] as QuantileTest;
      if (!(e.latencyMs > l.threshold) || (e.counted & (1 << i)) !== 0) continue;
      slow = true;
      (slowCounts[i] as number)++;
      feedConditional(l.tests, e.share, fromCandidate);
    }
    return slow && fromCandidate;
  }

  /** Takes the thresholds afresh from stable's window. */
  refresh(now: number): void {
    this.#stableSinceRefresh = 0;
    for (const l of this.#quantiles) {
      const q = this.#stable.quantile(now, l.q);
      l.stableQuantile = q;
      l.threshold = Number.isNaN(q) ? Number.NaN : Math.max(q * this.#tolerance, q + this.#minDeltaMs);
    }
  }

  crossing(): RuleCrossing | null {
    for (const l of this.#quantiles) {
      const c = crossing(l.tests);
      if (c === null) continue;
      const t = c.test;
      const detail = {
        test: this.reason === 'tpot' ? 'tpot' : 'latency',
        q: l.q,
        stableQuantileMs: round3(l.stableQuantile),
        thresholdMs: round3(l.threshold),
        share: t.share,
        candidateSlow: t.candidateEvents,
        stableSlow: t.stableEvents,
        alpha: this.#alpha,
      };
      return { statistic: c.statistic, boundary: c.boundary, detail };
    }
    return null;
  }
}
