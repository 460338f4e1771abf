import type { RollbackRules } from '../../config/types.js';
import { absoluteErrorTests } from '../alpha.js';
import { crossing, type RateAboveTest, type SpendingTests } from '../sequential.js';
import { addToRate, type JudgeEvent, type Rule, type RuleCrossing } from './rule.js';

/**
 * `errorRate.maxAbsolute`: the candidate fails credibly more often than a fixed rate. It needs
 * no stable traffic, so it guards when stable is failing too, and after blue-green's switch.
 */
export class ErrorAbsolute implements Rule {
  readonly reason = 'error_rate' as const;
  readonly #tests: SpendingTests<RateAboveTest>;
  readonly #alpha: number;

  constructor(rules: RollbackRules, alpha: number, now: number) {
    this.#alpha = alpha;
    this.#tests = absoluteErrorTests(rules, alpha, now);
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
    return { statistic: c.statistic, boundary: c.boundary, detail: { test: 'absolute', maxAbsolute: t.p0, candidateRequests: t.n, candidateFailures: t.k, alpha: this.#alpha } };
  }
}
