/**
 * Anytime-valid sequential tests (mixture sequential probability ratio tests). Each keeps the
 * log likelihood ratio of a few alternatives against the null; their weighted average is a
 * nonnegative supermartingale under the null, so by Ville's inequality it ever reaches 1/alpha
 * with probability at most alpha, however often it is checked. Checking after every request is
 * therefore free of the multiple-looks problem that sinks "rate over the last N > X" rules.
 */

/** Multipliers of the null's odds at which the alternatives sit: from a little worse to certain. */
const ODDS_MULTIPLIERS = [1.5, 2, 4, 8, 16, 64, 100_000];
const LOG_WEIGHT = -Math.log(ODDS_MULTIPLIERS.length);

function logSumExp(xs: Float64Array): number {
  let max = -Infinity;
  for (const x of xs) if (x > max) max = x;
  if (max === -Infinity) return max;
  let sum = 0;
  for (const x of xs) sum += Math.exp(x - max);
  return max + Math.log(sum);
}

/** Probability with odds `m` times those of `p`. */
function scaleOdds(p: number, m: number): number {
  const odds = (p / (1 - p)) * m;
  return odds / (1 + odds);
}

/**
 * One-sample test of H0: the failure probability is at most p0 (e.g. `maxAbsolute`), from the
 * candidate's own requests. O(1) per request; the mixture is evaluated only when it can have
 * risen (after a failure).
 */
export class RateAboveTest {
  readonly p0: number;
  n = 0;
  k = 0;
  readonly #up: Float64Array;
  readonly #down: Float64Array;
  readonly #ll: Float64Array;

  constructor(p0: number) {
    this.p0 = p0;
    const alts = ODDS_MULTIPLIERS.map((m) => scaleOdds(p0, m));
    this.#up = Float64Array.from(alts, (p) => Math.log(p / p0));
    this.#down = Float64Array.from(alts, (p) => Math.log((1 - p) / (1 - p0)));
    this.#ll = new Float64Array(alts.length);
  }

  add(failed: boolean): void {
    this.n++;
    if (failed) this.k++;
  }

  /** log of the mixture likelihood ratio: the evidence against H0, in nats. */
  logLR(): number {
    const ll = this.#ll;
    for (let i = 0; i < ll.length; i++) {
      ll[i] = LOG_WEIGHT + this.k * (this.#up[i] as number) + (this.n - this.k) * (this.#down[i] as number);
    }
    return logSumExp(ll);
  }
}

/**
 * Two-sample test conditional on which version an event (a failure, or a slow answer) came
 * from. With a share s of traffic on the candidate, an event comes from the candidate with
 * probability s*r / (s*r + 1 - s) when the candidate has r times stable's event rate. H0 is
 * r <= `ratio`; the unknown base rate cancels, and so do load swings and causes that hit both
 * versions alike. The share may change at any time (steps, sticky users): evidence gathered
 * under the old share is folded in first.
 */
export class ConditionalTest {
  readonly ratio: number;
  candidateEvents = 0;
  stableEvents = 0;
  #share = Number.NaN;
  readonly #base: Float64Array;
  readonly #up: Float64Array;
  readonly #down: Float64Array;
  readonly #ll: Float64Array;
  // Events since the share last changed; their log-likelihood terms are share-dependent.
  #a = 0;
  #b = 0;

  constructor(ratio: number) {
    this.ratio = ratio;
    const n = ODDS_MULTIPLIERS.length;
    this.#base = new Float64Array(n).fill(LOG_WEIGHT);
    this.#up = new Float64Array(n);
    this.#down = new Float64Array(n);
    this.#ll = new Float64Array(n);
  }

  /**
   * Sets the candidate's share of traffic (0..1); a share of 0 or 1 carries no information.
   * Rounded to 0.1%, so that the share measured afresh on every request does not cost a dozen
   * logarithms each time.
   */
  setShare(measured: number): void {
    const share = Math.round(measured * 1000) / 1000;
    if (share === this.#share) return;
    this.#fold();
    this.#share = share;
    if (!(share > 0.0001 && share < 0.9999)) {
      this.#up.fill(0);
      this.#down.fill(0);
      return;
    }
    const q0 = (share * this.ratio) / (share * this.ratio + 1 - share);
    ODDS_MULTIPLIERS.forEach((m, i) => {
      const q = scaleOdds(q0, m);
      this.#up[i] = Math.log(q / q0);
      this.#down[i] = Math.log((1 - q) / (1 - q0));
    });
  }

  get share(): number {
    return this.#share;
  }

  event(fromCandidate: boolean): void {
    if (fromCandidate) {
      this.candidateEvents++;
      this.#a++;
    } else {
      this.stableEvents++;
      this.#b++;
    }
  }

  logLR(): number {
    const ll = this.#ll;
    for (let i = 0; i < ll.length; i++) {
      ll[i] = (this.#base[i] as number) + this.#a * (this.#up[i] as number) + this.#b * (this.#down[i] as number);
    }
    return logSumExp(ll);
  }

  #fold(): void {
    if (this.#a === 0 && this.#b === 0) return;
    for (let i = 0; i < this.#base.length; i++) {
      this.#base[i]! += this.#a * (this.#up[i] as number) + this.#b * (this.#down[i] as number);
    }
    this.#a = 0;
    this.#b = 0;
  }
}

/**
 * One rule's tests and how its alpha is spent. A *lifetime* test runs for the whole deployment at
 * level alpha x LIFETIME_SHARE, so that evidence which builds up slowly (a small regression at
 * low traffic) is never thrown away. *Epoch* tests restart every `epochMs`: epoch j runs at level
 * alpha x (1 - LIFETIME_SHARE) / (j (j + 1)), which sums to the rest of alpha over all epochs, so
 * a regression that starts late is judged on recent evidence rather than diluted by hours of
 * good behaviour (the role CUSUM plays in quality control). The rule's false-rollback
 * probability stays at most alpha for the whole deployment.
 */
export class SpendingTests<T> {
  static readonly LIFETIME_SHARE = 0.75;
  readonly alpha: number;
  readonly epochMs: number;
  readonly lifetime: T;
  readonly #make: () => T;
  #epoch = 1;
  #epochStart: number;
  current: T;
  #live: [T, number][];

  constructor(alpha: number, epochMs: number, now: number, make: () => T) {
    this.alpha = alpha;
    this.epochMs = epochMs;
    this.#make = make;
    this.#epochStart = now;
    this.lifetime = make();
    this.current = make();
    this.#live = this.#buildLive();
  }

  /** Starts the epoch that `now` falls in, if the current one is over; returns true when it did. */
  tick(now: number): boolean {
    const passed = Math.floor((now - this.#epochStart) / this.epochMs);
    if (passed < 1) return false;
    this.#epoch += passed;
    this.#epochStart += passed * this.epochMs;
    this.current = this.#make();
    this.#live = this.#buildLive();
    return true;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get lifetimeBoundary(): number {
    return Math.log(1 / (this.alpha * SpendingTests.LIFETIME_SHARE));
  }

  /** The boundary (in nats) the test of epoch `j` must reach. */
  epochBoundary(j = this.#epoch): number {
    return Math.log((j * (j + 1)) / (this.alpha * (1 - SpendingTests.LIFETIME_SHARE)));
  }

  /** Each live test with its boundary: the lifetime test, then the current epoch's. */
  live(): readonly [T, number][] {
    return this.#live;
  }

  #buildLive(): [T, number][] {
    return [
      [this.lifetime, this.lifetimeBoundary],
      [this.current, this.epochBoundary()],
    ];
  }
}

/** A live test whose evidence reached its boundary. */
export interface Crossing<T> {
  test: T;
  statistic: number;
  boundary: number;
}

/** The first of a rule's live tests whose evidence (log likelihood ratio) reached its boundary, or null. */
export function crossing<T extends { logLR(): number }>(tests: SpendingTests<T>): Crossing<T> | null {
  for (const [test, boundary] of tests.live()) {
    const statistic = test.logLR();
    if (statistic >= boundary) return { test, statistic, boundary };
  }
  return null;
}
