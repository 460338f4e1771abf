import { BINS, binOf, quantileOf } from './histogram.js';

/** Failure kinds a window counts, in a fixed order (index into `failuresByKind`). */
export const FAILURE_KINDS = ['status', 'connect', 'reset', 'timeout', 'stream', 'protocol', 'invalid', 'truncated', 'empty', 'stream_error'] as const;
export type CountedFailure = (typeof FAILURE_KINDS)[number];

const KIND_INDEX: Record<string, number> = Object.fromEntries(FAILURE_KINDS.map((k, i) => [k, i]));

/** How many time buckets a window keeps, whatever its length. */
export const BUCKETS_PER_WINDOW = 60;
const MIN_BUCKET_MS = 250;

export interface WindowSnapshot {
  /** Requests that finished in the window (client aborts excluded). */
  count: number;
  failures: number;
  failuresByKind: Record<CountedFailure, number>;
  /** failures / count; 0 when empty. */
  failureRate: number;
  /** Requests per second over the part of the window that has passed. */
  rate: number;
  /** Latency quantiles in ms, keyed by the quantile as written (`"0.5"`, `"0.99"`); null when empty. */
  latencyMs: Record<string, number | null>;
}

/**
 * One version's sliding window: BUCKETS_PER_WINDOW time buckets, each with a count, failures by
 * kind and a latency histogram, plus running totals over the live buckets so that a quantile
 * needs no pass over the buckets. `record()` is O(1) amortised and allocates nothing; memory is
 * fixed at construction. The clock is injected (ms, monotonic).
 */
export class SlidingWindow {
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly #counts = new Uint32Array(BUCKETS_PER_WINDOW);
  readonly #failures = new Uint32Array(BUCKETS_PER_WINDOW * FAILURE_KINDS.length);
  readonly #bins = new Uint32Array(BUCKETS_PER_WINDOW * BINS);
  readonly #totalBins = new Uint32Array(BINS);
  readonly #totalFailures = new Uint32Array(FAILURE_KINDS.length);
  #total = 0;
  /** Absolute index (time / bucketMs) of the newest bucket. */
  #head: number;
  readonly #startedAt: number;

  constructor(windowMs: number, now: number) {
    this.windowMs = windowMs;
    this.bucketMs = Math.max(MIN_BUCKET_MS, Math.ceil(windowMs / BUCKETS_PER_WINDOW));
    this.#head = Math.floor(now / this.bucketMs);
    this.#startedAt = now;
  }

  /** Records one finished request: its latency and, when it failed, how. */
  record(now: number, latencyMs: number, failure: CountedFailure | null): void {
    this.#advance(now);
    const slot = this.#head % BUCKETS_PER_WINDOW;
    this.#counts[slot]!++;
    this.#total++;
    const bin = binOf(latencyMs);
    this.#bins[slot * BINS + bin]!++;
    this.#totalBins[bin]!++;
    if (failure !== null) {
      const k = KIND_INDEX[failure] as number;
      this.#failures[slot * FAILURE_KINDS.length + k]!++;
      this.#totalFailures[k]!++;
    }
  }

  get count(): number {
    return this.#total;
  }

  /** Requests recorded in the newest `n` buckets (n <= BUCKETS_PER_WINDOW), as of `now`. */
  recentCount(now: number, n: number): number {
    this.#advance(now);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += this.#counts[(this.#head - i + BUCKETS_PER_WINDOW * 2) % BUCKETS_PER_WINDOW] as number;
    return sum;
  }

  /** The q-quantile of latency over the window, ms; NaN when empty. O(histogram bins). */
  quantile(now: number, q: number): number {
    this.#advance(now);
    return quantileOf(this.#totalBins, this.#total, q);
  }

  failures(now: number): number {
    this.#advance(now);
    let sum = 0;
    for (const f of this.#totalFailures) sum += f;
    return sum;
  }

  snapshot(now: number, quantiles: readonly number[]): WindowSnapshot {
    this.#advance(now);
    const failuresByKind = {} as Record<CountedFailure, number>;
    let failures = 0;
    FAILURE_KINDS.forEach((k, i) => {
      failuresByKind[k] = this.#totalFailures[i] as number;
      failures += this.#totalFailures[i] as number;
    });
    const latencyMs: Record<string, number | null> = {};
    for (const q of quantiles) {
      const v = quantileOf(this.#totalBins, this.#total, q);
      latencyMs[String(q)] = Number.isNaN(v) ? null : round3(v);
    }
    const spanMs = Math.min(this.windowMs, Math.max(this.bucketMs, now - this.#startedAt));
    return {
      count: this.#total,
      failures,
      failuresByKind,
      failureRate: this.#total === 0 ? 0 : failures / this.#total,
      rate: (this.#total * 1000) / spanMs,
      latencyMs,
    };
  }

  /** Drops the buckets that slid out of the window up to `now`. */
  #advance(now: number): void {
    const target = Math.floor(now / this.bucketMs);
    if (target <= this.#head) return;
    const steps = Math.min(target - this.#head, BUCKETS_PER_WINDOW);
    for (let s = 1; s <= steps; s++) this.#clear((this.#head + s) % BUCKETS_PER_WINDOW);
    this.#head = target;
  }

  #clear(slot: number): void {
    const n = this.#counts[slot] as number;
    if (n === 0) return;
    this.#total -= n;
    this.#counts[slot] = 0;
    const base = slot * BINS;
    for (let i = 0; i < BINS; i++) {
      const c = this.#bins[base + i] as number;
      if (c !== 0) {
        this.#totalBins[i]! -= c;
        this.#bins[base + i] = 0;
      }
    }
    const fb = slot * FAILURE_KINDS.length;
    for (let i = 0; i < FAILURE_KINDS.length; i++) {
      this.#totalFailures[i]! -= this.#failures[fb + i] as number;
      this.#failures[fb + i] = 0;
    }
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
