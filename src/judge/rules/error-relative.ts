import type { RollbackRules } from '../../config/types.js';
import { relativeErrorTests } from '../alpha.js';
import type { CheckKind } from '../decide.js';
import { crossing, type ConditionalTest, type SpendingTests } from '../sequential.js';
import { feedConditional, type JudgeEvent, type Rule, type RuleCrossing } from './rule.js';

/**
 * `errorRate` against stable: the candidate fails credibly more than `tolerance` x as often.
 * With a `kind` (SPEC §9), the same test on the failures of one check kind alone, beside the test
 * of all failures: a candidate whose answers break the schema in 2% of requests, where stable's
 * never do, is told apart on those failures rather than drowned in stable's 1% of 5xx. The judge
 * hands such a test only the failures of its kind, and a trip is named after the kind.
 */
export class ErrorRelative implements Rule {
  readonly reason: 'error_rate' | CheckKind;
  readonly #tests: SpendingTests<ConditionalTest>;
  readonly #tolerance: number;
  readonly #alpha: number;
  readonly #kind: Record<string, unknown>;

  constructor(rules: RollbackRules, alpha: number, now: number, kind?: CheckKind) {
    this.reason = kind ?? 'error_rate';
    this.#kind = kind === undefined ? {} : { kind };
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
      detail: { test: 'relative', ...this.#kind, tolerance: this.#tolerance, share: t.share, candidateFailures: t.candidateEvents, stableFailures: t.stableEvents, alpha: this.#alpha },
    };
  }
}
