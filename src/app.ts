import type { GatewayConfig, UpstreamProtocol } from './config/types.js';
import { RouteHealthChecks } from './health/route-checks.js';
import { wireHooks } from './hooks/wiring.js';
import { MetricsRecorder, type MetricsSource } from './metrics/recorder.js';
import { WebhookNotifier, type WebhookOptions } from './notify/webhook.js';
import { Gateway, type GatewayLogger } from './proxy/gateway.js';
import type { Outcome, OutcomeSink } from './proxy/outcome.js';
import type { AgreementSink } from './proxy/agreement.js';
import { Upstream } from './proxy/upstream.js';
import type { Timers } from './rollout/bake-timer.js';
import { Rollouts } from './rollout/rollouts.js';
import { warmUpRollbackPath } from './rollout/warm-up.js';
import type { Rng } from './traffic/picker.js';

/** How often in-flight requests are checked against the latency thresholds. */
export const SWEEP_INTERVAL_MS = 20;

export type RollgateLogger = GatewayLogger & { info(obj: object, msg: string): void; error(obj: object, msg: string): void; debug?(obj: object, msg: string): void };

export interface RollgateOptions {
  rng?: Rng;
  logger?: RollgateLogger;
  /** Logs one line per finished request at debug (off at info and above: the hot path stays quiet). */
  logRequests?: boolean;
  /** Also receives every outcome, after the judge (tests and benchmarks). */
  onOutcome?: OutcomeSink;
  /** Bake timers of the step schedules (tests drive them on a fake clock). */
  timers?: Timers;
  /** The share of alpha this replica's own tests run at (see ReplicaSync's fleet evidence). */
  alphaScale?: number;
  /** How long to wait before try n + 1 of a failed hook action (1 s doubling to 30 s by default). */
  hookBackoffMs?: (n: number) => number;
  /** Timeouts and retry bounds of the `notify:` webhooks. */
  webhook?: Omit<WebhookOptions, 'onGiveUp'>;
  /**
   * A process of `listen.workers` sharing state through its primary: workers run no data hook
   * and the primary runs those of its workers' changes; the primary counts every rollback once,
   * with the deciding process's reason, since the fleet's /metrics sums every process.
   */
  workers?: 'primary' | 'worker';
}

export interface Rollgate {
  gateway: Gateway;
  rollouts: Rollouts<Upstream>;
  metrics: MetricsRecorder;
  /**
   * The data hooks: `start(savedJobs)` once the routes' saved state is restored (keepState does,
   * and so does `rollgate serve`); until then no hook runs, and a candidate with beforeTraffic
   * hooks takes no traffic.
   */
  hooks: ReturnType<typeof wireHooks>;
}

/**
 * Wires the data plane to the rollouts: every outcome goes to its route's judge, then to the
 * metrics; every state change is handled in the order of `AFTER_CHANGE` (persist, metrics,
 * notify, log). Closing the gateway's server stops everything this started.
 */
export function createRollgate(config: GatewayConfig, options: RollgateOptions = {}): Rollgate {
  const log = options.logger;
  const rollouts = new Rollouts<Upstream>({
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.alphaScale !== undefined ? { alphaScale: options.alphaScale } : {}),
    ...(log ? { logger: log } : {}),
  });
  const metrics = new MetricsRecorder(undefined, options.workers === undefined ? {} : { workers: options.workers });
  const onAgreement: AgreementSink = (route, r) => {
    rollouts.observeAgreement(route, r);
    metrics.agreement(route, r.agree);
  };
  const gateway = new Gateway(config, { onOutcome: outcomeSinks(rollouts.observe, metrics.observe, options), onVersionGone: metrics.forget, onAgreement, ...(options.rng ? { rng: options.rng } : {}), ...(log ? { logger: log } : {}) });
  for (const r of gateway.routes.values()) {
    rollouts.add({
      config: r.config,
      picker: r.picker,
      makeUpstream: (version, url, data) => new Upstream({ version, url, data, protocol: deployedProtocol(r.config.stable.protocol, url) }, r.config.timeouts),
      retire: (u: Upstream) => gateway.retire(r.name, u),
    });
  }
  // Open WebSocket connections of a rolled-back version are closed (1012) unless the route keeps them.
  rollouts.subscribe((e) => {
    const route = e.type === 'rollback' ? gateway.routes.get(e.route) : undefined;
    if (route !== undefined) gateway.websockets.rolledBack(route);
  });
  metrics.collectFrom({ routes: () => metricsView(rollouts, gateway) });
  const first = config.routes[0];
  if (first !== undefined) warmUpRollbackPath(first);
  const closers: (() => void)[] = [];
  // Requests still waiting for an answer are judged as soon as they pass the latency thresholds
  // (not in the primary of `listen.workers`, whose gateway never serves).
  if (options.workers !== 'primary') {
    const sweep = setInterval(() => {
      for (const route of gateway.routes.values()) rollouts.route(route.name)?.sweepInFlight(route.inflight);
    }, SWEEP_INTERVAL_MS);
    sweep.unref();
    closers.push(() => clearInterval(sweep));
  }
  rollouts.on('metrics', metrics.event);
  for (const n of config.notify) {
    const notifier = new WebhookNotifier(n.url, {
      ...options.webhook,
      onGiveUp: (e, err) => log?.warn({ webhook: n.url, route: e.route, type: e.type, err }, 'webhook notification given up'),
    });
    rollouts.on('notify', (e) => notifier.notify(e));
    closers.push(() => notifier.close());
  }
  // The primary of `listen.workers` logs every change once (its workers' as `peer`); they log none.
  if (log !== undefined && options.workers !== 'worker') rollouts.on('log', (event) => log.info({ event }, event.message));
  // Active health checks (SPEC §3 healthCheck): stable's always, the candidate's while it is live.
  for (const c of rollouts.routes()) {
    if (c.config.healthCheck === null) continue;
    const checks = new RouteHealthChecks(c);
    checks.sync();
    rollouts.subscribe((e) => e.route === checks.route && checks.sync());
    closers.push(() => checks.stop());
  }
  const hooks = wireHooks(rollouts as Rollouts<unknown>, metrics, { ...(options.timers ? { timers: options.timers } : {}), ...(options.hookBackoffMs ? { backoffMs: options.hookBackoffMs } : {}), ...(options.workers ? { workers: options.workers } : {}) });
  closers.push(() => hooks.runner.close());
  gateway.server.once('close', () => closers.forEach((close) => close()));
  return { gateway, rollouts, metrics, hooks };
}

/** The outcome sinks, fixed at start: the judge first, then the metrics, then the rest. */
function outcomeSinks(judge: OutcomeSink, record: OutcomeSink, options: RollgateOptions): OutcomeSink {
  const rest: OutcomeSink[] = [];
  const debug = options.logger?.debug?.bind(options.logger);
  if (options.logRequests === true && debug !== undefined) rest.push((o) => debug(requestLine(o), 'request'));
  if (options.onOutcome !== undefined) rest.push(options.onOutcome);
  if (rest.length === 0) {
    return (o) => {
      judge(o);
      record(o);
    };
  }
  return (o) => {
    judge(o);
    record(o);
    for (let i = 0; i < rest.length; i++) (rest[i] as OutcomeSink)(o);
  };
}

function requestLine(o: Outcome): object {
  return { route: o.route, version: o.version, role: o.role, status: o.status, failure: o.failure, latencyMs: Math.round(o.latencyMs * 1000) / 1000, replayed: o.replayed, requestId: o.requestId };
}

/** Each route's weight and window stats, as the metrics read them at scrape time. */
function metricsView(rollouts: Rollouts<Upstream>, gateway: Gateway): ReturnType<MetricsSource['routes']> {
  return rollouts.routes().map((c) => {
    const s = c.state();
    const windows = [];
    if (s.windows.stable !== null) windows.push({ version: s.stable.version, ...s.windows.stable });
    if (s.windows.candidate !== null && s.candidate !== null) windows.push({ version: s.candidate.version, ...s.windows.candidate });
    const mirror = gateway.routes.get(s.name)?.mirror;
    const hooks = Object.values(c.config.hooks).some((list) => list.length > 0);
    const { json, llm } = c.config.checks;
    const checks: ('json' | 'llm')[] = [...(json !== null ? (['json'] as const) : []), ...(llm !== null ? (['llm'] as const) : [])];
    return { name: s.name, weight: s.weight, hooks, windows, checks, agreement: c.config.agreement !== null, shadow: { sent: mirror?.sent ?? 0, dropped: { ...(mirror?.dropped ?? { concurrency: 0, body: 0 }) } } };
  });
}

/** A version deployed through the admin API speaks what the route's configured stable speaks: HTTP/2 stays HTTP/2 (h2 for an https URL, h2c for http). */
function deployedProtocol(configured: UpstreamProtocol | undefined, url: string): UpstreamProtocol {
  if (configured === undefined || configured === 'http1') return 'http1';
  return url.startsWith('https:') ? 'h2' : 'h2c';
}
