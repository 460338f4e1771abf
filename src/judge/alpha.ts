import type { RollbackRules } from '../config/types.js';
import { ConditionalTest, RateAboveTest, SpendingTests } from './sequential.js';

/** How alpha is shared between the rules (Bonferroni): they sum to 1. */
export const ALPHA_SHARES = { errorRelative: 0.45, errorAbsolute: 0.05, latency: 0.5 } as const;
/** Epoch tests restart this many times per window. */
export const EPOCHS_PER_WINDOW = 5;

/** A route with an agreement gives its test this share of alpha, and the other rules the rest in their proportions. */
export const AGREEMENT_SHARE = 0.1;

/** What a judge judges besides failures and latency (SPEC §9): each adds tests to share alpha with. */
export interface JudgeSignals {
  /** `checks.json`: its failures (`invalid`) get a relative test of their own. */
  json: boolean;
  /** `checks.llm`: latency is time to first token, and time per output token gets a test per latency quantile, in the latency share. */
  llm: boolean;
  /** `agreement`: its test of the disagreement rate against `maxDisagreement`. */
  agreement: { maxDisagreement: number } | null;
}

export const NO_SIGNALS: JudgeSignals = Object.freeze({ json: false, llm: false, agreement: null });

/** Each rule's level, from the alpha a judge runs at (a route's, or the fleet's half of it). */
export interface RuleAlphas {
  errorRelative: number;
  errorAbsolute: number;
  /** Each quantile's test: the latency share is split evenly between the quantiles (and the tpot tests). */
  latency: number;
  /** Shadow copies' paired test: one test in place of the per-quantile ones, so the whole latency share (less tpot's). */
  paired: number;
  /** Each quantile's test of time per output token; 0 without. */
  tpot: number;
  /** The agreement test; 0 without. */
  agreement: number;
  /** Each check kind's relative test; 0 without checks. */
  kind: number;
}

/** The failure kinds a route's checks can give: each gets a relative test of its own. */
export function checkedKinds(signals: JudgeSignals): ('invalid' | 'truncated' | 'empty' | 'stream_error')[] {
  return [...(signals.json ? (['invalid'] as const) : []), ...(signals.llm ? (['truncated', 'empty', 'stream_error'] as const) : [])];
}

/** With checks, the relative error-rate share is split: half to the test of all failures, half to the kinds' own tests. */
export const KIND_SHARE = 0.5;

/** The levels of every rule at `alpha`; the route's own alpha unless given. */
export function ruleAlphas(rules: RollbackRules, alpha = rules.alpha, signals: JudgeSignals = NO_SIGNALS): RuleAlphas {
  const rest = signals.agreement === null ? alpha : alpha * (1 - AGREEMENT_SHARE);
  const quantiles = Math.max(1, rules.latency.quantiles.length);
  const latencyTests = signals.llm ? 2 * quantiles : quantiles;
  const latency = (rest * ALPHA_SHARES.latency) / latencyTests;
  const kinds = checkedKinds(signals).length;
  const relative = rest * ALPHA_SHARES.errorRelative;
  return {
    errorRelative: kinds === 0 ? relative : relative * (1 - KIND_SHARE),
    kind: kinds === 0 ? 0 : (relative * KIND_SHARE) / kinds,
    errorAbsolute: rest * ALPHA_SHARES.errorAbsolute,
    latency,
    paired: signals.llm ? latency * quantiles : rest * ALPHA_SHARES.latency,
    tpot: signals.llm ? latency : 0,
    agreement: signals.agreement === null ? 0 : alpha * AGREEMENT_SHARE,
  };
}

function spending<T>(rules: RollbackRules, alpha: number, now: number, make: () => T): SpendingTests<T> {
  return new SpendingTests(alpha, rules.windowMs / EPOCHS_PER_WINDOW, now, make);
}

/** The candidate's failures against stable's, at `tolerance` x stable's rate. */
export function relativeErrorTests(rules: RollbackRules, alpha: number, now: number): SpendingTests<ConditionalTest> {
  return spending(rules, alpha, now, () => new ConditionalTest(rules.errorRate.tolerance));
}

/** The candidate's failure rate against the fixed `maxAbsolute`. */
export function absoluteErrorTests(rules: RollbackRules, alpha: number, now: number): SpendingTests<RateAboveTest> {
  return spending(rules, alpha, now, () => new RateAboveTest(rules.errorRate.maxAbsolute));
}

/**
 * Slow events of both versions against one threshold: under H0 (no slower) the candidate is
 * slow no more often than stable, a ratio of 1. Also the paired test of shadow copies.
 */
export function slowEventTests(rules: RollbackRules, alpha: number, now: number): SpendingTests<ConditionalTest> {
  return spending(rules, alpha, now, () => new ConditionalTest(1));
}

/** The candidate's own rate (of failures, or of slow answers) against a fixed `p0`: blue-green's baseline tests. */
export function rateAboveTests(rules: RollbackRules, alpha: number, now: number, p0: number): SpendingTests<RateAboveTest> {
  return spending(rules, alpha, now, () => new RateAboveTest(p0));
}
