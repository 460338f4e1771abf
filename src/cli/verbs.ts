import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from '../config/duration.js';
import type { Revision, RouteEvent, RouteState } from '../rollout/types.js';
import type { WindowSnapshot } from '../stats/window.js';
import { AdminClient, AdminRefusal, AdminUnreachable, DEFAULT_ADMIN_URL, routePath } from './admin-client.js';
import { fields, table } from './table.js';

/** Exit codes of every rollgate command (SPEC §7); the same numbers `serve` exits with. */
export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

/** One usage line per admin verb (SPEC §7), as `rollgate help` and usage errors print them. */
export const VERB_USAGE: Record<string, string> = {
  status: 'status [route] [--json]',
  deploy: 'deploy <route> --version LABEL --url URL [--weight PERCENT] [--strategy canary|blueGreen|shadow] [--json]',
  weight: 'weight <route> <percent> [--json]',
  promote: 'promote <route> [--json]',
  rollback: 'rollback [route] [--version REVISION|LABEL] [--json]',
  pause: 'pause <route> [--json]',
  resume: 'resume <route> [--json]',
  history: 'history <route> [--json]',
  watch: 'watch [--interval 1s] [--once] [--json]',
};

export const VERBS = new Set(Object.keys(VERB_USAGE));

export interface VerbIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

const JSON_OPTION: Options = { json: { type: 'boolean' } };

function parse(verb: string, args: string[], options: Options = {}, positionals: { min: number; max: number; names: string[] }) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...JSON_OPTION, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { positionals: pos } = parsed;
  if (pos.length < positionals.min) throw new UsageError(`${verb} needs ${positionals.names.slice(pos.length, positionals.min).map((n) => `<${n}>`).join(' ')}`);
  if (pos.length > positionals.max) throw new UsageError(`${verb} takes ${positionals.max === 0 ? 'no arguments' : `at most ${positionals.max} argument${positionals.max === 1 ? '' : 's'}`}; got '${pos.slice(positionals.max).join(' ')}'`);
  return { values: parsed.values as Record<string, string | boolean | undefined>, pos };
}

/** A percentage: a plain decimal number from 0 to 100 with at most two decimals. */
export function parsePercent(what: string, text: string): number {
  const t = text.trim().replace(/%$/, '');
  if (!/^\d+(\.\d+)?$/.test(t)) throw new UsageError(`${what} must be a number from 0 to 100; got '${text}'`);
  const n = Number(t);
  if (!(n >= 0 && n <= 100)) throw new UsageError(`${what} must be from 0 to 100; got ${text}`);
  if (Math.abs(Math.round(n * 100) - n * 100) > 1e-6) throw new UsageError(`${what} must have at most two decimals; got ${text}`);
  return n;
}

function parseInterval(text: string): number {
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === null || !(ms >= 100)) throw new UsageError(`--interval must be a duration of at least 100ms, such as 1s or 500ms; got '${text}'`);
  return ms;
}

function clientFrom(env: NodeJS.ProcessEnv): AdminClient {
  const baseUrl = env.ROLLGATE_ADMIN_URL !== undefined && env.ROLLGATE_ADMIN_URL !== '' ? env.ROLLGATE_ADMIN_URL : DEFAULT_ADMIN_URL;
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new UsageError(`ROLLGATE_ADMIN_URL is not a URL: '${baseUrl}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`ROLLGATE_ADMIN_URL must be an http or https URL; got '${baseUrl}'`);
  return new AdminClient({ baseUrl, token: env.ROLLGATE_ADMIN_TOKEN });
}

// ---- formatting -------------------------------------------------------------------------------

const dash = '-';

function versionCell(v: { version: string; revision: number } | null): string {
  return v === null ? dash : `${v.version} (r${v.revision})`;
}

function pct(rate: number | undefined): string {
  if (rate === undefined || !Number.isFinite(rate)) return dash;
  const p = rate * 100;
  return `${p < 10 && p > 0 ? p.toFixed(2) : p.toFixed(1)}%`;
}

function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return dash;
  return value < 10 ? `${value.toFixed(1)}ms` : `${Math.round(value)}ms`;
}

function weightCell(w: number): string {
  return `${w}%`;
}

function quantile(w: WindowSnapshot | null, q: string): number | null {
  return w?.latencyMs?.[q] ?? null;
}

function statCells(w: WindowSnapshot | null): string[] {
  if (w === null) return [dash, dash, dash];
  return [String(w.count), w.count === 0 ? dash : pct(w.failureRate), ms(quantile(w, '0.99'))];
}

function reason(s: RouteState): string {
  return s.lastDecision === null ? dash : s.lastDecision.reason;
}

/** The routes table: one row per route, with both versions' window stats. */
export function routesTable(routes: RouteState[]): string {
  if (routes.length === 0) return 'no routes\n';
  return table(
    ['ROUTE', 'PHASE', 'WEIGHT', 'STABLE', 'CANDIDATE', 'S.REQ', 'S.FAIL', 'S.P99', 'C.REQ', 'C.FAIL', 'C.P99', 'LAST DECISION'],
    routes.map((r) => [
      r.name,
      r.phase,
      weightCell(r.weight),
      versionCell(r.stable),
      versionCell(r.candidate),
      ...statCells(r.windows.stable),
      ...(r.candidate === null ? [dash, dash, dash] : statCells(r.windows.candidate)),
      reason(r),
    ]),
  );
}

/** One route in detail: its versions, split, step, window stats per version and last decision. */
export function routeDetail(r: RouteState): string {
  const pairs: [string, string][] = [
    ['route', r.name],
    ['phase', r.phase],
    ['weight', `${weightCell(r.weight)} to the candidate`],
    ['stable', `${versionCell(r.stable)} ${r.stable.url}`],
    ['candidate', r.candidate === null ? dash : `${versionCell(r.candidate)} ${r.candidate.url}${r.candidate.healthy ? '' : ' (unhealthy)'}`],
  ];
  pairs.splice(2, 0, ['strategy', r.strategy + (r.mirrorPercent > 0 ? `, ${r.mirrorPercent}% of requests copied to the candidate` : '')]);
  if (r.step !== null) pairs.push(['step', `${r.step.index + 1} of ${r.step.count} at ${r.step.weight}%${r.step.bakeEndsAt === null ? '' : `, bakes until ${r.step.bakeEndsAt}`}`]);
  if (r.bake !== null) pairs.push(['bake', `${r.bake.stage}: ${Math.round(r.bake.remainingMs / 100) / 10} s left${r.bake.endsAt === null ? ' (held)' : `, until ${r.bake.endsAt}`}`]);
  if (!r.stable.healthy) pairs.push(['health', `stable ${r.stable.version} fails its health checks`]);
  pairs.push(['last decision', r.lastDecision === null ? dash : `${r.lastDecision.reason} at ${r.lastDecision.at}: ${r.lastDecision.message}`]);
  const rows: string[][] = [];
  const versionRow = (role: string, v: { version: string; revision: number }, w: WindowSnapshot | null): string[] => [
    role,
    v.version,
    `r${v.revision}`,
    w === null ? dash : String(w.count),
    w === null ? dash : `${w.rate.toFixed(1)}/s`,
    w === null || w.count === 0 ? dash : pct(w.failureRate),
    ms(quantile(w, '0.5')),
    ms(quantile(w, '0.99')),
  ];
  rows.push(versionRow('stable', r.stable, r.windows.stable));
  if (r.candidate !== null) rows.push(versionRow('candidate', r.candidate, r.windows.candidate));
  return `${fields(pairs)}\n${table(['ROLE', 'VERSION', 'REVISION', 'REQUESTS', 'RATE', 'FAIL', 'P50', 'P99'], rows)}`;
}

function revisionsTable(revisions: Revision[]): string {
  if (revisions.length === 0) return 'no revisions\n';
  const sorted = [...revisions].sort((a, b) => b.revision - a.revision);
  return table(
    ['REVISION', 'VERSION', 'STATUS', 'DEPLOYED', 'URL'],
    sorted.map((r) => [String(r.revision), r.version, r.status, r.deployedAt, r.url]),
  );
}

function eventsTable(events: RouteEvent[]): string {
  if (events.length === 0) return 'no events\n';
  const sorted = events.map((e, i) => ({ e, i })).sort((a, b) => (a.e.at === b.e.at ? a.i - b.i : a.e.at < b.e.at ? 1 : -1));
  return table(
    ['AT', 'TYPE', 'CAUSE', 'WEIGHT', 'MESSAGE'],
    sorted.map(({ e }) => [e.at, e.type, e.cause, e.weight === undefined ? dash : weightCell(e.weight), e.message]),
  );
}

// ---- verbs ------------------------------------------------------------------------------------

interface Ctx {
  io: VerbIO;
  json: boolean;
  out: (text: string) => void;
}

function printJson(ctx: Ctx, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}

async function status(ctx: Ctx, client: AdminClient, route: string | undefined): Promise<number> {
  if (route === undefined) {
    const answer = await client.get<{ routes: RouteState[] }>('/api/routes');
    if (ctx.json) printJson(ctx, answer);
    else ctx.out(routesTable(answer.routes));
  } else {
    const answer = await client.get<RouteState>(routePath(route));
    if (ctx.json) printJson(ctx, answer);
    else ctx.out(routeDetail(answer));
  }
  return EXIT_OK;
}

/** Prints a changed route: a one-line summary, then the route's row. */
function changed(ctx: Ctx, summary: string, state: RouteState): number {
  if (ctx.json) printJson(ctx, state);
  else ctx.out(`${summary}\n\n${routesTable([state])}`);
  return EXIT_OK;
}

async function history(ctx: Ctx, client: AdminClient, route: string): Promise<number> {
  const answer = await client.get<{ revisions: Revision[]; events: RouteEvent[] }>(`${routePath(route)}/history`);
  if (ctx.json) printJson(ctx, answer);
  else ctx.out(`revisions of ${route}, newest first:\n${revisionsTable(answer.revisions)}\nevents of ${route}, newest first:\n${eventsTable(answer.events)}`);
  return EXIT_OK;
}

function frame(routes: RouteState[], at: Date): string {
  const header = `rollgate watch  ${at.toISOString()}  (${routes.length} route${routes.length === 1 ? '' : 's'})`;
  if (routes.length === 0) return `${header}\nno routes\n`;
  const rows: string[][] = [];
  for (const r of routes) {
    const row = (role: string, v: { version: string; revision: number }, weight: number, w: WindowSnapshot | null): string[] => [
      r.name,
      r.phase,
      role,
      versionCell(v),
      weightCell(weight),
      w === null ? dash : String(w.count),
      w === null ? dash : `${w.rate.toFixed(1)}/s`,
      w === null || w.count === 0 ? dash : pct(w.failureRate),
      ms(quantile(w, '0.99')),
    ];
    rows.push(row('stable', r.stable, 100 - r.weight, r.windows.stable));
    if (r.candidate !== null) rows.push(row('candidate', r.candidate, r.weight, r.windows.candidate));
  }
  return `${header}\n${table(['ROUTE', 'PHASE', 'ROLE', 'VERSION', 'SHARE', 'REQUESTS', 'RATE', 'FAIL', 'P99'], rows)}`;
}

async function watch(ctx: Ctx, client: AdminClient, intervalMs: number, once: boolean): Promise<number> {
  const tty = ctx.io.stdout.isTTY === true && !ctx.json;
  let previousLines = 0;
  let stopped = false;
  let wake: (() => void) | null = null;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    let first = true;
    while (!stopped) {
      let text: string;
      try {
        const answer = await client.get<{ routes: RouteState[] }>('/api/routes');
        text = ctx.json ? `${JSON.stringify(answer)}\n` : frame(answer.routes, new Date());
      } catch (err) {
        // The first frame decides the exit code; after that, say what went wrong and keep polling.
        if (first || once) throw err;
        if (!(err instanceof AdminRefusal || err instanceof AdminUnreachable)) throw err;
        text = ctx.json ? '' : `rollgate watch  ${new Date().toISOString()}\n${describe(err)}\n`;
        if (ctx.json) ctx.io.stderr.write(`rollgate: ${describe(err)}\n`);
      }
      first = false;
      if (stopped) break;
      if (tty) {
        // Cut lines to the terminal width, so that a wrapped line cannot throw off the cursor-up count.
        const columns = ctx.io.stdout.columns;
        if (columns !== undefined && columns > 0) text = text.split('\n').map((l) => (l.length > columns ? l.slice(0, columns) : l)).join('\n');
        if (previousLines > 0) ctx.out(`\x1b[${previousLines}A\x1b[0J`);
      }
      ctx.out(tty || ctx.json ? text : `${text}\n`);
      previousLines = text.split('\n').length - 1;
      if (once) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return EXIT_OK;
}

function describe(err: AdminRefusal | AdminUnreachable): string {
  return err instanceof AdminRefusal ? `${err.message} (${err.code}, HTTP ${err.status})` : err.message;
}

async function dispatch(verb: string, args: string[], io: VerbIO, out: (text: string) => void): Promise<number> {
  switch (verb) {
    case 'status': {
      const { values, pos } = parse(verb, args, {}, { min: 0, max: 1, names: ['route'] });
      const ctx = { io, json: values.json === true, out };
      return status(ctx, clientFrom(io.env), pos[0]);
    }
    case 'deploy': {
      const { values, pos } = parse(
        verb,
        args,
        { version: { type: 'string' }, url: { type: 'string' }, weight: { type: 'string' }, strategy: { type: 'string' } },
        { min: 1, max: 1, names: ['route'] },
      );
      const route = pos[0] as string;
      if (typeof values.version !== 'string' || values.version === '') throw new UsageError('deploy needs --version LABEL');
      if (typeof values.url !== 'string' || values.url === '') throw new UsageError('deploy needs --url URL');
      const body: { version: string; url: string; weight?: number; strategy?: string } = { version: values.version, url: values.url };
      if (typeof values.weight === 'string') body.weight = parsePercent('--weight', values.weight);
      if (typeof values.strategy === 'string') {
        if (!['canary', 'blueGreen', 'shadow'].includes(values.strategy)) throw new UsageError('--strategy must be canary, blueGreen or shadow');
        body.strategy = values.strategy;
      }
      const ctx = { io, json: values.json === true, out };
      const state = await clientFrom(io.env).put<RouteState>(`${routePath(route)}/candidate`, body);
      const how = state.phase === 'shadowing' ? `in shadow (${state.mirrorPercent}% of requests copied)` : `at ${weightCell(state.weight)}`;
      return changed(ctx, `${route}: candidate ${versionCell(state.candidate)} deployed ${how}${state.candidate?.healthy === false ? ', waiting for its first passing health check' : ''}`, state);
    }
    case 'weight': {
      const { values, pos } = parse(verb, args, {}, { min: 2, max: 2, names: ['route', 'percent'] });
      const route = pos[0] as string;
      const weight = parsePercent('percent', pos[1] as string);
      const ctx = { io, json: values.json === true, out };
      const state = await clientFrom(io.env).put<RouteState>(`${routePath(route)}/weight`, { weight });
      return changed(ctx, `${route}: ${weightCell(state.weight)} of traffic to candidate ${versionCell(state.candidate)}`, state);
    }
    case 'promote': {
      const { values, pos } = parse(verb, args, {}, { min: 1, max: 1, names: ['route'] });
      const route = pos[0] as string;
      const ctx = { io, json: values.json === true, out };
      const state = await clientFrom(io.env).post<RouteState>(`${routePath(route)}/promote`);
      return changed(ctx, `${route}: ${versionCell(state.stable)} is now stable`, state);
    }
    case 'rollback': {
      const { values, pos } = parse(verb, args, { version: { type: 'string' } }, { min: 0, max: 1, names: ['route'] });
      const ctx = { io, json: values.json === true, out };
      const route = pos[0];
      const version = values.version;
      if (typeof version === 'string' && version === '') throw new UsageError('--version needs a revision number or a version label');
      const client = clientFrom(io.env);
      if (route === undefined) {
        if (version !== undefined) throw new UsageError('rollback --version needs a route');
        const answer = await client.post<{ rolledBack: string[]; routes: RouteState[] }>('/api/rollback');
        if (ctx.json) printJson(ctx, answer);
        else
          out(
            `${answer.rolledBack.length === 0 ? 'no route had a live candidate; nothing rolled back' : `rolled back: ${answer.rolledBack.join(', ')}`}\n\n${routesTable(answer.routes)}`,
          );
        return EXIT_OK;
      }
      const state = await client.post<RouteState>(`${routePath(route)}/rollback`, version === undefined ? {} : { version });
      return changed(ctx, version === undefined ? `${route}: rolled back to ${versionCell(state.stable)}` : `${route}: ${versionCell(state.stable)} is now stable`, state);
    }
    case 'pause':
    case 'resume': {
      const { values, pos } = parse(verb, args, {}, { min: 1, max: 1, names: ['route'] });
      const route = pos[0] as string;
      const ctx = { io, json: values.json === true, out };
      const state = await clientFrom(io.env).post<RouteState>(`${routePath(route)}/${verb}`);
      return changed(ctx, `${route}: ${verb === 'pause' ? 'paused' : 'resumed'} (phase ${state.phase})`, state);
    }
    case 'history': {
      const { values, pos } = parse(verb, args, {}, { min: 1, max: 1, names: ['route'] });
      const ctx = { io, json: values.json === true, out };
      return history(ctx, clientFrom(io.env), pos[0] as string);
    }
    case 'watch': {
      const { values } = parse(verb, args, { once: { type: 'boolean' }, interval: { type: 'string' } }, { min: 0, max: 0, names: [] });
      const intervalMs = typeof values.interval === 'string' ? parseInterval(values.interval) : 1000;
      const ctx = { io, json: values.json === true, out };
      return watch(ctx, clientFrom(io.env), intervalMs, values.once === true);
    }
    default:
      throw new UsageError(`unknown command '${verb}'`);
  }
}

/**
 * Runs one admin verb (SPEC §7) and resolves with its exit code: 0 done, 1 refused by the gateway
 * or the gateway could not be reached (the reason on stderr), 2 a usage error (a usage line on stderr).
 */
export async function runVerb(verb: string, args: string[], io: VerbIO): Promise<number> {
  const out = (text: string): void => void io.stdout.write(text);
  try {
    return await dispatch(verb, args, io, out);
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
