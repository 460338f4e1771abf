import { availableParallelism } from 'node:os';
import { DEFAULT_DATA_HEADER } from '../shapes.js';
import { parseDuration } from './duration.js';
import { MAX_WORKERS } from './schema.js';
import type { ConfigInput, RouteInput } from './schema.js';
import type {
  GatewayConfig,
  HealthCheckConfig,
  HookAction,
  RollbackRules,
  RouteConfig,
  StoreConfig,
  Strategy,
  TlsConfig,
  UpstreamProtocol,
} from './types.js';

/** Data plane address, and how long graceful shutdown waits for in-flight requests. */
export const DEFAULT_LISTEN: Readonly<GatewayConfig['listen']> = Object.freeze({
  host: '0.0.0.0',
  port: 8080,
  // One process: the sidecar case. `auto` (or N) runs a data-plane process per core.
  workers: 1,
  // V8 set for a sidecar's memory (src/cli/memory-profile.ts); `fast` keeps V8's defaults.
  memory: 'lean',
  drainTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  // Longer than common load balancers' idle timeouts (60 s), so that they close first.
  idleTimeoutMs: 65_000,
});
/** Admin plane address and the environment variable holding its bearer token. */
export const DEFAULT_ADMIN: Readonly<GatewayConfig['admin']> = Object.freeze({
  host: '127.0.0.1',
  port: 9090,
  tokenEnv: 'ROLLGATE_ADMIN_TOKEN',
});
export const DEFAULT_STORE: Readonly<StoreConfig> = Object.freeze({ kind: 'memory' });
export const DEFAULT_REDIS_PREFIX = 'rollgate';
/** Replicas the alpha budget is split over when they share evidence (store: redis). */
export const DEFAULT_MAX_REPLICAS = 8;
export const DEFAULT_LOG_LEVEL: GatewayConfig['log']['level'] = 'info';
export const DEFAULT_CANDIDATE_WEIGHT = 0;
export const DEFAULT_STRATEGY: Strategy = 'canary';
export const DEFAULT_AUTO_PROMOTE = true;
export const DEFAULT_BLUE_GREEN_BAKE_MS = 5 * 60_000;
export const DEFAULT_SHADOW: Readonly<RouteConfig['shadow']> = Object.freeze({
  mirrorPercent: 100,
  bakeMs: 10 * 60_000,
  maxInFlight: 100,
  maxBodyBytes: 1_048_576,
});
export const DEFAULT_ALLOW_OVERRIDE = false;
export const DEFAULT_PROTOCOL: UpstreamProtocol = 'http1';
export const DEFAULT_RETRY_ON_STABLE = false;
/** On a rollback, open WebSocket connections of the rolled-back version are closed with 1012. */
export const DEFAULT_WEBSOCKET_KEEP_ON_ROLLBACK = false;
export const DEFAULT_MAX_REPLAY_BODY_BYTES = 1_048_576;
export const DEFAULT_TIMEOUTS: Readonly<RouteConfig['timeouts']> = Object.freeze({
  connectMs: 1_000,
  responseMs: 30_000,
});
/** Applies only when a route sets `healthCheck` (with its required `path`). */
export const DEFAULT_HEALTH_CHECK: Readonly<Omit<HealthCheckConfig, 'path'>> = Object.freeze({
  intervalMs: 2_000,
  timeoutMs: 500,
  unhealthyAfter: 3,
});
export const DEFAULT_ROLLBACK: Readonly<RollbackRules> = Object.freeze({
  alpha: 0.001,
  consecutiveFailures: 5,
  errorRate: Object.freeze({ tolerance: 1.25, maxAbsolute: 0.05 }),
  latency: Object.freeze({
    quantiles: Object.freeze([0.5, 0.99]) as number[],
    tolerance: 1.25,
    minDeltaMs: 5,
  }),
  warmup: 50,
  windowMs: 5 * 60_000,
});

/** Milliseconds of a duration the schema has already accepted; absent gives the fallback. */
function ms(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = parseDuration(value);
  if (parsed === null) throw new TypeError(`unvalidated duration: ${value}`);
  return parsed;
}

/** An http(s) base URL without a trailing `/` on its path, so `url + path` joins cleanly. */
export function normalizeUrl(url: string): string {
  const u = new URL(url);
  const path = u.pathname.endsWith('/') ? u.pathname.slice(0, -1) : u.pathname;
  return `${u.protocol}//${u.host}${path}`;
}

/** Bytes of an answer kept for `checks.json` (and read for the other checks); larger answers are not checked. */
export const DEFAULT_CHECK_MAX_BYTES = 262_144;
export const DEFAULT_AGREEMENT = Object.freeze({ numericTolerance: 0, maxDisagreement: 0.05, mirrorPercent: 0 });

function checks(c: RouteInput['checks'], schema: object | undefined): RouteConfig['checks'] {
  const json = c?.json;
  return {
    json: json === undefined || schema === undefined ? null : { schema, maxBytes: json.maxBytes ?? DEFAULT_CHECK_MAX_BYTES, holdForReplay: json.holdForReplay ?? false },
    llm: c?.llm === undefined ? null : { format: c.llm.format },
  };
}

function agreement(a: RouteInput['agreement']): RouteConfig['agreement'] {
  if (a === undefined) return null;
  return {
    pointer: a.pointer,
    numericTolerance: a.numericTolerance ?? DEFAULT_AGREEMENT.numericTolerance,
    maxDisagreement: a.maxDisagreement ?? DEFAULT_AGREEMENT.maxDisagreement,
    mirrorPercent: a.mirrorPercent ?? DEFAULT_AGREEMENT.mirrorPercent,
  };
}

function route(r: RouteInput, schema?: object): RouteConfig {
  const rb = r.rollback ?? {};
  const hc = r.healthCheck;
  return {
    name: r.name,
    pathPrefix: r.match.pathPrefix,
    stable: { version: r.stable.version, url: normalizeUrl(r.stable.url), data: r.stable.data ?? null, protocol: r.stable.protocol ?? DEFAULT_PROTOCOL },
    candidate: r.candidate
      ? {
          version: r.candidate.version,
          url: normalizeUrl(r.candidate.url),
          data: r.candidate.data ?? null,
          protocol: r.candidate.protocol ?? DEFAULT_PROTOCOL,
          weight: r.candidate.weight ?? DEFAULT_CANDIDATE_WEIGHT,
        }
      : null,
    strategy: r.strategy ?? DEFAULT_STRATEGY,
    dataHeader: (r.dataHeader ?? DEFAULT_DATA_HEADER).toLowerCase(),
    steps: (r.steps ?? []).map((s) => ({ weight: s.weight, bakeMs: ms(s.bake, 0) })),
    autoPromote: r.autoPromote ?? DEFAULT_AUTO_PROMOTE,
    blueGreen: { bakeMs: ms(r.blueGreen?.bake, DEFAULT_BLUE_GREEN_BAKE_MS) },
    shadow: {
      mirrorPercent: r.shadow?.mirrorPercent ?? DEFAULT_SHADOW.mirrorPercent,
      bakeMs: ms(r.shadow?.bake, DEFAULT_SHADOW.bakeMs),
      maxInFlight: r.shadow?.maxInFlight ?? DEFAULT_SHADOW.maxInFlight,
      maxBodyBytes: r.shadow?.maxBodyBytes ?? DEFAULT_SHADOW.maxBodyBytes,
    },
    sticky: r.sticky?.header
      ? { kind: 'header', name: r.sticky.header.toLowerCase() }
      : r.sticky?.cookie
        ? { kind: 'cookie', name: r.sticky.cookie }
        : null,
    allowOverride: r.allowOverride ?? DEFAULT_ALLOW_OVERRIDE,
    retryOnStable: r.retryOnStable ?? DEFAULT_RETRY_ON_STABLE,
    maxReplayBodyBytes: r.maxReplayBodyBytes ?? DEFAULT_MAX_REPLAY_BODY_BYTES,
    replayMethods: r.replayMethods === undefined ? null : [...new Set(r.replayMethods.map((m) => m.toUpperCase()))],
    timeouts: {
      connectMs: ms(r.timeouts?.connect, DEFAULT_TIMEOUTS.connectMs),
      responseMs: ms(r.timeouts?.response, DEFAULT_TIMEOUTS.responseMs),
    },
    healthCheck: hc
      ? {
          path: hc.path,
          intervalMs: ms(hc.interval, DEFAULT_HEALTH_CHECK.intervalMs),
          timeoutMs: ms(hc.timeout, DEFAULT_HEALTH_CHECK.timeoutMs),
          unhealthyAfter: hc.unhealthyAfter ?? DEFAULT_HEALTH_CHECK.unhealthyAfter,
        }
      : null,
    rollback: {
      alpha: rb.alpha ?? DEFAULT_ROLLBACK.alpha,
      consecutiveFailures: rb.consecutiveFailures ?? DEFAULT_ROLLBACK.consecutiveFailures,
      errorRate: {
        tolerance: rb.errorRate?.tolerance ?? DEFAULT_ROLLBACK.errorRate.tolerance,
        maxAbsolute: rb.errorRate?.maxAbsolute ?? DEFAULT_ROLLBACK.errorRate.maxAbsolute,
      },
      latency: {
        quantiles: [...(rb.latency?.quantiles ?? DEFAULT_ROLLBACK.latency.quantiles)],
        tolerance: rb.latency?.tolerance ?? DEFAULT_ROLLBACK.latency.tolerance,
        minDeltaMs: ms(rb.latency?.minDelta, DEFAULT_ROLLBACK.latency.minDeltaMs),
      },
      warmup: rb.warmup ?? DEFAULT_ROLLBACK.warmup,
      windowMs: ms(rb.window, DEFAULT_ROLLBACK.windowMs),
    },
    checks: checks(r.checks, schema),
    agreement: agreement(r.agreement),
    hooks: {
      beforeTraffic: (r.hooks?.beforeTraffic ?? []).map(hookAction),
      afterRollback: (r.hooks?.afterRollback ?? []).map(hookAction),
      afterPromote: (r.hooks?.afterPromote ?? []).map(hookAction),
    },
    websocket: { keepOnRollback: r.websocket?.keepOnRollback ?? DEFAULT_WEBSOCKET_KEEP_ON_ROLLBACK },
  };
}

/** A hook action runs for at most this long unless its `timeout` says otherwise. */
export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;
/** How many times an action is tried before its job is failed, unless `maxAttempts` says. */
export const DEFAULT_HOOK_MAX_ATTEMPTS = 5;

function hookAction(a: NonNullable<NonNullable<RouteInput['hooks']>['afterRollback']>[number]): HookAction {
  const timeoutMs = ms(a.timeout, DEFAULT_HOOK_TIMEOUT_MS);
  const maxAttempts = a.maxAttempts ?? DEFAULT_HOOK_MAX_ATTEMPTS;
  return a.kind === 'exec' ? { kind: 'exec', command: [...(a.command ?? [])], timeoutMs, maxAttempts } : { kind: 'http', url: a.url as string, timeoutMs, maxAttempts };
}

function store(s: ConfigInput['store']): StoreConfig {
  if (s === undefined || s.kind === 'memory') return { ...DEFAULT_STORE };
  if (s.kind === 'file') return { kind: 'file', path: s.path as string };
  return { kind: 'redis', url: s.url as string, prefix: s.prefix ?? DEFAULT_REDIS_PREFIX, maxReplicas: s.maxReplicas ?? DEFAULT_MAX_REPLICAS };
}

/**
 * Fills every omitted key with its default and converts durations to milliseconds. The input
 * must already have passed validation (`parseConfig` does both).
 */
export function applyDefaults(input: ConfigInput, schemas: ReadonlyMap<number, object> = new Map(), tls: TlsConfig | null = null): GatewayConfig {
  return {
    listen: {
      host: input.listen?.host ?? DEFAULT_LISTEN.host,
      port: input.listen?.port ?? DEFAULT_LISTEN.port,
      workers: workerCount(input.listen?.workers),
      memory: input.listen?.memory ?? DEFAULT_LISTEN.memory,
      drainTimeoutMs: ms(input.listen?.drainTimeout, DEFAULT_LISTEN.drainTimeoutMs),
      headersTimeoutMs: ms(input.listen?.headersTimeout, DEFAULT_LISTEN.headersTimeoutMs),
      requestTimeoutMs: ms(input.listen?.requestTimeout, DEFAULT_LISTEN.requestTimeoutMs),
      idleTimeoutMs: ms(input.listen?.idleTimeout, DEFAULT_LISTEN.idleTimeoutMs),
      tls,
    },
    admin: {
      host: input.admin?.host ?? DEFAULT_ADMIN.host,
      port: input.admin?.port ?? DEFAULT_ADMIN.port,
      tokenEnv: input.admin?.tokenEnv ?? DEFAULT_ADMIN.tokenEnv,
    },
    store: store(input.store),
    // A webhook URL names the endpoint itself, so it is kept exactly as written.
    notify: (input.notify ?? []).map((n) => ({ kind: 'webhook', url: n.url })),
    log: { level: input.log?.level ?? DEFAULT_LOG_LEVEL },
    routes: input.routes.map((r, i) => route(r, schemas.get(i))),
  };
}

/** `listen.workers`: `auto` is one per core the process may use (at most MAX_WORKERS). */
function workerCount(value: number | 'auto' | undefined): number {
  if (value === undefined) return DEFAULT_LISTEN.workers;
  return value === 'auto' ? Math.min(MAX_WORKERS, availableParallelism()) : value;
}
