import type { RollbackRules } from '../src/config/types.js';
import type { Trip } from '../src/judge/decide.js';
import { FleetJudge } from '../src/judge/fleet-judge.js';
import { RouteJudge } from '../src/judge/route-judge.js';
import { seededRng } from '../src/traffic/seeded-rng.js';
import { EXAMPLE, STABLE, drawAnswer, normals, summarize, type DeploymentResult, type MutableCheck, type MutableOutcome, type Scenario } from './judge-sim.js';

/**
 * Pooled evidence, measured: the same seeded deployment judged once by one process that sees
 * all the traffic, and once spread over the workers of `listen.workers`, each judging its own
 * requests at its share of alpha while every worker's evidence deltas, taken every `intervalMs`
 * of simulated time, feed the fleet's test (FleetJudge) at the fleet's share, as the primary of
 * a gateway runs it. Both arms draw the same requests from the same seed (which worker takes a
 * request comes from a stream of its own), so the comparison is paired.
 */

export interface PooledOptions {
  /** Data-plane processes the traffic is spread over. */
  workers: number;
  /** Requests per second of simulated time, fleet-wide, and the candidate's share of them (unless the scenario has a step schedule). */
  arrivalsPerS: number;
  candidateShare: number;
  /** How often each worker hands its evidence to the fleet's test (simulated ms). */
  intervalMs: number;
  /** The fleet's share of each rule's alpha, and each worker's own. */
  fleetShare: number;
  ownShare: number;
  /** Whether one process holds the fleet's test for good (the workers' primary: all of the fleet's share) or terms spend it (half to the first). */
  soleHolder: boolean;
}

/** What serve-share.ts runs a gateway's workers with, for a given count of workers. */
export function workerDefaults(workers: number, fleetShare: number, intervalMs: number, soleHolder: boolean): PooledOptions {
  return { workers, arrivalsPerS: 1_000, candidateShare: 0.1, intervalMs, fleetShare, ownShare: Math.round(((1 - fleetShare) / workers) * 1e6) / 1e6, soleHolder };
}

export interface PooledResult extends DeploymentResult {
  /** Which test decided: a worker's own, or the fleet's; null when none did. */
  by: 'single' | 'worker' | 'fleet' | null;
}

/** The judges of one arm: fed every request (by the worker that took it) and, on the pooled arm, the fleet's schedule. */
interface Arm {
  observe(w: number, o: MutableOutcome, now: number): Trip | null;
  agreement(w: number, agree: boolean, now: number): Trip | null;
  shareChanged(now: number, percent: number): void;
  /** Evidence the workers hand over by `now`; the fleet's trip, if it caused one. */
  pool(now: number): Trip | null;
  /** Which test tripped last. */
  by: PooledResult['by'];
}

function singleArm(scenario: Scenario, rules: RollbackRules, start: number): Arm {
  const judge = new RouteJudge(rules, 'stable', 'candidate', start, undefined, scenario.signals);
  return {
    by: 'single',
    observe: (_w, o, now) => judge.observe(o, now),
    agreement: (_w, agree, now) => judge.observeAgreement(agree, agree ? null : EXAMPLE, now),
    shareChanged: (now, percent) => judge.shareChanged(now, percent),
    pool: () => null,
  };
}

function pooledArm(scenario: Scenario, rules: RollbackRules, start: number, opts: PooledOptions): Arm {
  const own = { ...rules, alpha: rules.alpha * opts.ownShare };
  const judges = Array.from({ length: opts.workers }, () => new RouteJudge(own, 'stable', 'candidate', start, undefined, scenario.signals));
  // The primary holds the fleet's lease from the first tick on: term 1, half of the fleet's
  // share (terms j spend 1 / (j (j + 1)) of it, fleet-evidence.ts).
  const fleet = new FleetJudge(rules, (rules.alpha * opts.fleetShare) / (opts.soleHolder ? 1 : 2), 'stable', 'candidate', start);
  // The workers' timers run out of phase: worker w hands over w / workers of an interval later.
  const next = judges.map((_, w) => start + ((w + 1) * opts.intervalMs) / opts.workers);
  const arm: Arm = {
    by: null,
    observe: (w, o, now) => (judges[w] as RouteJudge).observe(o, now),
    agreement: (w, agree, now) => (judges[w] as RouteJudge).observeAgreement(agree, agree ? null : EXAMPLE, now),
    shareChanged: (now, percent) => judges.forEach((j) => j.shareChanged(now, percent)),
    pool(now) {
      for (let w = 0; w < judges.length; w++) {
        while ((next[w] as number) <= now) {
          const at = next[w] as number;
          next[w] = at + opts.intervalMs;
          const delta = (judges[w] as RouteJudge).takeFleetDelta();
          const trip = delta === null ? null : fleet.add(`worker${w + 1}`, delta, at);
          if (trip !== null) return trip;
        }
      }
      return null;
    },
  };
  return arm;
}

/** One deployment on one arm: until a trip anywhere, or the candidate had `scenario.cap` requests. */
function run(scenario: Scenario, seed: number, rules: RollbackRules, opts: PooledOptions, pooled: boolean): PooledResult {
  const uniform = seededRng(seed);
  const normal = normals(uniform);
  const route = seededRng(seed ^ 0x5bd1e995);
  const stepMs = 1000 / opts.arrivalsPerS;
  const start = 1_000_000;
  const stable = scenario.stable ?? STABLE;
  const arm = pooled ? pooledArm(scenario, rules, start, opts) : singleArm(scenario, rules, start);
  const agreement = scenario.signals?.agreement != null;
  const check: MutableCheck | null =
    scenario.signals === undefined ? null : { json: null, llm: null, ttftMs: Number.NaN, tpotMs: Number.NaN, detail: null };
  const o: MutableOutcome = { route: 'sim', role: 'stable', version: 'stable', status: 200, failure: 'none', latencyMs: 0, ttfbMs: Number.NaN, startedAt: 0, streaming: false, replayed: false, check };
  const onsetAt = start + scenario.onsetMs;
  let candidateRequests = 0;
  let lastShare = -1;
  const done = (trip: Trip | null, by: PooledResult['by']): PooledResult | null =>
    trip === null ? null : { tripped: true, reason: trip.reason, candidateRequests, by };
  for (let i = 1; candidateRequests < scenario.cap; i++) {
    const now = start + i * stepMs;
    const pooledTrip = done(arm.pool(now), 'fleet');
    if (pooledTrip !== null) return pooledTrip;
    let share = opts.candidateShare;
    if (scenario.shares !== undefined) for (const step of scenario.shares) if (now - start >= step.fromMs) share = step.share;
    if (share !== lastShare) arm.shareChanged(now, share * 100);
    lastShare = share;
    const onCandidate = uniform() < share;
    const p = onCandidate && now >= onsetAt ? scenario.candidate : stable;
    o.role = onCandidate ? 'candidate' : 'stable';
    o.version = o.role;
    drawAnswer(o, check, p, uniform(), normal);
    const stall = scenario.stalls;
    if (stall !== undefined) {
      const into = (now - start) % stall.everyMs;
      if (into < stall.forMs) o.latencyMs += stall.forMs - into;
    }
    o.startedAt = now - o.latencyMs;
    if (onCandidate && now >= onsetAt) candidateRequests++;
    const w = pooled ? Math.floor(route() * opts.workers) : 0;
    const own = done(arm.observe(w, o, now), pooled ? 'worker' : 'single');
    if (own !== null) return own;
    if (!agreement || !onCandidate) continue;
    const agree = uniform() >= (p.disagreement ?? 0);
    const pair = done(arm.agreement(w, agree, now), pooled ? 'worker' : 'single');
    if (pair !== null) return pair;
  }
  return { tripped: false, reason: null, candidateRequests, by: null };
}

/** Both arms of one seeded deployment. */
export function simulatePaired(scenario: Scenario, seed: number, rules: RollbackRules, opts: PooledOptions): { single: PooledResult; pooled: PooledResult } {
  return { single: run(scenario, seed, rules, opts, false), pooled: run(scenario, seed, rules, opts, true) };
}

/** The pooled arm's mean may be at most this multiple of the single process's. */
export const POOLED_TARGET_RATIO = 1.1;

function armFields(results: readonly PooledResult[]): Record<string, unknown> {
  const sum = summarize(results);
  const by: Record<string, number> = {};
  for (const r of results) if (r.by !== null) by[r.by] = (by[r.by] ?? 0) + 1;
  return { meanToTrip: sum.meanToTrip, p50: sum.p50, p90: sum.p90, tripped: sum.tripped, neverTripped: sum.neverTripped, beforeOnset: sum.beforeOnset, reasons: sum.reasons, by };
}

/**
 * One scenario's JSON line: both arms, and for a regression the ratio of the pooled arm's mean to
 * the single process's with the paired difference (mean and standard error over the deployments
 * both arms tripped on); for a healthy one the false rollbacks of each arm, allowed alpha x deployments.
 */
export function pooledLine(s: Scenario, rules: RollbackRules, opts: PooledOptions, paired: readonly { single: PooledResult; pooled: PooledResult }[]): Record<string, unknown> {
  const single = paired.map((p) => p.single);
  const pooled = paired.map((p) => p.pooled);
  const line: Record<string, unknown> = {
    bench: 'judge',
    mode: 'pooled',
    scenario: s.name,
    description: s.description,
    alpha: rules.alpha,
    ...opts,
    deployments: paired.length,
    single: armFields(single),
    pooled: armFields(pooled),
  };
  if (s.measure === 'falseRollbacks') {
    const allowed = Math.floor(rules.alpha * paired.length + 1e-9);
    const falseSingle = single.filter((r) => r.tripped).length;
    const falsePooled = pooled.filter((r) => r.tripped).length;
    return { ...line, falseRollbacks: { single: falseSingle, pooled: falsePooled }, allowed, pass: falsePooled <= allowed && falseSingle <= allowed };
  }
  const both = paired.filter((p) => p.single.tripped && p.pooled.tripped && p.single.candidateRequests > 0 && p.pooled.candidateRequests > 0);
  const diffs = both.map((p) => p.pooled.candidateRequests - p.single.candidateRequests);
  const meanDiff = diffs.reduce((a, b) => a + b, 0) / Math.max(1, diffs.length);
  const variance = diffs.reduce((a, d) => a + (d - meanDiff) ** 2, 0) / Math.max(1, diffs.length - 1);
  const a = armFields(single).meanToTrip;
  const b = armFields(pooled).meanToTrip;
  const ratio = typeof a === 'number' && typeof b === 'number' && a > 0 ? Math.round((b / a) * 1000) / 1000 : null;
  const ok = ratio !== null && ratio <= POOLED_TARGET_RATIO;
  return {
    ...line,
    ratio,
    pairedDiff: { mean: Math.round(meanDiff * 10) / 10, se: Math.round(Math.sqrt(variance / Math.max(1, diffs.length)) * 10) / 10, n: diffs.length },
    target: POOLED_TARGET_RATIO,
    pooled_vs_single_le_1_1: ok,
    pass: ok && pooled.every((r) => r.tripped && r.candidateRequests > 0),
  };
}
