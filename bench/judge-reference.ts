import type { RollbackRules } from '../src/config/types.js';
import { NO_SIGNALS, ruleAlphas } from '../src/judge/alpha.js';
import { CANDIDATE_SHARE, STABLE, type Scenario, type VersionProfile } from './judge-scenarios.js';
import { fixedRateReference, slowRates, stableReference, type LogNormal } from './sprt.js';

/**
 * What each regression scenario is measured against: for every test of the judge that the
 * regression gives something to find, the fewest candidate requests (or pairs) Wald's SPRT
 * would need at that test's alpha (see sprt.ts), from the scenario's profiles rather than
 * from measurements. A scenario's reference is that of the test that can trip fastest.
 */

/** The mean to trip may be this multiple of the reference: tests against stable, and against a fixed rate. */
export const TARGET_RATIO = { stable: 2, fixed: 1.5 } as const;

export interface ReferenceTest {
  /** The judge's test it stands for, e.g. `errorRate relative (invalid)`, `latency p50`, `agreement`. */
  test: string;
  against: 'stable' | 'fixed';
  alpha: number;
  /** Candidate requests (pairs for the agreement) the judge is held to: for a test against stable, the larger of the two below. */
  requests: number;
  /** Against stable: the SPRT that knows stable's rate; and the one on which version each event came from (sprt.ts). */
  knownStable: number | null;
  events: number | null;
  used: 'knownStable' | 'events' | 'fixedRate';
}

/** The failure kinds a profile has, with their rates: 5xx (`status`) and its check kind. */
function failureRates(p: VersionProfile): Map<string, number> {
  const rates = new Map<string, number>([['status', p.failureRate]]);
  if (p.check !== undefined) rates.set(p.check.kind, p.check.rate);
  return rates;
}

function totalFailureRate(p: VersionProfile): number {
  return p.failureRate + (p.check?.rate ?? 0);
}

function againstStable(test: string, alpha: number, p1: number, ps: number, tolerance: number): ReferenceTest {
  const r = stableReference(alpha, p1, ps, tolerance, CANDIDATE_SHARE);
  return { test, against: 'stable', alpha, requests: r.requests, knownStable: r.knownStable, events: r.events, used: r.used };
}

function againstFixed(test: string, alpha: number, p1: number, p0: number): ReferenceTest {
  return { test, against: 'fixed', alpha, requests: fixedRateReference(alpha, p1, p0), knownStable: null, events: null, used: 'fixedRate' };
}

/**
 * The references of every test of the judge that can trip on the scenario (a finite one).
 * Failure rules: the relative test per failure kind, stable's and the candidate's rates of that
 * kind (each check kind has a test of its own in the judge, at its share of the relative alpha),
 * and with check failures the test of all failures pooled too; the absolute test on the candidate's
 * rate of all kinds against `maxAbsolute`. Latency: each
 * quantile's test, on time to first token and time per output token on an LLM route (at a
 * ratio of 1, the null of a latency test). The agreement: disagreement against `maxDisagreement`.
 */
export function referenceTests(s: Scenario, rules: RollbackRules): ReferenceTest[] {
  const stable = s.stable ?? STABLE;
  const candidate = s.candidate;
  const signals = s.signals ?? NO_SIGNALS;
  const alphas = ruleAlphas(rules, rules.alpha, signals);
  const out: ReferenceTest[] = [];
  const stableRates = failureRates(stable);
  for (const [kind, p1] of failureRates(candidate)) {
    // A check kind has a relative test of its own, at its share of the relative alpha; 5xx only the pooled test.
    const alpha = kind === 'status' ? alphas.errorRelative : alphas.kind;
    out.push(againstStable(`errorRate relative (${kind})`, alpha, p1, stableRates.get(kind) ?? 0, rules.errorRate.tolerance));
  }
  // What the judge's relative test itself sees when there are check failures: every kind pooled.
  if (stable.check !== undefined || candidate.check !== undefined) {
    out.push(againstStable('errorRate relative (all kinds)', alphas.errorRelative, totalFailureRate(candidate), totalFailureRate(stable), rules.errorRate.tolerance));
  }
  out.push(againstFixed('errorRate absolute', alphas.errorAbsolute, totalFailureRate(candidate), rules.errorRate.maxAbsolute));
  const { tolerance, minDeltaMs, quantiles } = rules.latency;
  const latency = (name: string, alpha: number, a: LogNormal, b: LogNormal): void => {
    for (const q of quantiles) {
      const { ps, p1 } = slowRates(a, b, q, tolerance, minDeltaMs);
      out.push(againstStable(`${name} p${Math.round(q * 100)}`, alpha, p1, ps, 1));
    }
  };
  if (stable.llm !== undefined && candidate.llm !== undefined && signals.llm) {
    latency('ttft', alphas.latency, stable.llm.ttft, candidate.llm.ttft);
    latency('tpot', alphas.tpot, stable.llm.tpot, candidate.llm.tpot);
  } else {
    latency('latency', alphas.latency, stable, candidate);
  }
  if (signals.agreement !== null) {
    out.push(againstFixed('agreement', alphas.agreement, candidate.disagreement ?? 0, signals.agreement.maxDisagreement));
  }
  return out.filter((t) => Number.isFinite(t.requests));
}

/** The reference of the test that can trip fastest; null when none can (a healthy candidate). */
export function scenarioReference(s: Scenario, rules: RollbackRules): ReferenceTest | null {
  let best: ReferenceTest | null = null;
  for (const t of referenceTests(s, rules)) if (best === null || t.requests < best.requests) best = t;
  return best;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * The scenario's target: false rollbacks allowed (healthy), or the most candidate requests
 * the mean to trip may take: `TARGET_RATIO` x the reference, or the scenario's own number.
 */
export function targetOf(s: Scenario, rules: RollbackRules): number {
  if (typeof s.target === 'number') return s.target;
  const ref = scenarioReference(s, rules);
  if (ref === null) throw new RangeError(`${s.name}: no test of the judge can trip on it, so it has no SPRT reference`);
  return round1(TARGET_RATIO[ref.against] * ref.requests);
}

/** The reference figures of a regression scenario's JSON line, beside its measured mean. */
export function referenceFields(s: Scenario, rules: RollbackRules, meanToTrip: number | null): Record<string, unknown> {
  const ref = scenarioReference(s, rules);
  if (ref === null) return {};
  const ratio = (x: number | null): number | null => (x === null || meanToTrip === null ? null : round2(meanToTrip / x));
  const fields: Record<string, unknown> = {
    sprtTest: ref.test,
    sprtAgainst: ref.against === 'stable' ? 'stable' : 'fixed rate',
    reference: ref.used,
    sprt: round1(ref.requests),
    ratio: ratio(ref.requests),
  };
  if (ref.knownStable !== null && ref.events !== null) {
    Object.assign(fields, { sprtKnownStable: round1(ref.knownStable), ratioKnownStable: ratio(ref.knownStable), sprtEvents: round1(ref.events), ratioEvents: ratio(ref.events) });
  }
  fields.sprtByTest = Object.fromEntries(referenceTests(s, rules).map((t) => [t.test, round1(t.requests)]));
  fields.targetRatio = typeof s.target === 'number' ? null : TARGET_RATIO[ref.against];
  return fields;
}
