import type { Metric, Registry } from 'prom-client';

export type OutcomeLabel = 'ok' | 'client_error' | 'error' | 'timeout';
export const OUTCOMES: readonly OutcomeLabel[] = ['ok', 'client_error', 'error', 'timeout'];

/**
 * One (route, version)'s traffic as plain numbers: what each finished request adds (its outcome,
 * its duration's bucket, the sum and count). prom-client's own children hash their labels on every
 * increment; these are read only when the registry is scraped.
 */
export class VersionTraffic {
  readonly outcomes = new Float64Array(OUTCOMES.length);
  /** Requests per bucket (not cumulative): one per bound, then one above the highest. */
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.buckets = new Float64Array(bounds.length + 1);
  }

  /** A finished request: `outcome` indexes OUTCOMES. */
  add(outcome: number, seconds: number): void {
    this.outcomes[outcome]! += 1;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    this.buckets[i]! += 1;
    this.sum += seconds;
    this.count++;
  }
}

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

/**
 * `rollgate_requests_total` and `rollgate_request_duration_seconds`, made from the VersionTraffic
 * of each (route, version) at scrape time, in the shape prom-client's counters and histograms give
 * (so the registry's text, its JSON and the cluster aggregation read them alike). `beforeScrape`
 * runs first (it adds the versions known ahead, at 0).
 */
export class TrafficMetrics {
  readonly #byRoute = new Map<string, Map<string, VersionTraffic>>();
  readonly #bounds: readonly number[];

  constructor(registry: Registry, bounds: readonly number[], beforeScrape: () => void) {
    this.#bounds = bounds;
    const requests = { name: 'rollgate_requests_total', help: 'Finished requests by route, version and outcome.', type: 'counter', aggregator: 'sum' } as const;
    const duration = { name: 'rollgate_request_duration_seconds', help: 'Request duration on the gateway clock, by route and version.', type: 'histogram', aggregator: 'sum' } as const;
    const metric = (shape: typeof requests | typeof duration, values: () => Value[]) => ({
      ...shape,
      labelNames: shape.type === 'counter' ? ['route', 'version', 'outcome'] : ['route', 'version'],
      get: () => {
        beforeScrape();
        return Promise.resolve({ ...shape, values: values() });
      },
      reset: () => this.#byRoute.clear(),
    });
    registry.registerMetric(metric(requests, () => this.#requestValues()) as unknown as Metric);
    registry.registerMetric(metric(duration, () => this.#durationValues()) as unknown as Metric);
  }

  /** The (route, version)'s numbers, made at 0 when new. */
  bound(route: string, version: string): VersionTraffic {
    let byVersion = this.#byRoute.get(route);
    if (byVersion === undefined) this.#byRoute.set(route, (byVersion = new Map<string, VersionTraffic>()));
    let t = byVersion.get(version);
    if (t === undefined) byVersion.set(version, (t = new VersionTraffic(this.#bounds)));
    return t;
  }

  /** Drops a version's series; false when there were none. */
  forget(route: string, version: string): boolean {
    return this.#byRoute.get(route)?.delete(version) ?? false;
  }

  #requestValues(): Value[] {
    const out: Value[] = [];
    for (const [route, byVersion] of this.#byRoute) {
      for (const [version, t] of byVersion) OUTCOMES.forEach((outcome, i) => out.push({ value: t.outcomes[i] as number, labels: { route, version, outcome } }));
    }
    return out;
  }

  #durationValues(): Value[] {
    const out: Value[] = [];
    const bucket = 'rollgate_request_duration_seconds_bucket';
    for (const [route, byVersion] of this.#byRoute) {
      for (const [version, t] of byVersion) {
        let acc = 0;
        this.#bounds.forEach((le, i) => {
          acc += t.buckets[i] as number;
          out.push({ value: acc, labels: { le, route, version }, metricName: bucket });
        });
        out.push({ value: t.count, labels: { le: '+Inf', route, version }, metricName: bucket });
        out.push({ value: t.sum, labels: { route, version }, metricName: 'rollgate_request_duration_seconds_sum' });
        out.push({ value: t.count, labels: { route, version }, metricName: 'rollgate_request_duration_seconds_count' });
      }
    }
    return out;
  }
}
