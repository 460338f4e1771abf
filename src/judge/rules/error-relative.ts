import type { RollbackRules } from '../../config/types.js';
import { relativeErrorTests } from '../alpha.js';
import { crossing, type ConditionalTest, type SpendingTests } from '../sequential.js';
import { feedConditional, type JudgeEvent, type Rule, type RuleCrossing } from './rule.js';

/** `errorRate` against stable: the candidate fails credibly more than `tolerance` x as often. */
export class ErrorRelative implements Rule {
  readonly reason = 'error_rate' as const;
  readonly #tests: SpendingTests<ConditionalTest>;
  readonly #tolerance: number;
  readonly #alpha: number;

  constructor(rules: RollbackRules, alpha: number, now: number) {
    this.#tolerance = rules.errorRate.tolerance;
    this.#alpha = alpha;
    this.#tests = relativeErrorTests(rules, alpha, now);
  }

  tick(now: number): void {
    this.#tests.tick(now);
  }

  /** Only failures are events: which version each came from, at the share of the moment. */
  observe(e: JudgeEvent): boolean {
    if (e.kind !== 'answer' || !e.failed) return false;
    const fromCandidate = e.role === 'candidate';
    feedConditional(this.#tests, e.share, fromCandidate);
    return fromCandidate;
  }

  crossing(): RuleCrossing | null {
    const c = crossing(this.#tests);
    if (c === null) return null;
    const t = c.test;
    return {
      statistic: c.statistic,
      boundary: c.boundary,
      detail: { test: 'relative', tolerance: this.#tolerance, share: t.share, candidateFailures: t.candidateEvents, stableFailures: t.stableEvents, alpha: this.#alpha },
    };
  }
}
