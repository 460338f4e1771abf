import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { normalizeUrl } from '../config/defaults.js';
import { VALUE_CHECKS } from '../config/schema.js';
import { RollgateError } from '../errors.js';
import type { RouteController } from '../rollout/route-controller.js';
import type { Rollouts } from '../rollout/rollouts.js';
import { CandidateBody, errorAnswers, FullRollback, History, RollbackBody, RouteParams, RoutesList, RouteStateSchema, WeightBody } from './schemas.js';

/** A weight the schema took as two decimals within its precision (0.1 + 0.2), stored as exactly that. */
const twoDecimals = (weight: number): number => Math.round(weight * 100) / 100;

/** Checks the schema cannot say, shared with the config file: the URL's shape, reserved labels. */
function checkField(field: string, check: 'http-url' | 'version-label', value: string): void {
  const problem = VALUE_CHECKS[check]?.(value) ?? null;
  if (problem !== null) throw new RollgateError('ROLLGATE_BAD_REQUEST', `body.${field}: ${problem}`);
}

/**
 * The `/api` routes that read and change routes (SPEC §6). Each calls a route's controller and
 * answers with the route's state after the change; refusals are thrown as RollgateErrors and
 * answered by the admin plane's error handler, so a refused call changes nothing.
 */
export function apiRoutes<U>(instance: FastifyInstance, rollouts: Rollouts<U>): void {
  const api = instance.withTypeProvider<TypeBoxTypeProvider>();
  const controller = (name: string): RouteController<U> => {
    const c = rollouts.route(name);
    if (c === undefined) throw new RollgateError('ROLLGATE_UNKNOWN_ROUTE', `no route named ${name}`);
    return c;
  };
  const onRoute = { params: RouteParams };

  api.get('/api/routes', { schema: { response: { 200: RoutesList, ...errorAnswers() } } }, async () => ({ routes: rollouts.routes().map((c) => c.state()) }));

  api.get('/api/routes/:route', { schema: { ...onRoute, response: { 200: RouteStateSchema, ...errorAnswers('ROLLGATE_UNKNOWN_ROUTE') } } }, async (req) =>
    controller(req.params.route).state(),
  );

  api.put(
    '/api/routes/:route/weight',
    { schema: { ...onRoute, body: WeightBody, response: { 200: RouteStateSchema, ...errorAnswers('ROLLGATE_BAD_REQUEST', 'ROLLGATE_UNKNOWN_ROUTE', 'ROLLGATE_CONFLICT', 'ROLLGATE_BODY_TOO_LARGE') } } },
    async (req) => {
      const c = controller(req.params.route);
      c.setWeight(twoDecimals(req.body.weight), 'manual');
      return c.state();
    },
  );

  api.put(
    '/api/routes/:route/candidate',
    { schema: { ...onRoute, body: CandidateBody, response: { 200: RouteStateSchema, ...errorAnswers('ROLLGATE_BAD_REQUEST', 'ROLLGATE_UNKNOWN_ROUTE', 'ROLLGATE_CONFLICT', 'ROLLGATE_BODY_TOO_LARGE') } } },
    async (req) => {
      const c = controller(req.params.route);
      const { version, url, weight = 0, strategy, data } = req.body;
      checkField('url', 'http-url', url);
      checkField('version', 'version-label', version);
      c.deploy(version, normalizeUrl(url), twoDecimals(weight), 'manual', strategy, data ?? null);
      return c.state();
    },
  );

  api.post(
    '/api/routes/:route/rollback',
    { schema: { ...onRoute, body: RollbackBody, response: { 200: RouteStateSchema, ...errorAnswers('ROLLGATE_BAD_REQUEST', 'ROLLGATE_UNKNOWN_ROUTE', 'ROLLGATE_UNKNOWN_VERSION', 'ROLLGATE_CONFLICT') } } },
    async (req) => {
      const c = controller(req.params.route);
      // No body, or an empty one, arrives as undefined (validated as null).
      const version = req.body?.version;
      if (version === undefined) c.rollback('manual');
      else c.rollbackTo(String(version), 'manual');
      return c.state();
    },
  );

  for (const verb of ['promote', 'pause', 'resume'] as const) {
    api.post(`/api/routes/:route/${verb}`, { schema: { ...onRoute, response: { 200: RouteStateSchema, ...errorAnswers('ROLLGATE_UNKNOWN_ROUTE', 'ROLLGATE_CONFLICT') } } }, async (req) => {
      const c = controller(req.params.route);
      c[verb]('manual');
      return c.state();
    });
  }

  api.post('/api/rollback', { schema: { response: { 200: FullRollback, ...errorAnswers() } } }, async () => {
    const rolledBack: string[] = [];
    for (const c of rollouts.routes()) {
      if (c.state().candidate !== null && c.phase !== 'rolled_back') {
        c.rollback('manual');
        rolledBack.push(c.name);
      }
    }
    return { rolledBack, routes: rollouts.routes().map((c) => c.state()) };
  });

  api.get('/api/routes/:route/history', { schema: { ...onRoute, response: { 200: History, ...errorAnswers('ROLLGATE_UNKNOWN_ROUTE') } } }, async (req) => {
    const c = controller(req.params.route);
    return { revisions: [...c.revisions], events: [...c.events] };
  });
}
