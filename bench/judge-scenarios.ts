import type { JudgeSignals } from '../src/judge/alpha.js';
import type { TripReason } from '../src/judge/decide.js';
import type { LogNormal } from './sprt.js';

/** The check failure kinds a simulated answer can have (besides a 5xx). */
export type SimCheckKind = 'invalid' | 'truncated' | 'empty';

/** How a version behaves: failure probability and a log-normal latency. */
export interface VersionProfile {
  /** Probability of a 5xx answer (`failure: 'status'`). */
  failureRate: number;
  medianMs: number;
  /** Standard deviation of ln(latency). */
  sigma: number;
  /** 2xx answers that fail the route's checks, all of one kind: drawn apart from the 5xx ones (an answer is one or the other). */
  check?: { kind: SimCheckKind; rate: number };
  /**
   * LLM streams (`checks.llm`): time to first token and the mean time per output token of each
   * answer, log-normal both; the judged latency is then time to first token, and
   * `medianMs`/`sigma` are unused.
   */
  llm?: { ttft: LogNormal; tpot: LogNormal };
  /** Agreement routes: how often a pair of this version's answer and stable's to one request disagree. */
  disagreement?: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** Stable's profile (STABLE unless set); the candidate behaves like it until the onset. */
  stable?: VersionProfile;
  candidate: VersionProfile;
  /** What the route judges besides failures and latency (none unless set): the judge is built with it. */
  signals?: JudgeSignals;
  /** Deployments in a full run. */
  deployments: number;
  /** Simulated time the candidate behaves like stable before its own profile sets in (0: from the first request). */
  onsetMs: number;
  /** A deployment ends untripped after this many candidate requests (counted from the onset). */
  cap: number;
  /** `falseRollbacks`: at most `target` trips in all; `meanToTrip`: every deployment trips, on average within the target. */
  measure: 'falseRollbacks' | 'meanToTrip';
  /**
   * `falseRollbacks`: the trips allowed in a full run. `meanToTrip`: `'sprt'`, a multiple of the
   * SPRT reference (see judge-reference.ts), or a number of candidate requests where a ratio
   * means nothing (a hard failure, decided by the latch).
   */
  target: number | 'sprt';
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

export const STABLE: Readonly<VersionProfile> = Object.freeze({ failureRate: 0.01, medianMs: 40, sigma: 0.5 });
/** Stable on an LLM route: 1% 5xx, time to first token 300 ms median, 25 ms per output token. */
export const STABLE_LLM: Readonly<VersionProfile> = Object.freeze({
  ...STABLE,
  llm: Object.freeze({ ttft: Object.freeze({ medianMs: 300, sigma: 0.5 }), tpot: Object.freeze({ medianMs: 25, sigma: 0.3 }) }),
});
/** Stable on a route with an agreement: a candidate that behaves like it disagrees on 3% of pairs (sampling, ties). */
export const STABLE_AGREEING: Readonly<VersionProfile> = Object.freeze({ ...STABLE, disagreement: 0.03 });

/** A route with `checks.json` only, one with `checks.llm`, one with an agreement (`maxDisagreement` 5%). */
export const JSON_CHECKS: JudgeSignals = Object.freeze({ json: true, llm: false, agreement: null });
export const LLM_CHECKS: JudgeSignals = Object.freeze({ json: false, llm: true, agreement: null });
export const AGREEMENT: JudgeSignals = Object.freeze({ json: false, llm: false, agreement: Object.freeze({ maxDisagreement: 0.05 }) });

/** Requests per second of simulated time, and the candidate's share of them. */
export const ARRIVALS_PER_S = 2_000;
export const CANDIDATE_SHARE = 0.05;

const Z99 = 2.3263478740408408;
const ERROR_REASONS: readonly TripReason[] = ['error_rate', 'consecutive_failures'];

function regression(
  name: string,
  description: string,
  candidate: Partial<VersionProfile>,
  reasons: readonly TripReason[],
  more: Partial<Scenario> = {},
): Scenario {
  const stable = more.stable ?? STABLE;
  return { name, description, candidate: { ...stable, ...candidate }, deployments: 500, onsetMs: 0, cap: 50_000, measure: 'meanToTrip', target: 'sprt', reasons, ...more };
}

function healthy(name: string, description: string, more: Partial<Scenario> = {}): Scenario {
  const stable = more.stable ?? STABLE;
  return { name, description, candidate: { ...stable }, deployments: 3_000, onsetMs: 0, cap: 20_000, measure: 'falseRollbacks', target: 3, reasons: [], ...more };
}

const LLM = STABLE_LLM.llm as NonNullable<VersionProfile['llm']>;
const HARD_FAILURE = 'target: the consecutive-failures latch (5 in a row), not a ratio: Wald\'s approximation means little at 2 to 4 requests';

export const SCENARIOS: readonly Scenario[] = Object.freeze([
  healthy('healthy', 'candidate identical to stable: 1% failures, same latency'),
  healthy('healthy-stalls', 'candidate identical to stable; the host pauses 60 ms every 2 s (a GC pause, a noisy neighbour), delaying both versions alike', {
    deployments: 1_000,
    target: 1,
    stalls: { everyMs: 2_000, forMs: 60 },
  }),
  healthy('healthy-steps-stalls', 'candidate identical to stable on a step schedule (5%, 25%, 50%, 20 s each); the host pauses 60 ms every 2 s', {
    deployments: 1_000,
    cap: 40_000,
    target: 1,
    stalls: { everyMs: 2_000, forMs: 60 },
    shares: [
      { fromMs: 0, share: 0.05 },
      { fromMs: 20_000, share: 0.25 },
      { fromMs: 40_000, share: 0.5 },
    ],
  }),
  healthy('healthy-invalid', 'JSON checks; both versions 1% 5xx and 0.5% answers failing the schema', {
    stable: { ...STABLE, check: { kind: 'invalid', rate: 0.005 } },
    signals: JSON_CHECKS,
  }),
  healthy('healthy-llm', 'LLM streams; both versions 1% 5xx, time to first token 300 ms and per output token 25 ms (medians) alike', { stable: STABLE_LLM, signals: LLM_CHECKS }),
  healthy('healthy-agreement', 'agreement (maxDisagreement 5%); the candidate disagrees with stable on 3% of pairs', { stable: STABLE_AGREEING, signals: AGREEMENT }),
  // The error scenarios are open to the relative test and the absolute one (maxAbsolute 5%):
  // their reference is that of the one that can trip faster.
  regression('error-20pct', 'failures 1% -> 20%', { failureRate: 0.2 }, ERROR_REASONS),
  regression('error-5pct', 'failures 1% -> 5%', { failureRate: 0.05 }, ERROR_REASONS),
  regression('error-2pct', 'failures 1% -> 2%', { failureRate: 0.02 }, ERROR_REASONS),
  regression('hard-failure', `every candidate request fails; ${HARD_FAILURE}`, { failureRate: 1 }, ERROR_REASONS, { target: 5 }),
  // The same failure 20 s into a healthy deployment, once stable's own failures are part of the evidence.
  regression('hard-failure-late', `every candidate request fails from 20 s on; ${HARD_FAILURE}`, { failureRate: 1 }, ERROR_REASONS, { onsetMs: 20_000, target: 5 }),
  // A regression late in a long healthy stretch: the lifetime test carries 4 minutes of good
  // evidence, the epoch test (1 minute by default) at most one, so the latter decides.
  regression('error-20pct-late', 'failures 1% -> 20% from 4 min on', { failureRate: 0.2 }, ERROR_REASONS, { onsetMs: 240_000 }),
  regression('latency-median-x1.5', 'the whole candidate latency distribution x1.5', { medianMs: STABLE.medianMs * 1.5 }, ['latency']),
  // Same median, sigma chosen so that the candidate's p99 is twice stable's.
  regression('latency-p99-x2', 'candidate p99 x2, same median', { sigma: (Math.LN2 + Z99 * STABLE.sigma) / Z99 }, ['latency']),
  // Check failures: stable keeps its 1% 5xx and has none of the kind; the candidate's failures
  // are all of the kind (no 5xx), so that a trip is named after it. Its failure rate, all kinds
  // counted as the failure rules count them, goes 1% -> 2% (invalid) or 1% -> 5%.
  regression('invalid-2pct', 'JSON checks; answers failing the schema 0% -> 2% (stable 1% 5xx, the candidate none)', { failureRate: 0, check: { kind: 'invalid', rate: 0.02 } }, ['invalid'], {
    signals: JSON_CHECKS,
  }),
  regression('empty-5pct', 'LLM streams; empty completions 0% -> 5% (stable 1% 5xx, the candidate none)', { failureRate: 0, check: { kind: 'empty', rate: 0.05 } }, ['empty'], {
    stable: STABLE_LLM,
    signals: LLM_CHECKS,
  }),
  regression('truncated-5pct', 'LLM streams; truncated streams 0% -> 5% (stable 1% 5xx, the candidate none)', { failureRate: 0, check: { kind: 'truncated', rate: 0.05 } }, ['truncated'], {
    stable: STABLE_LLM,
    signals: LLM_CHECKS,
  }),
  regression('ttft-x1.5', 'LLM streams; the whole time-to-first-token distribution x1.5', { llm: { ...LLM, ttft: { ...LLM.ttft, medianMs: LLM.ttft.medianMs * 1.5 } } }, ['ttft'], {
    stable: STABLE_LLM,
    signals: LLM_CHECKS,
  }),
  regression('tpot-x1.5', 'LLM streams; the whole time-per-output-token distribution x1.5', { llm: { ...LLM, tpot: { ...LLM.tpot, medianMs: LLM.tpot.medianMs * 1.5 } } }, ['tpot'], {
    stable: STABLE_LLM,
    signals: LLM_CHECKS,
  }),
  regression('disagreement-10pct', 'agreement (maxDisagreement 5%); disagreeing pairs 3% -> 10%, one pair per candidate request', { disagreement: 0.1 }, ['disagreement'], {
    stable: STABLE_AGREEING,
    signals: AGREEMENT,
  }),
]);

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) throw new RangeError(`unknown scenario ${name}; one of ${SCENARIOS.map((x) => x.name).join(', ')}`);
  return s;
}
