import type { Revision, RouteEvent, RouteState } from '../rollout/types.js';
import type { WindowSnapshot } from '../stats/window.js';
import { agreementLine, answerCells, answerHeads, answersOf, checksLine, shownKinds } from './answers.js';
import { dash, ms, pct } from './cells.js';
import { fields, table } from './table.js';

/* How the admin verbs print the admin API's answers as tables (without --json). */

export function versionCell(v: { version: string; revision: number } | null): string {
  return v === null ? dash : `${v.version} (r${v.revision})`;
}

export function weightCell(w: number): string {
  return `${w}%`;
}

function quantile(w: WindowSnapshot | null, q: string): number | null {
  return w?.latencyMs?.[q] ?? null;
}

/** A version's requests, failure rate and p99 (marked `ttft` when that is what the route's latency measures). */
function statCells(w: WindowSnapshot | null, ttft: boolean): string[] {
  if (w === null) return [dash, dash, dash];
  const p99 = ms(quantile(w, '0.99'));
  return [String(w.count), w.count === 0 ? dash : pct(w.failureRate), ttft && p99 !== dash ? `${p99} ttft` : p99];
}

function reason(s: RouteState): string {
  return s.lastDecision === null ? dash : s.lastDecision.reason;
}

/** The routes table: one row per route, with both versions' window stats. */
export function routesTable(routes: RouteState[]): string {
  if (routes.length === 0) return 'no routes\n';
  return table(
    ['ROUTE', 'PHASE', 'WEIGHT', 'STABLE', 'CANDIDATE', 'S.REQ', 'S.FAIL', 'S.P99', 'C.REQ', 'C.FAIL', 'C.P99', 'LAST DECISION'],
    routes.map((r) => {
      const ttft = answersOf(r)?.latency === 'ttft';
      return [
        r.name,
        r.phase,
        weightCell(r.weight),
        versionCell(r.stable),
        versionCell(r.candidate),
        ...statCells(r.windows.stable, ttft),
        ...(r.candidate === null ? [dash, dash, dash] : statCells(r.windows.candidate, ttft)),
        reason(r),
      ];
    }),
  );
}

const dataCell = (d: { snapshot: string } | null | undefined): string => (d === null || d === undefined ? '' : `, data ${d.snapshot}`);

/** One route in detail: its versions, split, step, window stats per version and last decision. */
export function routeDetail(r: RouteState): string {
  const pairs: [string, string][] = [
    ['route', r.name],
    ['phase', r.phase],
    ['weight', `${weightCell(r.weight)} to the candidate`],
    ['stable', `${versionCell(r.stable)} ${r.stable.url}${dataCell(r.stable.data)}`],
    ['candidate', r.candidate === null ? dash : `${versionCell(r.candidate)} ${r.candidate.url}${dataCell(r.candidate.data)}${r.candidate.healthy ? '' : ' (unhealthy)'}`],
  ];
  pairs.splice(2, 0, ['strategy', r.strategy + (r.mirrorPercent > 0 ? `, ${r.mirrorPercent}% of requests copied to the candidate` : '')]);
  if (r.step !== null) pairs.push(['step', `${r.step.index + 1} of ${r.step.count} at ${r.step.weight}%${r.step.bakeEndsAt === null ? '' : `, bakes until ${r.step.bakeEndsAt}`}`]);
  if (r.bake !== null) pairs.push(['bake', `${r.bake.stage}: ${Math.round(r.bake.remainingMs / 100) / 10} s left${r.bake.endsAt === null ? ' (held)' : `, until ${r.bake.endsAt}`}`]);
  if (!r.stable.healthy) pairs.push(['health', `stable ${r.stable.version} fails its health checks`]);
  const restore = r.data?.restore ?? null;
  if (restore !== null) pairs.push(['data restore', `${restore.state} after ${restore.attempts} attempt${restore.attempts === 1 ? '' : 's'}${restore.lastError === null ? '' : ` (last error: ${restore.lastError})`}`]);
  const answers = answersOf(r);
  if (answers !== null) pairs.push(['checks', checksLine(answers)]);
  const agreement = answers === null ? null : agreementLine(answers);
  if (agreement !== null) pairs.push(['agreement', agreement]);
  pairs.push(['last decision', r.lastDecision === null ? dash : `${r.lastDecision.reason} at ${r.lastDecision.at}: ${r.lastDecision.message}`]);
  const rows: string[][] = [];
  const kinds = answers === null ? [] : shownKinds(answers, [r.windows.stable, r.candidate === null ? null : r.windows.candidate]);
  const versionRow = (role: 'stable' | 'candidate', v: { version: string; revision: number }, w: WindowSnapshot | null): string[] => [
    role,
    v.version,
    `r${v.revision}`,
    w === null ? dash : String(w.count),
    w === null ? dash : `${w.rate.toFixed(1)}/s`,
    w === null || w.count === 0 ? dash : pct(w.failureRate),
    ...answerCells(answers, kinds, role, w),
  ];
  rows.push(versionRow('stable', r.stable, r.windows.stable));
  if (r.candidate !== null) rows.push(versionRow('candidate', r.candidate, r.windows.candidate));
  return `${fields(pairs)}\n${table(['ROLE', 'VERSION', 'REVISION', 'REQUESTS', 'RATE', 'FAIL', ...answerHeads(answers, kinds)], rows)}`;
}

export function revisionsTable(revisions: Revision[]): string {
  if (revisions.length === 0) return 'no revisions\n';
  const sorted = [...revisions].sort((a, b) => b.revision - a.revision);
  return table(
    ['REVISION', 'VERSION', 'STATUS', 'DEPLOYED', 'DATA', 'URL'],
    sorted.map((r) => [String(r.revision), r.version, r.status, r.deployedAt, r.data?.snapshot ?? dash, r.url]),
  );
}

export function eventsTable(events: RouteEvent[]): string {
  if (events.length === 0) return 'no events\n';
  const sorted = events.map((e, i) => ({ e, i })).sort((a, b) => (a.e.at === b.e.at ? a.i - b.i : a.e.at < b.e.at ? 1 : -1));
  return table(
    ['AT', 'TYPE', 'CAUSE', 'WEIGHT', 'MESSAGE'],
    sorted.map(({ e }) => [e.at, e.type, e.cause, e.weight === undefined ? dash : weightCell(e.weight), e.message]),
  );
}

/** One frame of `rollgate watch`: a row per version of every route. */
export function frame(routes: RouteState[], at: Date): string {
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
