import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig, Strategy } from '../config/types.js';
import { normalizeUrl } from '../config/defaults.js';
import { VALUE_CHECKS } from '../config/schema.js';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { RouteController } from '../rollout/route-controller.js';
import { RolloutRefusal, UnknownVersion } from '../errors.js';
import type { Rollouts } from '../rollout/rollouts.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import { bearerMatches } from './auth.js';
import { StatusFeed, type StatsPayload } from './status-feed.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';
import { errorBody, fullRollback, history, routeState, routesList } from './schemas.js';

/** Admin request bodies are small JSON documents. */
export const ADMIN_BODY_LIMIT = 64 * 1024;

export interface AdminOptions<U> {
  config: GatewayConfig;
  rollouts: Rollouts<U>;
  token: string;
  /** Whether the data plane is listening (readiness). */
  ready: () => boolean;
  /** Serves /metrics when given, and the status page's live figures. */
  metrics?: MetricsRecorder;
  /** How often `/api/events?stats=true` sends a `stats` event (ms). */
  statsIntervalMs?: number;
  /** With shared state (Redis): whether this replica's state is shared right now. */
  stateShared?: () => boolean;
}

const twoDecimals = (w: number): boolean => Math.abs(Math.round(w * 100) - w * 100) < 1e-6;

function fail(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(ERRORS[code].status).send({ error: { code, message } });
}

const routeParams = {
  type: 'object',
  properties: { route: { type: 'string', minLength: 1, maxLength: 63 } },
  required: ['route'],
} as const;

const candidateBody = {
  type: 'object',
  properties: {
    version: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$' },
    url: { type: 'string', minLength: 1, maxLength: 2048 },
    weight: { type: 'number', minimum: 0, maximum: 100 },
    strategy: { type: 'string', enum: ['canary', 'blueGreen', 'shadow'] },
  },
  required: ['version', 'url'],
  additionalProperties: false,
} as const;

const rollbackBody = {
  anyOf: [
    { type: 'null' },
    {
      type: 'object',
      properties: { version: { anyOf: [{ type: 'string', minLength: 1, maxLength: 64 }, { type: 'integer', minimum: 1 }] } },
      additionalProperties: false,
    },
  ],
} as const;

const weightBody = {
  type: 'object',
  properties: { weight: { type: 'number', minimum: 0, maximum: 100 } },
  required: ['weight'],
  additionalProperties: false,
} as const;

/**
 * The admin plane (SPEC §6): its own Fastify instance on its own port. It calls the rollout
 * controllers and never touches weights or the data plane directly. Every `/api` call needs the
 * bearer token; health, readiness and metrics do not.
 */
export function buildAdmin<U>(options: AdminOptions<U>): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: ADMIN_BODY_LIMIT });
  app.register(adminRoutes<U>, options);
  return app;
}

/**
 * The admin plane's routes, hooks and error handling as a Fastify plugin: `buildAdmin` registers
 * it on its own instance, and a host Fastify app may register it under a prefix of its own
 * (`app.register(adminRoutes, { prefix: '/rollgate', ...options })`). Its hooks and handlers are
 * encapsulated: they apply to these routes only. Under no prefix it sets the app's 404 handler.
 */
export async function adminRoutes<U>(app: FastifyInstance, options: AdminOptions<U>): Promise<void> {
  const { rollouts, token } = options;
  // Under a host's prefix the request URL carries it (`/rollgate/api/...`).
  const apiPrefix = `${app.prefix}/api`;
  // The instance-wide bodyLimit of buildAdmin, set per route so that it holds in a host app too.
  app.addHook('onRoute', (route) => {
    route.bodyLimit ??= ADMIN_BODY_LIMIT;
  });

  const stateShared = options.stateShared;
  if (stateShared !== undefined) {
    // Changes are accepted while Redis is unreachable and shared once it is back; every answer says which.
    app.addHook('onSend', async (_req, reply) => {
      reply.header('x-rollgate-state-shared', stateShared() ? 'true' : 'false');
    });
  }
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith(apiPrefix)) return;
    const header = req.headers.authorization;
    if (!bearerMatches(typeof header === 'string' ? header : undefined, token)) {
      await fail(reply, 'ROLLGATE_UNAUTHORIZED', header === undefined ? 'an Authorization: Bearer <token> header is required' : 'the bearer token is not the admin token');
    }
  });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.validation !== undefined) {
      const first = err.validation[0];
      const field = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
      const context = err.validationContext ?? 'request';
      const where = field ? `${context}.${field}` : context;
      return fail(reply, 'ROLLGATE_BAD_REQUEST', `${where}: ${first?.message ?? 'is invalid'}`);
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return fail(reply, 'ROLLGATE_BODY_TOO_LARGE', `the body is over ${ADMIN_BODY_LIMIT} bytes`);
    if (err.statusCode === 400 || err.code?.startsWith('FST_ERR_CTP')) return fail(reply, 'ROLLGATE_BAD_REQUEST', `body: ${err.message}`);
    if (err instanceof RolloutRefusal) return fail(reply, 'ROLLGATE_CONFLICT', err.message);
    if (err instanceof UnknownVersion) return fail(reply, 'ROLLGATE_UNKNOWN_VERSION', err.message);
    return reply.code(500).send({ error: { code: 'ROLLGATE_INTERNAL', message: err.message } });
  });
  app.setNotFoundHandler((req, reply) => fail(reply, 'ROLLGATE_NOT_FOUND', `no admin endpoint ${req.method} ${req.url.split('?')[0]}`));

  const controller = (name: string, reply: FastifyReply): RouteController<U> | null => {
    const c = rollouts.route(name);
    if (c === undefined) void fail(reply, 'ROLLGATE_UNKNOWN_ROUTE', `no route named ${name}`);
    return c ?? null;
  };

  // A host app that runs @fastify/swagger already describes these routes in its own document.
  if (!app.hasDecorator('swagger')) app.register(swagger, {
    openapi: {
      info: { title: 'rollgate admin API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // Routes in a plugin of their own, so the OpenAPI description sees every one of them.
  app.register(async (api) => {
    api.get('/docs', { schema: { hide: true } }, async () => app.swagger());
    const metrics = options.metrics;
    if (metrics !== undefined) {
      api.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
        const text = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(text);
      });
    }
    api.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', STATUS_PAGE_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-store')
        .send(STATUS_PAGE_HTML),
    );
    api.get('/healthz', async () => ({ status: 'ok' }));
    api.get('/readyz', async (_req, reply) => {
      const shared = options.stateShared === undefined ? {} : { stateShared: options.stateShared() };
      return options.ready() ? { ready: true, ...shared } : reply.code(503).send({ ready: false, ...shared });
    });

    api.get('/api/routes', { schema: { response: { 200: routesList } } }, async () => ({ routes: rollouts.routes().map((c) => c.state()) }));

    api.get<{ Params: { route: string } }>('/api/routes/:route', { schema: { params: routeParams, response: { 200: routeState, 404: errorBody } } }, async (req, reply) => {
      const c = controller(req.params.route, reply);
      return c === null ? reply : c.state();
    });

    api.put<{ Params: { route: string }; Body: { weight: number } }>(
      '/api/routes/:route/weight',
      { schema: { params: routeParams, body: weightBody, response: { 200: routeState } } },
      async (req, reply) => {
        const c = controller(req.params.route, reply);
        if (c === null) return reply;
        const { weight } = req.body;
        if (!twoDecimals(weight)) return fail(reply, 'ROLLGATE_BAD_REQUEST', 'body.weight: must have at most two decimals');
        c.setWeight(weight, 'manual');
        return c.state();
      },
    );

    api.put<{ Params: { route: string }; Body: { version: string; url: string; weight?: number; strategy?: string } }>(
      '/api/routes/:route/candidate',
      { schema: { params: routeParams, body: candidateBody, response: { 200: routeState } } },
      async (req, reply) => {
        const c = controller(req.params.route, reply);
        if (c === null) return reply;
        const { version, url, weight = 0, strategy } = req.body;
        const urlProblem = VALUE_CHECKS['http-url']?.(url) ?? null;
        if (urlProblem !== null) return fail(reply, 'ROLLGATE_BAD_REQUEST', `body.url: ${urlProblem}`);
        const labelProblem = VALUE_CHECKS['version-label']?.(version) ?? null;
        if (labelProblem !== null) return fail(reply, 'ROLLGATE_BAD_REQUEST', `body.version: ${labelProblem}`);
        if (!twoDecimals(weight)) return fail(reply, 'ROLLGATE_BAD_REQUEST', 'body.weight: must have at most two decimals');
        c.deploy(version, normalizeUrl(url), weight, 'manual', strategy as Strategy | undefined);
        return c.state();
      },
    );

    api.post<{ Params: { route: string } }>('/api/routes/:route/promote', { schema: { params: routeParams, response: { 200: routeState } } }, async (req, reply) => {
      const c = controller(req.params.route, reply);
      if (c === null) return reply;
      c.promote('manual');
      return c.state();
    });

    api.get<{ Params: { route: string } }>('/api/routes/:route/history', { schema: { params: routeParams, response: { 200: history } } }, async (req, reply) => {
      const c = controller(req.params.route, reply);
      if (c === null) return reply;
      return { revisions: c.revisions, events: c.events };
    });

    // Server-sent events: one per state change, with the route's state after it; with
    // ?stats=true also a `stats` event every statsIntervalMs with each version's live figures.
    const streams = new Set<ServerResponse>();
    const metricsRecorder = options.metrics;
    const feed = new StatusFeed(
      () => rollouts.routes().map((c) => c.state()),
      metricsRecorder === undefined ? async () => [] : () => metricsRecorder.tallies(),
      options.statsIntervalMs,
    );
    api.addHook('preClose', async () => {
      feed.close();
      for (const res of streams) res.end();
    });
    api.get<{ Querystring: { stats?: boolean } }>(
      '/api/events',
      { schema: { querystring: { type: 'object', properties: { stats: { type: 'boolean' } }, additionalProperties: false } } },
      (req, reply) => {
        reply.hijack();
        const res = reply.raw;
        streams.add(res);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        res.write(': rollgate events\n\n');
        const unsubscribe = rollouts.subscribe((event, state) => {
          res.write(`event: ${event.type}\ndata: ${JSON.stringify({ event, state })}\n\n`);
        });
        const stopStats = req.query.stats === true ? feed.subscribe((p: StatsPayload) => res.write(`event: stats\ndata: ${JSON.stringify(p)}\n\n`)) : () => {};
        const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
        req.raw.on('close', () => {
          clearInterval(ping);
          unsubscribe();
          stopStats();
          streams.delete(res);
        });
      },
    );

    api.post<{ Params: { route: string }; Body: { version?: string | number } | undefined }>(
      '/api/routes/:route/rollback',
      { schema: { params: routeParams, body: rollbackBody, response: { 200: routeState } } },
      async (req, reply) => {
        const c = controller(req.params.route, reply);
        if (c === null) return reply;
        const version = req.body?.version;
        if (version === undefined) c.rollback('manual');
        else c.rollbackTo(String(version), 'manual');
        return c.state();
      },
    );

    for (const verb of ['pause', 'resume'] as const) {
      api.post<{ Params: { route: string } }>(`/api/routes/:route/${verb}`, { schema: { params: routeParams, response: { 200: routeState } } }, async (req, reply) => {
        const c = controller(req.params.route, reply);
        if (c === null) return reply;
        c[verb]('manual');
        return c.state();
      });
    }

    api.post('/api/rollback', { schema: { response: { 200: fullRollback } } }, async () => {
      const rolledBack: string[] = [];
      for (const c of rollouts.routes()) {
        if (c.state().candidate !== null && c.phase !== 'rolled_back') {
          c.rollback('manual');
          rolledBack.push(c.name);
        }
      }
      return { rolledBack, routes: rollouts.routes().map((c) => c.state()) };
    });
  });
}

/** Starts the admin plane on admin.host:admin.port. */
export async function startAdmin<U>(options: AdminOptions<U>): Promise<{ app: FastifyInstance; address: AddressInfo }> {
  const app = buildAdmin(options);
  await app.listen({ host: options.config.admin.host, port: options.config.admin.port });
  return { app, address: app.server.address() as AddressInfo };
}
