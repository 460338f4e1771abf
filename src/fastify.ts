import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { adminRoutes } from './admin/server.js';
import { createRollgate, type Rollgate, type RollgateOptions } from './app.js';
import { RollgateError } from './errors.js';
import { loadConfigFile } from './config/load.js';
import type { GatewayConfig } from './config/types.js';
import { keepState } from './store/keep-state.js';
import type { Gateway } from './proxy/gateway.js';
import type { Rollouts } from './rollout/rollouts.js';

/**
 * rollgate inside a Fastify app that a team already runs (`rollgate/fastify`): the same data
 * plane, judge and route state as `rollgate serve`, on the host's port, behind its hooks.
 */

declare module 'fastify' {
  interface FastifyInstance {
    /** The embedded gateway: its data plane, the rollouts (each route's controller) and metrics. */
    rollgate: Rollgate;
  }
}

/** Options of the `rollgate` plugin: the config, plus createRollgate's options. */
export interface RollgatePluginOptions extends RollgateOptions {
  /** The gateway config as `loadConfig` returns it, or the path of a YAML config file. */
  config: GatewayConfig | string;
}

/** Options of the `rollgateAdmin` plugin. */
export interface RollgateAdminOptions {
  /** The bearer token every `/api` call must carry. */
  token: string;
  /** The gateway whose routes it administers; by default the host's `app.rollgate`. */
  rollgate?: Rollgate;
  /** How often `/api/events?stats=true` sends a `stats` event (ms). */
  statsIntervalMs?: number;
}

// fastify-plugin's marks, set by hand (it is not a dependency): the plugin's decorator and
// onClose hook belong to the host instance rather than to an encapsulated child.
const SKIP_OVERRIDE = Symbol.for('skip-override');
const DISPLAY_NAME = Symbol.for('fastify.display-name');

/**
 * Mounts every route's `match.pathPrefix` in the host app and hands each request under it to
 * rollgate's data plane, which streams it to the version it picks. Register it once:
 *
 * ```ts
 * await app.register(rollgate, { config: loadConfig('rollgate.yaml') });
 * ```
 *
 * The routes run the host's hooks (onRequest, preHandler: auth, rate limits, logging) before
 * the request goes upstream; the body is not parsed (it streams through byte for byte), and
 * headers a hook set with `reply.header()` are added to the upstream's answer (onSend hooks do
 * not run: the answer is streamed, not sent through `reply.send`). Decorates `app.rollgate`;
 * closing the host app closes the gateway. `store:` may be `memory` or `file`.
 */
export const rollgate: FastifyPluginAsync<RollgatePluginOptions> = async (app, opts) => {
  // The gateway matches routes on the request's whole path, so a prefix in front of them would
  // mount routes that then answer ROLLGATE_NO_ROUTE: refuse it at start instead.
  if (app.prefix !== '') {
    throw new RollgateError('ROLLGATE_INVALID_CONFIG', `rollgate: register the plugin at the root of the app, not under the prefix ${app.prefix}: each route's match.pathPrefix is its full path`);
  }
  const { config: source, ...options } = opts;
  const config = typeof source === 'string' ? loadConfigFile(source) : source;
  const rg = createRollgate(config, { ...options, logger: options.logger ?? app.log });
  let saved: { flush(): Promise<void> };
  try {
    saved = await keepState(config.store, rg.rollouts as Rollouts<unknown>, app.log, rg.hooks);
  } catch (err) {
    await rg.gateway.close(0);
    throw err;
  }
  app.decorate('rollgate', rg);
  // Runs after the host's server has closed (its in-flight requests finished): the pools,
  // health checks, sweep and webhooks go, then the last state is written.
  app.addHook('onClose', async () => {
    await rg.gateway.close(0);
    await saved.flush();
  });
  await app.register(async (scope) => {
    // In this child context only: the request body stays unread for the data plane to stream.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', leaveBodyUnread);
    const handler = proxyHandler(rg.gateway);
    for (const route of config.routes) {
      for (const url of fastifyPaths(route.pathPrefix)) scope.all(url, handler);
    }
  });
};
Object.assign(rollgate, { [SKIP_OVERRIDE]: true, [DISPLAY_NAME]: 'rollgate' });

/**
 * The admin plane (status page, `/api/...`, `/healthz`, `/readyz`, `/metrics`) in the host app,
 * under a prefix of the host's choosing; the same routes as rollgate's own admin port:
 *
 * ```ts
 * await app.register(rollgateAdmin, { prefix: '/rollgate', token: process.env.ROLLGATE_ADMIN_TOKEN! });
 * ```
 *
 * Register it after `rollgate` (it administers `app.rollgate`), under a prefix: without one it
 * would take the host's 404 handler.
 */
export const rollgateAdmin: FastifyPluginAsync<RollgateAdminOptions> = async (app, opts) => {
  const rg = opts.rollgate ?? (app.hasDecorator('rollgate') ? app.rollgate : undefined);
  if (rg === undefined) throw new Error('rollgateAdmin: register the rollgate plugin first, or pass { rollgate }');
  if (typeof opts.token !== 'string' || opts.token === '') throw new Error('rollgateAdmin: a non-empty token is required');
  await adminRoutes(app, {
    config: rg.gateway.config,
    rollouts: rg.rollouts,
    token: opts.token,
    ready: () => !rg.gateway.draining,
    metrics: rg.metrics,
    ...(opts.statsIntervalMs === undefined ? {} : { statsIntervalMs: opts.statsIntervalMs }),
  });
};
Object.assign(rollgateAdmin, { [DISPLAY_NAME]: 'rollgate-admin' });

export default rollgate;

function leaveBodyUnread(_req: FastifyRequest, _payload: IncomingMessage, done: (err: Error | null, body?: unknown) => void): void {
  done(null);
}

/**
 * One handler for every mounted path, made once: the host's headers are carried over, Fastify
 * lets go of the reply, and the gateway's own request entry takes it from there (route match,
 * pick, exchange, outcome to the judge), exactly as for a request to its own server.
 */
function proxyHandler(gateway: Gateway): (request: FastifyRequest, reply: FastifyReply) => void {
  const handle = gateway.handle;
  return function rollgateRoute(request, reply) {
    const raw = reply.raw;
    const set = reply.getHeaders();
    for (const name in set) {
      const value = set[name];
      if (value !== undefined) raw.setHeader(name, value);
    }
    reply.hijack();
    handle(request.raw, raw);
  };
}

/**
 * The Fastify paths that cover what the gateway's route table matches for one prefix: the prefix
 * itself, everything below it, and `prefix:verb` (TensorFlow Serving and KServe v1). A colon is
 * a parameter in Fastify's paths and is written `::` for a literal one.
 */
export function fastifyPaths(prefix: string): string[] {
  const p = prefix.replaceAll(':', '::');
  if (p.endsWith('/')) return [p, `${p}*`];
  return [p, `${p}/*`, `${p}::*`];
}

export type { Rollgate, RollgateOptions } from './app.js';
