import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from '../proxy/outcome.js';
import { HookMetrics } from './hook-metrics.js';
import { AnswerMetrics } from './answer-metrics.js';
import { TrafficMetrics } from './traffic-metrics.js';
import type { Cause, RouteEvent } from '../rollout/types.js';

/** What the recorder reads at scrape time: each route's weight and windows. */
export interface MetricsSource {
  routes(): {
    name: string;
    weight: number;
    /** One per version the route has now: stable, then the candidate (rolled back or not). */
    windows: { version: string; failureRate: number; latencyMs: Record<string, number | null> }[];
    /** Whether the route has data hooks (their run counters are exported at 0 from the start). */
    hooks?: boolean;
    /** Shadow copies sent and dropped (by reason) since start. */
    shadow: { sent: number; dropped: Record<'concurrency' | 'body', number> };
    /** The checks the route runs on its answers, and whether it compares them (SPEC §9). */
    checks?: ('json' | 'llm')[];
    agreement?: boolean;
  }[];
}


/** SPEC §5 reasons: each route's rollback counter has all of them from the start. */
export const ROLLBACK_REASONS = ['consecutive_failures', 'error_rate', 'latency', 'invalid', 'truncated', 'empty', 'stream_error', 'ttft', 'tpot', 'disagreement', 'health_check', 'manual', 'peer', 'hook_failed'] as const satisfies readonly Cause[];

/** Cumulative counts of one (route, version) since start, as the live status feed reads them. */
export interface VersionTally {
  route: string;
  version: string;
  /** Finished requests (client aborts excluded). */
  requests: number;
  /** Of them, failures the judge counts (`error` and `timeout`). */
  failures: number;
  /** Cumulative duration histogram: requests at or under each of `DURATION_BUCKETS` seconds. */
  atOrUnder: number[];
}

/** The upper bounds (seconds) of the request duration histogram. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;


// Default metrics promtool refuses: gauges named *_total.
const REFUSED_DEFAULTS = new Set(['rollgate_nodejs_active_resources_total', 'rollgate_nodejs_active_handles_total', 'rollgate_nodejs_active_requests_total']);

/**
 * Every metric of SPEC §8, in one registry of its own. The hot path only adds to plain numbers
 * per (route, version) (traffic-metrics.ts); they and the window gauges are read at scrape time.
 */
export class MetricsRecorder {
  readonly registry = new Registry();
  /** The data hooks' runs and durations (SPEC §9). */
  readonly hooks: HookMetrics;
  /** What the checks found of the answers, and the agreement (SPEC §9). */
  readonly answers: AnswerMetrics;
  readonly #traffic: TrafficMetrics;
  readonly #rollbacks: Counter<'route' | 'reason'>;
  readonly #decision: Histogram;
  #source: MetricsSource = { routes: () => [] };
  readonly #seedVersions: () => void;
  readonly #workers: 'primary' | 'worker' | undefined;

  /**
   * `source`: what the scrape-time gauges read; also settable later with `collectFrom()`.
   * `workers`: a process of `listen.workers`, whose registries are summed. The primary sees every
   * rollback once (its workers' as `peer`) and counts each with the deciding process's reason;
   * the workers count none (two workers tripping at once make one rollback).
   */
  constructor(source?: MetricsSource, options: { workers?: 'primary' | 'worker' } = {}) {
    if (source !== undefined) this.#source = source;
    this.#workers = options.workers;
    // The gauges below read whatever source is set when they are scraped.
    const routes = (): ReturnType<MetricsSource['routes']> => this.#source.routes();
    const registers = [this.registry];
    this.hooks = new HookMetrics(this.registry, () => routes().filter((r) => r.hooks === true).map((r) => r.name));
    this.answers = new AnswerMetrics(this.registry, () =>
      routes()
        .filter((r) => (r.checks?.length ?? 0) > 0 || r.agreement === true)
        .map((r) => ({ name: r.name, versions: r.windows.map((w) => w.version), checks: r.checks ?? [], agreement: r.agreement === true })),
    );
    // Series whose labels are known ahead are exported at 0 before their first increment: a
    // series born at 1 shows no change to Prometheus' increase() or changes(), so the first
    // rollback of a route (or a new version's first requests) would be missed.
    const seedVersions = (): void => {
      for (const r of routes()) for (const w of r.windows) this.#traffic.bound(r.name, w.version);
    };
    this.#traffic = new TrafficMetrics(this.registry, DURATION_BUCKETS, seedVersions);
    this.#seedVersions = seedVersions;
    this.#rollbacks = new Counter({
      name: 'rollgate_rollbacks_total',
      help: 'Rollbacks by route and reason.',
      labelNames: ['route', 'reason'],
      registers,
      collect() {
        for (const r of routes()) for (const reason of ROLLBACK_REASONS) this.inc({ route: r.name, reason }, 0);
      },
    });
    this.#decision = new Histogram({
      name: 'rollgate_decision_seconds',
      help: 'Deciding sample to new weights applied.',
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01],
      registers,
    });
    new Gauge({
      name: 'rollgate_candidate_weight',
      help: "The candidate's share of live traffic, percent.",
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const r of routes()) this.set({ route: r.name }, r.weight);
      },
    });
    new Gauge({
      name: 'rollgate_window_error_rate',
      help: 'Failure rate over the sliding window, by route and version.',
      labelNames: ['route', 'version'],
      registers,
      collect() {
        this.reset();
        for (const r of routes()) for (const w of r.windows) this.set({ route: r.name, version: w.version }, w.failureRate);
      },
    });
    new Gauge({
      name: 'rollgate_window_latency_seconds',
      help: 'Latency quantiles over the sliding window, by route, version and quantile q.',
      labelNames: ['route', 'version', 'q'],
      registers,
      collect() {
        this.reset();
        for (const r of routes()) {
          for (const w of r.windows) {
            for (const [q, ms] of Object.entries(w.latencyMs)) if (ms !== null) this.set({ route: r.name, version: w.version, q }, ms / 1000);
          }
        }
      },
    });
    new Counter({
      name: 'rollgate_shadow_copies_total',
      help: 'Shadow copies of live requests sent to the candidate.',
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const r of routes()) this.inc({ route: r.name }, r.shadow.sent);
      },
    });
    new Counter({
      name: 'rollgate_shadow_dropped_total',
      help: 'Shadow copies not sent: too many in flight (concurrency) or a body too large or of unknown length (body).',
      labelNames: ['route', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const r of routes()) for (const [reason, n] of Object.entries(r.shadow.dropped)) this.inc({ route: r.name, reason }, n);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'rollgate_' });
    for (const name of REFUSED_DEFAULTS) this.registry.removeSingleMetric(name);
  }

  /** Where the scrape-time gauges read each route's weight, windows and shadow counts. */
  collectFrom(source: MetricsSource): void {
    this.#source = source;
  }

  /** The outcome sink's metrics half. */
  readonly observe = (o: Outcome): void => {
    if (o.failure === 'aborted') return;
    // Indexes of OUTCOMES: ok, client_error, error, timeout.
    const outcome = o.failure === 'timeout' ? 3 : o.failure !== 'none' ? 2 : o.status >= 400 ? 1 : 0;
    this.#traffic.bound(o.route, o.version).add(outcome, o.latencyMs / 1000);
    const check = o.check;
    if (check !== undefined && check !== null) this.answers.observe(o.route, o.version, check);
  };

  /** One compared pair of a route's agreement. */
  readonly agreement = (route: string, agree: boolean): void => {
    this.answers.agreement(route, agree);
  };

  /**
   * Counts rollbacks and their decision time; after a change of versions, the route's versions
   * now (read from the source, not from the event, which may be older) get their series at 0.
   */
  readonly event = (e: RouteEvent): void => {
    if (e.type === 'deploy' || e.type === 'promote' || e.type === 'rollback') this.#seedVersions();
    if (e.type !== 'rollback') return;
    if (this.#workers === 'primary') this.#rollbacks.inc({ route: e.route, reason: e.cause === 'peer' ? (e.peerCause ?? 'peer') : e.cause });
    else if (this.#workers === undefined) this.#rollbacks.inc({ route: e.route, reason: e.cause });
    if (e.decisionSeconds !== undefined) this.#decision.observe(e.decisionSeconds);
  };

  /**
   * Drops a version the route no longer has and no request of which is in flight: its series
   * and its bound children. Counters of a version that comes back later start again at 0.
   */
  readonly forget = (route: string, version: string): void => {
    if (this.#traffic.forget(route, version)) this.answers.forget(route, version);
  };

  /** Every (route, version)'s cumulative counts, read from the registry (not on the hot path). */
  async tallies(): Promise<VersionTally[]> {
    const read = (name: string) => this.registry.getSingleMetric(name)?.get();
    const metrics = await Promise.all([read('rollgate_requests_total'), read('rollgate_request_duration_seconds')]);
    return talliesOf(metrics.filter((m) => m !== undefined));
  }

}

/** What the admin plane reads: /metrics, and the counts behind the status page's live figures. */
export interface MetricsReader {
  registry: { metrics(): Promise<string>; readonly contentType: string };
  tallies(): Promise<VersionTally[]>;
}

/** The metrics a registry's JSON holds (prom-client's `getMetricsAsJSON()`). */
export type MetricsJson = { name: string; values: { value: number; labels: Record<string, string | number | undefined>; metricName?: string }[] }[];

/** Every (route, version)'s cumulative counts in a registry's JSON (one process's or the fleet's). */
export function talliesOf(metrics: MetricsJson): VersionTally[] {
  const byKey = new Map<string, VersionTally>();
  const tally = (route: string, version: string): VersionTally => {
    const key = `${route}\u0000${version}`;
    let t = byKey.get(key);
    if (t === undefined) byKey.set(key, (t = { route, version, requests: 0, failures: 0, atOrUnder: DURATION_BUCKETS.map(() => 0) }));
    return t;
  };
  for (const m of metrics) {
    if (m.name === 'rollgate_requests_total') {
      for (const v of m.values) {
        const t = tally(String(v.labels.route), String(v.labels.version));
        t.requests += v.value;
        if (v.labels.outcome === 'error' || v.labels.outcome === 'timeout') t.failures += v.value;
      }
    } else if (m.name === 'rollgate_request_duration_seconds') {
      for (const v of m.values) {
        if (v.metricName !== 'rollgate_request_duration_seconds_bucket') continue;
        const i = DURATION_BUCKETS.indexOf(Number(v.labels.le) as (typeof DURATION_BUCKETS)[number]);
        if (i >= 0) tally(String(v.labels.route), String(v.labels.version)).atOrUnder[i] = v.value;
      }
    }
  }
  return [...byKey.values()];
}
