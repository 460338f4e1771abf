/**
 * Anytime-valid sequential tests (mixture sequential probability ratio tests). Each keeps the
 * log likelihood ratio of a few alternatives against the null; their weighted average is a
 * nonnegative supermartingale under the null, so by Ville's inequality it ever reaches 1/alpha
 * with probability at most alpha, however often it is checked. Checking after every request is
 * therefore free of the multiple-looks problem that sinks "rate over the last N > X" rules.
 */

/** Multipliers of the null's odds at which the alternatives sit: from a little worse to certain. */
const ODDS_MULTIPLIERS = [1.5, 2, 3, 5, 8, 15, 30, 100, 1_000, 100_000];
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

  /** Sets the candidate's share of traffic (0..1); a share of 0 or 1 carries no information. */
  setShare(share: number): void {
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
 * Alpha spending over epochs, so that evidence reaches back about one epoch (the `window`):
 * epoch j runs a fresh test at level alpha / (j (j + 1)), which sums to alpha over all epochs.
 * A regression that starts late is judged on recent evidence, not diluted by hours of good
 * behaviour, and the false-rollback probability of the whole deployment stays at most alpha.
 */
export class EpochSpending<T> {
  readonly alpha: number;
  readonly epochMs: number;
  readonly #make: () => T;
  #epoch = 1;
  #epochStart: number;
  current: T;
  /** The previous epoch's test: still valid at its own level, and it holds the recent past. */
  previous: T | null = null;
  #previousEpoch = 0;

  constructor(alpha: number, epochMs: number, now: number, make: () => T) {
    this.alpha = alpha;
    this.epochMs = epochMs;
    this.#make = make;
    this.#epochStart = now;
    this.current = make();
  }

  /** Starts a new epoch when the current one is over; returns true when it did. */
  tick(now: number): boolean {
    if (now - this.#epochStart < this.epochMs) return false;
    this.previous = this.current;
    this.#previousEpoch = this.#epoch;
    this.#epoch++;
    this.#epochStart = now;
    this.current = this.#make();
    return true;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The boundary (in nats) a test of epoch `j` must reach. */
  logBoundary(j = this.#epoch): number {
    return Math.log((j * (j + 1)) / this.alpha);
  }

  /** Each live test with its boundary, newest first. */
  live(): [T, number][] {
    const out: [T, number][] = [[this.current, this.logBoundary(this.#epoch)]];
    if (this.previous !== null) out.push([this.previous, this.logBoundary(this.#previousEpoch)]);
    return out;
  }
}
