import type { JudgeEvent, Rule, RuleCrossing } from './rule.js';

/**
 * A candidate failure while stable is failing too (stable's latest answer failed, within this
 * long) has a shared cause, such as a dependency both use: the latch skips it.
 */
export const SHARED_CAUSE_MS = 1_000;

const NO_DETAIL: Record<string, unknown> = Object.freeze({});

/** `consecutiveFailures`: the candidate failed this many requests in a row. Not a test: no epochs. */
export class ConsecutiveFailures implements Rule {
  readonly reason = 'consecutive_failures' as const;
  readonly #limit: number;
  #consecutive = 0;
  /** The event just observed was a candidate failure: only then may the latch trip. */
  #armed = false;
  #skipSharedCause = true;
  #lastStableFailureAt = -Infinity;
  #stableLastFailed = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * Blue-green's switch: stable takes no more traffic, so it can no longer show a shared cause;
   * every candidate failure counts from now on.
   */
  countEveryFailure(): void {
    this.#skipSharedCause = false;
  }

  tick(): void {}

  observe(e: JudgeEvent): boolean {
    this.#armed = false;
    if (e.kind !== 'answer') return false;
    if (e.role === 'stable') {
      this.#stableLastFailed = e.failed;
      if (e.failed) this.#lastStableFailureAt = e.now;
      return false;
    }
    if (!e.failed) {
      this.#consecutive = 0;
      return false;
    }
    this.#armed = true;
    if (!this.#skipSharedCause || !this.#stableLastFailed || e.now - this.#lastStableFailureAt > SHARED_CAUSE_MS) this.#consecutive++;
    return true;
  }

  crossing(): RuleCrossing | null {
    if (!this.#armed || this.#consecutive < this.#limit) return null;
    return { statistic: this.#consecutive, boundary: this.#limit, detail: NO_DETAIL };
  }
}
