import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { answerClientError, answerUnknownExpectation } from '../client-error.js';
import type { GatewayConfig } from '../config/types.js';
import { RollgateError } from '../errors.js';
import type { MetricsReader } from '../metrics/recorder.js';
import type { Rollouts } from '../rollout/rollouts.js';
import { apiRoutes } from './api-routes.js';
import { bearerMatches, isApiCall } from './auth.js';
import { stringifyAnswers, validateOnFirstUse } from './compilers.js';
import { eventsRoute } from './events-route.js';
import { adminFailure, sendFailure } from './failures.js';
import { acceptEmptyJson } from './json-body.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';

/** Admin request bodies are small JSON documents. */
export const ADMIN_BODY_LIMIT = 64 * 1024;

export interface AdminOptions<U> {
  config: GatewayConfig;
  rollouts: Rollouts<U>;
  token: string;
  /** Whether the data plane is listening (readiness). */
  ready: () => boolean;
  /** Serves /metrics when given, and the status page's live figures. */
  metrics?: MetricsReader;
  /** How often `/api/events?stats=true` sends a `stats` event (ms). */
  statsIntervalMs?: number;
  /** With shared state (Redis): whether this replica's state is shared right now. */
  stateShared?: () => boolean;
  /** Where a ROLLGATE_INTERNAL answer's cause is logged (a pino logger fits). */
  log?: { error(obj: object, msg: string): void };
}

/**
 * The admin plane (SPEC §6): its own Fastify instance on its own port. It calls the rollout
 * controllers and never touches weights or the data plane directly. Every `/api` call needs the
 * bearer token; health, readiness and metrics do not.
 */
export function buildAdmin<U>(options: AdminOptions<U>): FastifyInstance {
  // A URL the router cannot read and a request Node cannot parse are answered in the API's error
  // shape too (Fastify answers both with its own); in a host app they are the host's to answer.
  const app = Fastify({
    logger: false,
    bodyLimit: ADMIN_BODY_LIMIT,
    frameworkErrors: (err, _req, reply) => {
      void sendFailure(reply, adminFailure(err, ADMIN_BODY_LIMIT));
    },
    clientErrorHandler: answerClientError,
    // Node's own refusal of a request without Host has no body; the onRequest hook answers it.
    http: { requireHostHeader: false },
  });
  app.server.on('checkExpectation', answerUnknownExpectation);
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
  acceptEmptyJson(app);
  // Set here rather than on the instance, so that they hold under a host app's prefix too.
  app.setValidatorCompiler(validateOnFirstUse);
  app.setSerializerCompiler(stringifyAnswers);

  const stateShared = options.stateShared;
  if (stateShared !== undefined) {
    // Changes are accepted while Redis is unreachable and shared once it is back; every answer says which.
    app.addHook('onSend', async (_req, reply) => {
      reply.header('x-rollgate-state-shared', stateShared() ? 'true' : 'false');
    });
  }
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.host === undefined && req.raw.httpVersionMinor === 1) {
      reply.header('connection', 'close');
      throw new RollgateError('ROLLGATE_MALFORMED_REQUEST', 'host: an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)');
    }
    if (!isApiCall(req.url, req.routeOptions.url, apiPrefix)) return;
    const header = req.headers.authorization;
    if (!bearerMatches(typeof header === 'string' ? header : undefined, token)) {
      throw new RollgateError('ROLLGATE_UNAUTHORIZED', header === undefined ? 'an Authorization: Bearer <token> header is required' : 'the bearer token is not the admin token');
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const failure = adminFailure(err, ADMIN_BODY_LIMIT);
    if (failure.code === 'ROLLGATE_INTERNAL') options.log?.error({ err: failure.cause, method: req.method, url: req.url }, 'admin request failed');
    return sendFailure(reply, failure);
  });
  app.setNotFoundHandler(async (req) => {
    throw new RollgateError('ROLLGATE_NOT_FOUND', `no admin endpoint ${req.method} ${req.url.split('?')[0]}`);
  });

  // A host app that runs @fastify/swagger already describes these routes in its own document.
  if (!app.hasDecorator('swagger')) {
    app.register(swagger, {
      openapi: {
        info: { title: 'rollgate admin API', version: '1' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
      },
    });
  }
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
    apiRoutes(api, rollouts);
    eventsRoute(api, rollouts, options.metrics, options.statsIntervalMs);
  });
}

/** Starts the admin plane on admin.host:admin.port. */
export async function startAdmin<U>(options: AdminOptions<U>): Promise<{ app: FastifyInstance; address: AddressInfo }> {
  const app = buildAdmin(options);
  await app.listen({ host: options.config.admin.host, port: options.config.admin.port });
  return { app, address: app.server.address() as AddressInfo };
}
