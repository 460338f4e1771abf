import type { VersionRole } from '../proxy/outcome.js';
import type { SlidingWindow } from '../stats/window.js';

/** How many newest window buckets give the traffic share the conditional tests use. */
const SHARE_BUCKETS = 2;
/** Requests since a change of the mix before their own share is used instead of the weight set. */
const MIX_MIN_REQUESTS = 20;

/**
 * The candidate's share of traffic, which the conditional tests need to know how many of the
 * events the candidate would bring under H0.
 */
export class TrafficShare {
  readonly #candidate: SlidingWindow;
  readonly #stable: SlidingWindow;
  /** Since the last deliberate change of the traffic mix: when, the weight set, requests per version. */
  #mixFrom = -Infinity;
  #mixWeight = 0;
  #mixCandidate = 0;
  #mixStable = 0;

  constructor(candidate: SlidingWindow, stable: SlidingWindow) {
    this.#candidate = candidate;
    this.#stable = stable;
  }

  /** A finished request of `role`, counted towards the mix since the last change. */
  count(role: VersionRole): void {
    if (role === 'candidate') this.#mixCandidate++;
    else this.#mixStable++;
  }

  /**
   * The traffic mix changed on purpose (a weight set, a step): until the window's newest buckets
   * hold only traffic of the new mix, the share is measured on the requests since the change (the
   * new weight until there are a few), not on buckets that still hold the old mix. Buckets that
   * lag behind a step up would hand the candidate more of every shared slow or failed request than
   * its share says, and roll back healthy candidates at every step.
   */
  changed(now: number, weightPercent: number): void {
    this.#mixFrom = now;
    this.#mixWeight = weightPercent / 100;
    this.#mixCandidate = 0;
    this.#mixStable = 0;
  }

  /** The candidate's share (0..1) as of `now`. */
  at(now: number): number {
    if (now - this.#mixFrom < (SHARE_BUCKETS + 1) * this.#candidate.bucketMs) {
      const n = this.#mixCandidate + this.#mixStable;
      return n < MIX_MIN_REQUESTS ? this.#mixWeight : this.#mixCandidate / n;
    }
    const c = this.#candidate.recentCount(now, SHARE_BUCKETS);
    const s = this.#stable.recentCount(now, SHARE_BUCKETS);
    return c + s === 0 ? 0 : c / (c + s);
  }
}
