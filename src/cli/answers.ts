import type { AnswersState, RouteState } from '../rollout/types.js';
import type { WindowSnapshot } from '../stats/window.js';
import { dash, ms, pct } from './cells.js';
import { table } from './table.js';

/* How the CLI prints what the checks of a route's answers found (SPEC §9, route state `answers`). */

/** The failure kinds each check counts. */
const KINDS_OF_CHECK: Record<'json' | 'llm', readonly string[]> = { json: ['invalid'], llm: ['truncated', 'empty', 'stream_error'] };
const CHECK_FAILURE_KINDS = ['invalid', 'truncated', 'empty', 'stream_error'] as const;

/** A route's answers; a gateway older than them sends none. */
export function answersOf(r: RouteState): AnswersState | null {
  return r.answers ?? null;
}

/** A share as configured: 0.05 is `5%`, 0.125 is `12.5%`. */
function limit(rate: number): string {
  return `${Number((rate * 100).toFixed(2))}%`;
}

/** The check failure kinds shown: those of the checks the route runs, and any other counted. */
export function shownKinds(a: AnswersState, windows: (WindowSnapshot | null)[]): string[] {
  const run = new Set(a.checks.flatMap((c) => KINDS_OF_CHECK[c]));
  return CHECK_FAILURE_KINDS.filter((k) => run.has(k) || windows.some((w) => (w?.failuresByKind?.[k] ?? 0) > 0));
}

/** `json, llm`, and what the latency columns measure. */
export function checksLine(a: AnswersState): string {
  const checks = a.checks.length === 0 ? 'none' : a.checks.join(', ');
  return a.latency === 'ttft' ? `${checks} (latency is time to first token)` : checks;
}

/** `6 of 36 pairs disagreed (16.7%) vs max 50% at /predictions/0/label`; null without an agreement. */
export function agreementLine(a: AnswersState): string | null {
  const g = a.agreement;
  if (g === null) return null;
  const rate = g.pairs === 0 ? dash : pct(g.disagreements / g.pairs);
  return `${g.disagreements} of ${g.pairs} pairs disagreed (${rate}) vs max ${limit(g.maxDisagreement)} at ${g.pointer}`;
}

/** The latency columns' names: `P50` and `P99`, or `TTFT P50` and `TTFT P99`. */
export function latencyHeads(a: AnswersState | null): [string, string] {
  return a?.latency === 'ttft' ? ['TTFT P50', 'TTFT P99'] : ['P50', 'P99'];
}

/**
 * A version's columns from its window and the route's answers: check failures by kind, the
 * latency quantiles (named after what they measure), and on an LLM route the TPOT p50.
 */
export function answerHeads(a: AnswersState | null, kinds: string[]): string[] {
  return [...kinds.map((k) => k.toUpperCase()), ...latencyHeads(a), ...(a?.tpotMs == null ? [] : ['TPOT P50'])];
}

export function answerCells(a: AnswersState | null, kinds: string[], role: 'stable' | 'candidate', w: WindowSnapshot | null): string[] {
  const failures = kinds.map((k) => (w === null ? dash : String(w.failuresByKind?.[k as keyof WindowSnapshot['failuresByKind']] ?? 0)));
  const tpot = a?.tpotMs == null ? [] : [ms(a.tpotMs[role]?.['0.5'])];
  return [...failures, ms(w?.latencyMs?.['0.5']), ms(w?.latencyMs?.['0.99']), ...tpot];
}

/** One block per route with answers, under the routes table: its checks, agreement and a row per version. */
export function answersSummary(routes: RouteState[]): string {
  const blocks: string[] = [];
  for (const r of routes) {
    const a = answersOf(r);
    if (a === null) continue;
    const agreement = agreementLine(a);
    const head = `${r.name}: checks ${checksLine(a)}${agreement === null ? '' : `; agreement ${agreement}`}`;
    const versions: ['stable' | 'candidate', { version: string }, WindowSnapshot | null][] = [['stable', r.stable, r.windows.stable]];
    if (r.candidate !== null) versions.push(['candidate', r.candidate, r.windows.candidate]);
    const kinds = shownKinds(a, versions.map((v) => v[2]));
    const rows = versions.map(([role, v, w]) => [role, v.version, ...answerCells(a, kinds, role, w)]);
    const body = table(['ROLE', 'VERSION', ...answerHeads(a, kinds)], rows);
    blocks.push(`${head}\n${body.replace(/^/gm, '  ').replace(/ +$/, '')}`);
  }
  return blocks.length === 0 ? '' : `\nchecks of answers\n${blocks.join('')}`;
}
