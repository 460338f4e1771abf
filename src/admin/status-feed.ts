import { DURATION_BUCKETS, type VersionTally } from '../metrics/recorder.js';
import type { RouteState } from '../rollout/types.js';

/** One version's traffic over the last interval. */
export interface LiveFigures {
  /** Requests per second. */
  rate: number;
  /** Failures the judge counts / requests; null with no request. */
  failureRate: number | null;
  /** p99 latency in ms, interpolated in the duration histogram like Prometheus' histogram_quantile; null with no request. */
  p99Ms: number | null;
}

/** What a `stats` event carries: every route's state, and each version's traffic since the last one. */
export interface StatsPayload {
  at: string;
  intervalSeconds: number;
  routes: (RouteState & { live: Record<string, LiveFigures> })[];
}

/** How often the live feed samples, unless told otherwise. */
export const STATS_INTERVAL_MS = 1_000;

/** The q-quantile of the requests between two cumulative histograms, in ms. */
export function quantileBetween(before: readonly number[], after: readonly number[], total: number, q: number): number | null {
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < DURATION_BUCKETS.length; i++) {
    const upTo = (after[i] ?? 0) - (before[i] ?? 0);
    if (upTo >= rank) {
      const lower = i === 0 ? 0 : (DURATION_BUCKETS[i - 1] as number);
      const upper = DURATION_BUCKETS[i] as number;
      const inBucket = upTo - below;
      const share = inBucket > 0 ? (rank - below) / inBucket : 1;
      return (lower + (upper - lower) * share) * 1000;
    }
    below = upTo;
  }
  // Above the highest bound: say the highest bound, as histogram_quantile does.
  return (DURATION_BUCKETS[DURATION_BUCKETS.length - 1] as number) * 1000;
}

/**
 * The status page's live numbers: one sampler shared by every listener, running only while
 * someone listens. Each sample reads the metrics' cumulative counts and reports the difference
 * from the one before, so the figures are what happened in the last interval.
 */
export class StatusFeed {
  readonly #routes: () => RouteState[];
  readonly #tallies: () => Promise<VersionTally[]>;
  readonly #intervalMs: number;
  readonly #listeners = new Set<(p: StatsPayload) => void>();
  #timer: NodeJS.Timeout | null = null;
  #previous = new Map<string, VersionTally>();
  #previousAt = 0;
  #last: StatsPayload | null = null;
  #sampling = false;

  constructor(routes: () => RouteState[], tallies: () => Promise<VersionTally[]>, intervalMs = STATS_INTERVAL_MS) {
    this.#routes = routes;
    this.#tallies = tallies;
    this.#intervalMs = intervalMs;
  }

  /** Adds a listener; it gets the latest sample at once when there is one. Returns the unsubscribe. */
  subscribe(listener: (p: StatsPayload) => void): () => void {
    this.#listeners.add(listener);
    if (this.#last !== null) listener(this.#last);
    else listener(this.#payload(new Map(), 0));
    if (this.#timer === null) {
      void this.#sample(false);
      this.#timer = setInterval(() => void this.#sample(true), this.#intervalMs);
      this.#timer.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.close();
    };
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#previous = new Map();
    this.#last = null;
  }

  async #sample(emit: boolean): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const tallies = await this.#tallies();
      const now = performance.now();
      const seconds = (now - this.#previousAt) / 1000;
      const live = new Map<string, Record<string, LiveFigures>>();
      if (emit && this.#previousAt > 0 && seconds > 0) {
        for (const t of tallies) {
          const before = this.#previous.get(`${t.route}\u0000${t.version}`);
          const requests = t.requests - (before?.requests ?? 0);
          const failures = t.failures - (before?.failures ?? 0);
          let byVersion = live.get(t.route);
          if (byVersion === undefined) live.set(t.route, (byVersion = {}));
          byVersion[t.version] = {
            rate: requests / seconds,
            failureRate: requests > 0 ? failures / requests : null,
            p99Ms: quantileBetween(before?.atOrUnder ?? [], t.atOrUnder, requests, 0.99),
          };
        }
      }
      this.#previous = new Map(tallies.map((t) => [`${t.route}\u0000${t.version}`, t]));
      this.#previousAt = now;
      if (!emit || this.#timer === null) return;
      const payload = this.#payload(live, seconds);
      this.#last = payload;
      for (const l of this.#listeners) l(payload);
    } finally {
      this.#sampling = false;
    }
  }

  #payload(live: Map<string, Record<string, LiveFigures>>, seconds: number): StatsPayload {
    return {
      at: new Date().toISOString(),
      intervalSeconds: Math.round(seconds * 1000) / 1000,
      routes: this.#routes().map((s) => ({ ...s, live: live.get(s.name) ?? {} })),
    };
  }
}
