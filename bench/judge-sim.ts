import { seededRng } from '../src/traffic/seeded-rng.js';
import type { RollbackRules } from '../src/config/types.js';
import { DEFAULT_ROLLBACK } from '../src/config/defaults.js';
import type { TripReason } from '../src/judge/decide.js';
import { RouteJudge } from '../src/judge/route-judge.js';
import type { Outcome } from '../src/proxy/outcome.js';

/**
 * The judge alone, on synthetic traffic: one deployment is a stable and a candidate version
 * behind a fixed split, requests arriving at a fixed rate on a simulated clock, each one failing
 * and taking time as its version's profile says. No sockets, no timers: a seed fixes the run.
 */

/** How a version behaves: failure probability and a log-normal latency. */
export interface VersionProfile {
  failureRate: number;
  medianMs: number;
  /** Standard deviation of ln(latency). */
  sigma: number;
}

export interface Scenario {
  name: string;
  description: string;
  candidate: VersionProfile;
  /** Deployments in a full run. */
  deployments: number;
  /** Simulated time the candidate behaves like stable before its own profile sets in (0: from the first request). */
  onsetMs: number;
  /** A deployment ends untripped after this many candidate requests (counted from the onset). */
  cap: number;
  /** `falseRollbacks`: at most `target` trips in all; `meanToTrip`: every deployment trips, on average within `target` candidate requests. */
  measure: 'falseRollbacks' | 'meanToTrip';
  target: number;
  /** The reasons a trip of this scenario may give (none for a healthy candidate). */
  reasons: readonly TripReason[];
  /**
   * Host stalls: every `everyMs` of simulated time the host pauses for `forMs`, and every request
   * that finishes in the pause is late by the rest of it, whichever version served it.
   */
  stalls?: { everyMs: number; forMs: number };
  /** A step schedule: the candidate's share from each time on (simulated ms from the start). */
  shares?: readonly { fromMs: number; share: number }[];
}

export interface DeploymentResult {
  tripped: boolean;
  reason: TripReason | null;
  /** Candidate requests from the onset up to and including the deciding one (or the cap); 0 for a trip before the onset. */
  candidateRequests: number;
}

export const STABLE: Readonly<VersionProfile> = Object.freeze({ failureRate: 0.01, medianMs: 40, sigma: 0.5 });
/** Requests per second of simulated time, and the candidate's share of them. */
export const ARRIVALS_PER_S = 2_000;
export const CANDIDATE_SHARE = 0.05;

const Z99 = 2.3263478740408408;
const ERROR_REASONS: readonly TripReason[] = ['error_rate', 'consecutive_failures'];

function regression(name: string, description: string, candidate: Partial<VersionProfile>, target: number, reasons: readonly TripReason[], onsetMs = 0): Scenario {
  return { name, description, candidate: { ...STABLE, ...candidate }, deployments: 500, onsetMs, cap: 50_000, measure: 'meanToTrip', target, reasons };
}

export const SCENARIOS: readonly Scenario[] = Object.freeze([
  {
    name: 'healthy',
    description: 'candidate identical to stable: 1% failures, same latency',
    candidate: { ...STABLE },
    deployments: 3_000,
    onsetMs: 0,
    cap: 20_000,
    measure: 'falseRollbacks',
    target: 3,
    reasons: [],
  },
  {
    name: 'healthy-stalls',
    description: 'candidate identical to stable; the host pauses 60 ms every 2 s (a GC pause, a noisy neighbour), delaying both versions alike',
    candidate: { ...STABLE },
    deployments: 1_000,
    onsetMs: 0,
    cap: 20_000,
    measure: 'falseRollbacks',
    target: 1,
    reasons: [],
    stalls: { everyMs: 2_000, forMs: 60 },
  },
  {
    name: 'healthy-steps-stalls',
    description: 'candidate identical to stable on a step schedule (5%, 25%, 50%, 20 s each); the host pauses 60 ms every 2 s',
    candidate: { ...STABLE },
    deployments: 1_000,
    onsetMs: 0,
    cap: 40_000,
    measure: 'falseRollbacks',
    target: 1,
    reasons: [],
    stalls: { everyMs: 2_000, forMs: 60 },
    shares: [
      { fromMs: 0, share: 0.05 },
      { fromMs: 20_000, share: 0.25 },
      { fromMs: 40_000, share: 0.5 },
    ],
  },
  regression('error-20pct', 'failures 1% -> 20%', { failureRate: 0.2 }, 35, ERROR_REASONS),
  regression('error-5pct', 'failures 1% -> 5%', { failureRate: 0.05 }, 300, ERROR_REASONS),
  regression('error-2pct', 'failures 1% -> 2%', { failureRate: 0.02 }, 3_000, ERROR_REASONS),
  regression('hard-failure', 'every candidate request fails', { failureRate: 1 }, 5, ERROR_REASONS),
  // The same failure 20 s into a healthy deployment, once stable's own failures are part of the evidence.
  regression('hard-failure-late', 'every candidate request fails from 20 s on', { failureRate: 1 }, 5, ERROR_REASONS, 20_000),
  // A regression late in a long healthy stretch: the lifetime test carries 4 minutes of good
  // evidence, the epoch test (1 minute by default) at most one, so the latter decides.
  regression('error-20pct-late', 'failures 1% -> 20% from 4 min on', { failureRate: 0.2 }, 70, ERROR_REASONS, 240_000),
  regression('latency-median-x1.5', 'the whole candidate latency distribution x1.5', { medianMs: STABLE.medianMs * 1.5 }, 100, ['latency']),
  // Same median, sigma chosen so that the candidate's p99 is twice stable's.
  regression('latency-p99-x2', 'candidate p99 x2, same median', { sigma: (Math.LN2 + Z99 * STABLE.sigma) / Z99 }, 300, ['latency']),
]);

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) throw new RangeError(`unknown scenario ${name}; one of ${SCENARIOS.map((x) => x.name).join(', ')}`);
  return s;
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

type MutableOutcome = { -readonly [K in keyof Outcome]: Outcome[K] };

/** Runs one deployment until the judge trips or the candidate has had `scenario.cap` requests. */
export function simulateDeployment(scenario: Scenario, seed: number, rules: RollbackRules = DEFAULT_ROLLBACK): DeploymentResult {
  const uniform = seededRng(seed);
  const normal = normals(uniform);
  const stepMs = 1000 / ARRIVALS_PER_S;
  const start = 1_000_000;
  const judge = new RouteJudge(rules, 'stable', 'candidate', start);
  // The judge copies what it keeps, so one record serves every request.
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
    const p = onCandidate && now >= onsetAt ? scenario.candidate : STABLE;
    const failed = uniform() < p.failureRate;
    o.role = onCandidate ? 'candidate' : 'stable';
    o.version = o.role;
    o.status = failed ? 500 : 200;
    o.failure = failed ? 'status' : 'none';
    o.latencyMs = p.medianMs * Math.exp(p.sigma * normal());
    const stall = scenario.stalls;
    if (stall !== undefined) {
      const into = (now - start) % stall.everyMs;
      if (into < stall.forMs) o.latencyMs += stall.forMs - into;
    }
    o.startedAt = now - o.latencyMs;
    if (onCandidate && now >= onsetAt) candidateRequests++;
    const trip = judge.observe(o, now);
    if (trip !== null) return { tripped: true, reason: trip.reason, candidateRequests };
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

/** Whether a scenario met its target: few enough false rollbacks, or every trip fast enough and for the right reason. */
export function passes(s: Scenario, summary: ScenarioSummary, target = s.target): boolean {
  if (s.measure === 'falseRollbacks') return summary.tripped <= target;
  if (summary.beforeOnset > 0) return false;
  const rightReasons = Object.keys(summary.reasons).every((r) => (s.reasons as readonly string[]).includes(r));
  return summary.neverTripped === 0 && summary.meanToTrip !== null && summary.meanToTrip <= target && rightReasons;
}
