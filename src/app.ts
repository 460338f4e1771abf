import type { GatewayConfig } from './config/types.js';
import { Gateway, type GatewayLogger } from './proxy/gateway.js';
import type { OutcomeSink } from './proxy/outcome.js';
import { Upstream } from './proxy/upstream.js';
import { WebhookNotifier, type WebhookOptions } from './notify/webhook.js';
import { MetricsRecorder, type MetricsSource } from './metrics/recorder.js';
import { Rollouts } from './rollout/rollouts.js';
import { warmUpRollbackPath } from './rollout/warm-up.js';
import type { RouteController } from './rollout/route-controller.js';
import type { Timers } from './rollout/bake-timer.js';
import { HealthChecker } from './health/checker.js';
import type { Rng } from './traffic/picker.js';

/** How often in-flight requests are checked against the latency thresholds. */
export const SWEEP_INTERVAL_MS = 20;

export interface RollgateOptions {
  rng?: Rng;
  logger?: GatewayLogger & { info(obj: object, msg: string): void; debug?(obj: object, msg: string): void };
  /** Logs one line per finished request at debug (off at info and above: the hot path stays quiet). */
  logRequests?: boolean;
  /** Also receives every outcome, after the judge (tests and benchmarks). */
  onOutcome?: OutcomeSink;
  /** Bake timers of the step schedules (tests drive them on a fake clock). */
  timers?: Timers;
  /** The share of alpha this replica's own tests run at (see ReplicaSync's fleet evidence). */
  alphaScale?: number;
  /** Timeouts and retry bounds of the `notify:` webhooks. */
  webhook?: Omit<WebhookOptions, 'onGiveUp'>;
}

export interface Rollgate {
  gateway: Gateway;
  rollouts: Rollouts<Upstream>;
  metrics: MetricsRecorder;
}

/**
 * Wires the data plane to the rollouts: every outcome goes to its route's judge, and every state
 * change is logged once at info with its evidence.
 */
export function createRollgate(config: GatewayConfig, options: RollgateOptions = {}): Rollgate {
  let rollouts: Rollouts<Upstream> | null = null;
  let gatewayRef: Gateway | null = null;
  const metrics = new MetricsRecorder({ routes: () => metricsView(rollouts!, gatewayRef!) });
  const log = options.logger;
  // The outcome sinks, fixed at start: the judge first, then the metrics, then the rest.
  const sinks: OutcomeSink[] = [(o) => rollouts!.observe(o), metrics.observe];
  if (options.logRequests === true && log?.debug !== undefined) {
    const debug = log.debug.bind(log);
    sinks.push((o) =>
      debug(
        { route: o.route, version: o.version, role: o.role, status: o.status, failure: o.failure, latencyMs: Math.round(o.latencyMs * 1000) / 1000, replayed: o.replayed, requestId: o.requestId },
        'request',
      ),
    );
  }
  if (options.onOutcome !== undefined) sinks.push(options.onOutcome);
  const [judge, record, ...rest] = sinks as [OutcomeSink, OutcomeSink, ...OutcomeSink[]];
  const sink: OutcomeSink =
    rest.length === 0
      ? (o) => {
          judge(o);
          record(o);
        }
      : (o) => {
          judge(o);
          record(o);
          for (let i = 0; i < rest.length; i++) (rest[i] as OutcomeSink)(o);
        };
  const gateway = new Gateway(config, { onOutcome: sink, onVersionGone: metrics.forget, ...(options.rng ? { rng: options.rng } : {}), ...(options.logger ? { logger: options.logger } : {}) });
  gatewayRef = gateway;
  rollouts = new Rollouts(
    [...gateway.routes.values()].map((r) => ({
      config: r.config,
      picker: r.picker,
      makeUpstream: (version: string, url: string) => new Upstream({ version, url }, r.config.timeouts),
      retire: (u: Upstream) => gateway.retire(r.name, u),
    })),
    () => performance.now(),
    undefined,
    options.timers,
    options.alphaScale,
  );
  const first = config.routes[0];
  if (first !== undefined) warmUpRollbackPath(first);
  // Requests still waiting for an answer are judged as soon as they pass the latency thresholds.
  const sweep = setInterval(() => {
    for (const route of gateway.routes.values()) rollouts!.route(route.name)?.sweepInFlight(route.inflight);
  }, SWEEP_INTERVAL_MS);
  sweep.unref();
  gateway.server.once('close', () => clearInterval(sweep));
  rollouts.subscribe(metrics.event);
  // Active health checks (SPEC §3 healthCheck): stable's always, the candidate's while it is live.
  const checks = rollouts
    .routes()
    .filter((c) => c.config.healthCheck !== null)
    .map((c) => new RouteHealthChecks(c));
  for (const h of checks) h.sync();
  if (checks.length > 0) rollouts.subscribe((e) => checks.find((h) => h.route === e.route)?.sync());
  gateway.server.once('close', () => checks.forEach((h) => h.stop()));
  const notifiers = config.notify.map(
    (n) =>
      new WebhookNotifier(n.url, {
        ...options.webhook,
        onGiveUp: (e, err) => options.logger?.warn({ webhook: n.url, route: e.route, type: e.type, err }, 'webhook notification given up'),
      }),
  );
  for (const n of notifiers) rollouts.subscribe((e) => n.notify(e));
  gateway.server.once('close', () => notifiers.forEach((n) => n.close()));
  if (log !== undefined) {
    rollouts.subscribe((event) => log.info({ event }, event.message));
  }
  return { gateway, rollouts, metrics };
}

/** One route's health checkers, kept on the versions the route has now. */
class RouteHealthChecks {
  readonly route: string;
  readonly #controller: RouteController<Upstream>;
  readonly #checkers = new Map<'stable' | 'candidate', { version: string; url: string; checker: HealthChecker }>();

  constructor(controller: RouteController<Upstream>) {
    this.route = controller.name;
    this.#controller = controller;
  }

  /** Starts, moves or stops the checkers after a change of the route's versions. */
  sync(): void {
    const s = this.#controller.state();
    this.#keep('stable', { version: s.stable.version, url: s.stable.url });
    this.#keep('candidate', s.candidate !== null && s.phase !== 'rolled_back' ? { version: s.candidate.version, url: s.candidate.url } : null);
  }

  stop(): void {
    for (const c of this.#checkers.values()) c.checker.stop();
    this.#checkers.clear();
  }

  #keep(role: 'stable' | 'candidate', want: { version: string; url: string } | null): void {
    const have = this.#checkers.get(role);
    if (have !== undefined && want !== null && have.version === want.version && have.url === want.url) return;
    have?.checker.stop();
    this.#checkers.delete(role);
    if (want === null) return;
    const hc = this.#controller.config.healthCheck!;
    const checker = new HealthChecker({ url: want.url, path: hc.path, intervalMs: hc.intervalMs, timeoutMs: hc.timeoutMs }, (ok, detail) =>
      this.#controller.reportHealth(role, want.version, ok, detail),
    );
    this.#checkers.set(role, { ...want, checker });
    checker.start();
  }
}

/** Each route's weight and window stats, as the metrics read them at scrape time. */
function metricsView(rollouts: Rollouts<Upstream>, gateway: Gateway): ReturnType<MetricsSource['routes']> {
  return rollouts.routes().map((c) => {
    const s = c.state();
    const windows = [];
    if (s.windows.stable !== null) windows.push({ version: s.stable.version, ...s.windows.stable });
    if (s.windows.candidate !== null && s.candidate !== null) windows.push({ version: s.candidate.version, ...s.windows.candidate });
    const mirror = gateway.routes.get(s.name)?.mirror;
    return { name: s.name, weight: s.weight, windows, shadow: { sent: mirror?.sent ?? 0, dropped: { ...(mirror?.dropped ?? { concurrency: 0, body: 0 }) } } };
  });
}
