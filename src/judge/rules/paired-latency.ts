import type { RollbackRules } from '../../config/types.js';
import { slowEventTests } from '../alpha.js';
import { crossing, type ConditionalTest, type SpendingTests } from '../sequential.js';
import { feedConditional, type JudgeEvent, type Rule, type RuleCrossing } from './rule.js';

/**
 * `latency` for shadow copies, judged on pairs: the copy and stable's answer to the same
 * request. Under H0 (not slower) the copy is as likely to be the slow one of the pair as stable
 * is, so the test runs at a share of one half whatever the traffic.
 */
export class PairedLatency implements Rule {
  readonly reason = 'latency' as const;
  readonly #rules: RollbackRules;
  readonly #alpha: number;
  /** Made on the first pair, so that its epochs start with the shadow traffic. */
  #tests: SpendingTests<ConditionalTest> | null = null;
  /**
   * One stall (a pause of a model server or of the host) slows every request in flight at once:
   * one episode, not many independent events. A version's slow pair counts only when its request
   * started after the last counted one of that version ended; the rule is the same for both
   * versions of a pair, so a candidate no slower than stable still wins half the counted pairs.
   */
  readonly #episodeEnd = { candidate: -Infinity, stable: -Infinity };

  constructor(rules: RollbackRules, alpha: number) {
    this.#rules = rules;
    this.#alpha = alpha;
  }

  /** How much longer than `ms` another answer to the same request may take before it is slow. */
  threshold(ms: number): number {
    const { tolerance, minDeltaMs } = this.#rules.latency;
    return Number.isNaN(ms) ? Number.NaN : Math.max(ms * tolerance, ms + minDeltaMs);
  }

  /**
   * A copy still in flight, `elapsedMs` old, whose pair took `item.pairedMs`: whether it counts
   * as the slow one of its pair now (marking `item.slowMask` so it counts once). The judge then
   * feeds it as a `paired-slow` event.
   */
  admitInFlight(elapsedMs: number, item: { slowMask: number; readonly pairedMs?: number }, now: number): boolean {
    if (!(elapsedMs > this.threshold(item.pairedMs as number))) return false;
    item.slowMask |= 1;
    if (now - elapsedMs < this.#episodeEnd.candidate) return false;
    this.#episodeEnd.candidate = now;
    return true;
  }

  tick(now: number): void {
    this.#tests?.tick(now);
  }

  observe(e: JudgeEvent): boolean {
    if (e.kind === 'paired-slow') {
      feedConditional(this.#testsFrom(e.now), 0.5, true);
      return true;
    }
    if (e.kind !== 'answer' || e.role !== 'candidate' || !e.paired) return false;
    if (!e.pastWarmup || Number.isNaN(e.pairedMs) || (e.counted & 1) !== 0) return false;
    const start = e.now - e.latencyMs;
    let slower: boolean;
    if (e.latencyMs > this.threshold(e.pairedMs)) {
      if (start < this.#episodeEnd.candidate) return false;
      this.#episodeEnd.candidate = e.now;
      slower = true;
    } else if (e.pairedMs > this.threshold(e.latencyMs) && start >= this.#episodeEnd.stable) {
      this.#episodeEnd.stable = start + e.pairedMs;
      slower = false;
    } else return false;
    feedConditional(this.#testsFrom(e.now), 0.5, slower);
    return slower;
  }

  #testsFrom(now: number): SpendingTests<ConditionalTest> {
    if (this.#tests === null) this.#tests = slowEventTests(this.#rules, this.#alpha, now);
    return this.#tests;
  }

  crossing(): RuleCrossing | null {
    if (this.#tests === null) return null;
    const c = crossing(this.#tests);
    if (c === null) return null;
    const t = c.test;
    const { tolerance, minDeltaMs } = this.#rules.latency;
    return { statistic: c.statistic, boundary: c.boundary, detail: { test: 'paired', tolerance, minDeltaMs, candidateSlower: t.candidateEvents, stableSlower: t.stableEvents, alpha: this.#alpha } };
  }
}
