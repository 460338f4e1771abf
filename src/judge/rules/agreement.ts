import type { RollbackRules } from '../../config/types.js';
import { rateAboveTests } from '../alpha.js';
import { crossing, type RateAboveTest, type SpendingTests } from '../sequential.js';
import { addToRate, type Rule, type RuleCrossing } from './rule.js';

/** At most this many example pairs are kept for a trip's evidence. */
export const AGREEMENT_EXAMPLES = 3;

export interface ExamplePair {
  stable: string;
  candidate: string;
}

/**
 * `agreement`: on pairs of answers to the same request, the candidate disagrees with stable
 * credibly more often than `maxDisagreement` (a one-sample test of the disagreement rate, as
 * `maxAbsolute` is of the failure rate). Fed by `add()`, not by the judge's events.
 */
export class Agreement implements Rule {
  readonly reason = 'disagreement' as const;
  readonly #tests: SpendingTests<RateAboveTest>;
  readonly #alpha: number;
  readonly #max: number;
  readonly examples: ExamplePair[] = [];
  pairs = 0;
  disagreements = 0;

  constructor(rules: RollbackRules, alpha: number, now: number, maxDisagreement: number) {
    this.#alpha = alpha;
    this.#max = maxDisagreement;
    this.#tests = rateAboveTests(rules, alpha, now, maxDisagreement);
  }

  tick(now: number): void {
    this.#tests.tick(now);
  }

  /** The judge's answer events carry no pairs. */
  observe(): boolean {
    return false;
  }

  /** One compared pair; true when it disagreed (the evidence may have grown). */
  add(agree: boolean, example: ExamplePair | null): boolean {
    this.pairs++;
    addToRate(this.#tests, !agree);
    if (agree) return false;
    this.disagreements++;
    if (example !== null && this.examples.length < AGREEMENT_EXAMPLES) this.examples.push(example);
    return true;
  }

  crossing(): RuleCrossing | null {
    const c = crossing(this.#tests);
    if (c === null) return null;
    const t = c.test;
    return {
      statistic: c.statistic,
      boundary: c.boundary,
      detail: { test: 'agreement', maxDisagreement: this.#max, pairs: t.n, disagreements: t.k, examples: [...this.examples], alpha: this.#alpha },
    };
  }
}
