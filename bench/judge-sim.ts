import { seededRng } from '../src/traffic/seeded-rng.js';
import type { RollbackRules } from '../src/config/types.js';
import { DEFAULT_ROLLBACK } from '../src/config/defaults.js';
import type { CheckReport } from '../src/checks/report.js';
import type { TripReason } from '../src/judge/decide.js';
import { RouteJudge } from '../src/judge/route-judge.js';
import type { Outcome } from '../src/proxy/outcome.js';
import { ARRIVALS_PER_S, CANDIDATE_SHARE, STABLE, type Scenario, type VersionProfile } from './judge-scenarios.js';

export * from './judge-scenarios.js';

/**
 * The judge alone, on synthetic traffic: one deployment is a stable and a candidate version
 * behind a fixed split, requests arriving at a fixed rate on a simulated clock, each one failing
 * and taking time as its version's profile says. No sockets, no timers: a seed fixes the run.
 * The scenarios are in judge-scenarios.ts.
 */

export interface DeploymentResult {
  tripped: boolean;
  reason: TripReason | null;
  /** Candidate requests from the onset up to and including the deciding one (or the cap); 0 for a trip before the onset. */
  candidateRequests: number;
}

/** Standard normal draws by Box-Muller, both halves of each pair used. */
export function normals(uniform: () => number): () => number {
  let spare = Number.NaN;
  return () => {
    if (!Number.isNaN(spare)) {
      const z = spare;
      spare = Number.NaN;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

/** A seed for deployment `index` of a run seeded `seed`: distinct streams per deployment. */
export function deploymentSeed(seed: number, scenarioName: string, index: number): number {
  let h = Math.imul(seed >>> 0, 0x9e3779b1) ^ index;
  for (let i = 0; i < scenarioName.length; i++) h = Math.imul(h ^ scenarioName.charCodeAt(i), 0x85ebca6b);
  h ^= h >>> 16;
  return Math.imul(h, 0xc2b2ae35) >>> 0;
}

export type MutableOutcome = { -readonly [K in keyof Outcome]: Outcome[K] };
export type MutableCheck = { -readonly [K in keyof CheckReport]: CheckReport[K] };

/** Output tokens of a simulated LLM answer (a truncated one has half): only its total time depends on it. */
const TOKENS = 200;
/** The detail a failed check gives (the judge keeps the latest of each kind for the trip's evidence). */
const CHECK_DETAIL = { invalid: '/answer: must be string', truncated: 'stream ended without finish_reason', empty: 'no content' } as const;
/** The example a disagreeing pair gives. */
export const EXAMPLE = Object.freeze({ stable: '{"answer":"yes"}', candidate: '{"answer":"no"}' });

/**
 * Fills `o` (and `check`, on a route with checks) with one answer drawn from profile `p`:
 * `u` decides whether it failed, and how; the normal draws give its latency. A 5xx answer has
 * no check outcome; an LLM answer's judged latency is its time to first token (an empty one
 * has none: its first byte stands in, as in the data plane), its time per output token is
 * measured unless it is empty or a 5xx.
 */
export function drawAnswer(o: MutableOutcome, check: MutableCheck | null, p: VersionProfile, u: number, normal: () => number): void {
  const status = u < p.failureRate;
  const kind = !status && p.check !== undefined && u < p.failureRate + p.check.rate ? p.check.kind : null;
  o.status = status ? 500 : 200;
  o.failure = status ? 'status' : (kind ?? 'none');
  const llm = p.llm;
  if (llm === undefined) {
    o.latencyMs = p.medianMs * Math.exp(p.sigma * normal());
    if (check !== null) {
      check.json = status ? null : (kind ?? 'pass');
      check.detail = kind === null ? null : CHECK_DETAIL[kind];
    }
    return;
  }
  const ttft = llm.ttft.medianMs * Math.exp(llm.ttft.sigma * normal());
  const tpot = llm.tpot.medianMs * Math.exp(llm.tpot.sigma * normal());
  o.streaming = !status;
  o.ttfbMs = ttft;
  o.latencyMs = status || kind === 'empty' ? ttft : ttft + (kind === 'truncated' ? TOKENS / 2 : TOKENS) * tpot;
  if (check === null) return;
  check.llm = status ? null : (kind ?? 'pass');
  check.ttftMs = status || kind === 'empty' ? Number.NaN : ttft;
  check.tpotMs = status || kind === 'empty' ? Number.NaN : tpot;
  check.detail = kind === null ? null : CHECK_DETAIL[kind];
}

/** Runs one deployment until the judge trips or the candidate has had `scenario.cap` requests. */
export function simulateDeployment(scenario: Scenario, seed: number, rules: RollbackRules = DEFAULT_ROLLBACK): DeploymentResult {
  const uniform = seededRng(seed);
  const normal = normals(uniform);
  const stepMs = 1000 / ARRIVALS_PER_S;
  const start = 1_000_000;
  const stable = scenario.stable ?? STABLE;
  const judge = new RouteJudge(rules, 'stable', 'candidate', start, undefined, scenario.signals);
  const agreement = scenario.signals?.agreement != null;
  // The judge copies what it keeps, so one record (and one check report) serves every request.
  const check: MutableCheck | null =
    scenario.signals === undefined ? null : { json: null, llm: null, ttftMs: Number.NaN, tpotMs: Number.NaN, detail: null };
  const o: MutableOutcome = {
    route: 'sim',
    role: 'stable',
    version: 'stable',
    status: 200,
    failure: 'none',
    latencyMs: 0,
    ttfbMs: Number.NaN,
    startedAt: 0,
    streaming: false,
    replayed: false,
    check,
  };
  const onsetAt = start + scenario.onsetMs;
  let candidateRequests = 0;
  let lastShare = -1;
  for (let i = 1; candidateRequests < scenario.cap; i++) {
    const now = start + i * stepMs;
    let share = CANDIDATE_SHARE;
    if (scenario.shares !== undefined) for (const step of scenario.shares) if (now - start >= step.fromMs) share = step.share;
    // The controller tells the judge when it moves the weight, as a step schedule does.
    if (share !== lastShare) judge.shareChanged(now, share * 100);
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
    const trip = judge.observe(o, now);
    if (trip !== null) return { tripped: true, reason: trip.reason, candidateRequests };
    // Agreement: every candidate answer is compared with stable's answer to the same request.
    if (!agreement || !onCandidate) continue;
    const agree = uniform() >= (p.disagreement ?? 0);
    const pairTrip = judge.observeAgreement(agree, agree ? null : EXAMPLE, now);
    if (pairTrip !== null) return { tripped: true, reason: pairTrip.reason, candidateRequests };
  }
  return { tripped: false, reason: null, candidateRequests };
}

export interface ScenarioSummary {
  deployments: number;
  tripped: number;
  /** Over the deployments that tripped after the onset; null when none did. */
  meanToTrip: number | null;
  p50: number | null;
  p90: number | null;
  neverTripped: number;
  /** Trips before the regression set in: false rollbacks. */
  beforeOnset: number;
  reasons: Record<string, number>;
}

/** Aggregates deployment results: candidate requests to the trip, and the trips by reason. */
export function summarize(results: readonly DeploymentResult[]): ScenarioSummary {
  const toTrip = results.filter((r) => r.tripped && r.candidateRequests > 0).map((r) => r.candidateRequests).sort((a, b) => a - b);
  const beforeOnset = results.filter((r) => r.tripped && r.candidateRequests === 0).length;
  const reasons: Record<string, number> = {};
  for (const r of results) if (r.reason !== null) reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
  const at = (q: number): number | null => (toTrip.length === 0 ? null : (toTrip[Math.max(0, Math.ceil(q * toTrip.length) - 1)] as number));
  return {
    deployments: results.length,
    tripped: toTrip.length + beforeOnset,
    meanToTrip: toTrip.length === 0 ? null : Math.round((toTrip.reduce((a, b) => a + b, 0) / toTrip.length) * 10) / 10,
    p50: at(0.5),
    p90: at(0.9),
    neverTripped: results.length - toTrip.length - beforeOnset,
    beforeOnset,
    reasons,
  };
}

/**
 * Whether a scenario met its target (false rollbacks allowed, or candidate requests: see
 * `targetOf` in judge-reference.ts): few enough false rollbacks, or every trip fast enough and
 * for the right reason.
 */
export function passes(s: Scenario, summary: ScenarioSummary, target: number): boolean {
  if (s.measure === 'falseRollbacks') return summary.tripped <= target;
  if (summary.beforeOnset > 0) return false;
  const rightReasons = Object.keys(summary.reasons).every((r) => (s.reasons as readonly string[]).includes(r));
  return summary.neverTripped === 0 && summary.meanToTrip !== null && summary.meanToTrip <= target && rightReasons;
}
