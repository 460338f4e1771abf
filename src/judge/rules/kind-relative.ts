import type { RollbackRules } from '../../config/types.js';
import { relativeErrorTests } from '../alpha.js';
import type { CheckKind } from '../decide.js';
import { crossing, type ConditionalTest, type SpendingTests } from '../sequential.js';
import { feedConditional, type JudgeEvent, type Rule, type RuleCrossing } from './rule.js';

/**
 * `errorRate` against stable for the failures of one check kind alone (SPEC §9): the candidate
 * fails it credibly more than `tolerance` x as often as stable does. Beside the test of all
 * failures together: a candidate whose answers break the schema in 2% of requests, where stable's
 * never do, is told apart on those failures rather than drowned in stable's 1% of 5xx.
 */
export class KindRelative implements Rule {
  readonly reason: CheckKind;
  readonly #tests: SpendingTests<ConditionalTest>;
  readonly #tolerance: number;
  readonly #alpha: number;

  constructor(kind: CheckKind, rules: RollbackRules, alpha: number, now: number) {
    this.reason = kind;
    this.#tolerance = rules.errorRate.tolerance;
    this.#alpha = alpha;
    this.#tests = relativeErrorTests(rules, alpha, now);
  }

  tick(now: number): void {
    this.#tests.tick(now);
  }

  /** Only failures of its kind are events (the judge hands it no other). */
  observe(e: JudgeEvent): boolean {
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
      detail: { test: 'relative', kind: this.reason, tolerance: this.#tolerance, share: t.share, candidateFailures: t.candidateEvents, stableFailures: t.stableEvents, alpha: this.#alpha },
    };
  }
}
