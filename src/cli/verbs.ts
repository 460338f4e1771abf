import type { Revision, RouteEvent, RouteState } from '../rollout/types.js';
import { STRATEGIES } from '../shapes.js';
import { answersSummary } from './answers.js';
import { AdminRefusal, AdminUnreachable, routePath, type AdminClient } from './admin-client.js';
import { clientFrom, parse, parseInterval, parsePercent, parseSnapshotId, parseStrategy, UsageError } from './args.js';
import { eventsTable, revisionsTable, routeDetail, routesTable, versionCell, weightCell } from './format.js';
import { describe, printJson, type Ctx, type VerbIO } from './io.js';
import { watch } from './watch.js';

export type { VerbIO } from './io.js';
export { parsePercent } from './args.js';
export { routeDetail, routesTable } from './format.js';

/** Exit codes of every rollgate command (SPEC §7); the same numbers `serve` exits with. */
export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

/** One usage line per admin verb (SPEC §7), as `rollgate help` and usage errors print them. */
export const VERB_USAGE: Record<string, string> = {
  status: 'status [route] [--json]',
  deploy: `deploy <route> --version LABEL --url URL [--weight PERCENT] [--strategy ${STRATEGIES.join('|')}] [--data-snapshot ID] [--json]`,
  weight: 'weight <route> <percent> [--json]',
  promote: 'promote <route> [--json]',
  rollback: 'rollback [route] [--version REVISION|LABEL] [--json]',
  pause: 'pause <route> [--json]',
  resume: 'resume <route> [--json]',
  history: 'history <route> [--json]',
  watch: 'watch [--interval 1s] [--once] [--json]',
};

export const VERBS = new Set(Object.keys(VERB_USAGE));

type Verb = (verb: string, args: string[], io: VerbIO, out: (text: string) => void) => Promise<number>;

/** Prints a changed route: a one-line summary, then the route's row. */
function changed(ctx: Ctx, summary: string, state: RouteState): number {
  if (ctx.json) printJson(ctx, state);
  else ctx.out(`${summary}\n\n${routesTable([state])}`);
  return EXIT_OK;
}

const status: Verb = async (verb, args, io, out) => {
  const { values, pos } = parse(verb, args, {}, { min: 0, max: 1, names: ['route'] });
  const ctx = { io, json: values.json === true, out };
  const client = clientFrom(io.env);
  const route = pos[0];
  if (route === undefined) {
    const answer = await client.get<{ routes: RouteState[] }>('/api/routes');
    if (ctx.json) printJson(ctx, answer);
    else ctx.out(routesTable(answer.routes) + answersSummary(answer.routes));
  } else {
    const answer = await client.get<RouteState>(routePath(route));
    if (ctx.json) printJson(ctx, answer);
    else ctx.out(routeDetail(answer));
  }
  return EXIT_OK;
};

const deploy: Verb = async (verb, args, io, out) => {
  const { values, pos } = parse(
    verb,
    args,
    { version: { type: 'string' }, url: { type: 'string' }, weight: { type: 'string' }, strategy: { type: 'string' }, 'data-snapshot': { type: 'string' } },
    { min: 1, max: 1, names: ['route'] },
  );
  const route = pos[0] as string;
  if (typeof values.version !== 'string' || values.version === '') throw new UsageError('deploy needs --version LABEL');
  if (typeof values.url !== 'string' || values.url === '') throw new UsageError('deploy needs --url URL');
  const body: { version: string; url: string; weight?: number; strategy?: string; data?: { snapshot: string } } = { version: values.version, url: values.url };
  if (typeof values.weight === 'string') body.weight = parsePercent('--weight', values.weight);
  if (typeof values.strategy === 'string') body.strategy = parseStrategy(values.strategy);
  if (typeof values['data-snapshot'] === 'string') body.data = { snapshot: parseSnapshotId(values['data-snapshot']) };
  const ctx = { io, json: values.json === true, out };
  const state = await clientFrom(io.env).put<RouteState>(`${routePath(route)}/candidate`, body);
  const how = state.phase === 'shadowing' ? `in shadow (${state.mirrorPercent}% of requests copied)` : `at ${weightCell(state.weight)}`;
  return changed(ctx, `${route}: candidate ${versionCell(state.candidate)} deployed ${how}${state.candidate?.healthy === false ? ', waiting for its first passing health check' : ''}`, state);
};

const weight: Verb = async (verb, args, io, out) => {
  const { values, pos } = parse(verb, args, {}, { min: 2, max: 2, names: ['route', 'percent'] });
  const route = pos[0] as string;
  const percent = parsePercent('percent', pos[1] as string);
  const ctx = { io, json: values.json === true, out };
  const state = await clientFrom(io.env).put<RouteState>(`${routePath(route)}/weight`, { weight: percent });
  return changed(ctx, `${route}: ${weightCell(state.weight)} of traffic to candidate ${versionCell(state.candidate)}`, state);
};

const promote: Verb = async (verb, args, io, out) => {
  const { values, pos } = parse(verb, args, {}, { min: 1, max: 1, names: ['route'] });
  const route = pos[0] as string;
  const ctx = { io, json: values.json === true, out };
  const state = await clientFrom(io.env).post<RouteState>(`${routePath(route)}/promote`);
  return changed(ctx, `${route}: ${versionCell(state.stable)} is now stable`, state);
};

async function fullRollback(ctx: Ctx, client: AdminClient): Promise<number> {
  const answer = await client.post<{ rolledBack: string[]; routes: RouteState[] }>('/api/rollback');
  if (ctx.json) printJson(ctx, answer);
  else {
    const what = answer.rolledBack.length === 0 ? 'no route had a live candidate; nothing rolled back' : `rolled back: ${answer.rolledBack.join(', ')}`;
    ctx.out(`${what}\n\n${routesTable(answer.routes)}`);
  }
  return EXIT_OK;
}

const rollback: Verb = async (verb, args, io, out) => {
  const { values, pos } = parse(verb, args, { version: { type: 'string' } }, { min: 0, max: 1, names: ['route'] });
  const ctx = { io, json: values.json === true, out };
  const route = pos[0];
  const version = values.version;
  if (typeof version === 'string' && version === '') throw new UsageError('--version needs a revision number or a version label');
  const client = clientFrom(io.env);
  if (route === undefined) {
    if (version !== undefined) throw new UsageError('rollback --version needs a route');
    return fullRollback(ctx, client);
  }
  const state = await client.post<RouteState>(`${routePath(route)}/rollback`, version === undefined ? {} : { version });
  return changed(ctx, version === undefined ? `${route}: rolled back to ${versionCell(state.stable)}` : `${route}: ${versionCell(state.stable)} is now stable`, state);
};

const pauseOrResume: Verb = async (verb, args, io, out) => {
  const { values, pos } = parse(verb, args, {}, { min: 1, max: 1, names: ['route'] });
  const route = pos[0] as string;
  const ctx = { io, json: values.json === true, out };
  const state = await clientFrom(io.env).post<RouteState>(`${routePath(route)}/${verb}`);
  return changed(ctx, `${route}: ${verb === 'pause' ? 'paused' : 'resumed'} (phase ${state.phase})`, state);
};

const history: Verb = async (verb, args, io, out) => {
  const { values, pos } = parse(verb, args, {}, { min: 1, max: 1, names: ['route'] });
  const ctx = { io, json: values.json === true, out };
  const route = pos[0] as string;
  const answer = await clientFrom(io.env).get<{ revisions: Revision[]; events: RouteEvent[] }>(`${routePath(route)}/history`);
  if (ctx.json) printJson(ctx, answer);
  else ctx.out(`revisions of ${route}, newest first:\n${revisionsTable(answer.revisions)}\nevents of ${route}, newest first:\n${eventsTable(answer.events)}`);
  return EXIT_OK;
};

const watchVerb: Verb = async (verb, args, io, out) => {
  const { values } = parse(verb, args, { once: { type: 'boolean' }, interval: { type: 'string' } }, { min: 0, max: 0, names: [] });
  const intervalMs = typeof values.interval === 'string' ? parseInterval(values.interval) : 1000;
  const ctx = { io, json: values.json === true, out };
  return watch(ctx, clientFrom(io.env), intervalMs, values.once === true);
};

const RUN: Record<string, Verb> = { status, deploy, weight, promote, rollback, pause: pauseOrResume, resume: pauseOrResume, history, watch: watchVerb };

/**
 * Runs one admin verb (SPEC §7) and resolves with its exit code: 0 done, 1 refused by the gateway
 * or the gateway could not be reached (the reason on stderr), 2 a usage error (a usage line on stderr).
 */
export async function runVerb(verb: string, args: string[], io: VerbIO): Promise<number> {
  const out = (text: string): void => void io.stdout.write(text);
  try {
    const run = Object.hasOwn(RUN, verb) ? RUN[verb] : undefined;
    if (run === undefined) throw new UsageError(`unknown command '${verb}'`);
    return await run(verb, args, io, out);
  } catch (err) {
    if (err instanceof UsageError) {
      const usage = VERB_USAGE[verb];
      io.stderr.write(`rollgate: ${err.message}\nusage: rollgate ${usage ?? '<command> [options]'}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof AdminRefusal || err instanceof AdminUnreachable) {
      io.stderr.write(`rollgate: ${describe(err)}\n`);
      return EXIT_REFUSED;
    }
    throw err;
  }
}
