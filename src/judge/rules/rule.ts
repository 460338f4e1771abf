import type { VersionRole } from '../../proxy/outcome.js';
import type { TripReason } from '../decide.js';
import type { ConditionalTest, RateAboveTest, SpendingTests } from '../sequential.js';

/**
 * One event as the rules see it. The judge owns one and fills it afresh for every event, so
 * that feeding the rules allocates nothing; a rule reads it during `observe()` only.
 */
export interface JudgeEvent {
  /**
   * `answer`: a finished request; `slow`: a request still in flight that passed latency
   * thresholds; `paired-slow`: a shadow copy in flight that is already the slow one of its pair.
   */
  kind: 'answer' | 'slow' | 'paired-slow';
  role: VersionRole;
  now: number;
  /** The judged latency of an answer, or the time in flight so far (ms). */
  latencyMs: number;
  /** A counted failure (an answer's; never for requests in flight). */
  failed: boolean;
  /** The latency tests that already counted this request as slow while in flight (bit i: quantile i). */
  counted: number;
  /** The candidate's traffic share; NaN where no rule of the mode needs it. */
  share: number;
  /** The route judges latency on pairs (shadow copies): set by the candidate's latest answer. */
  paired: boolean;
  /** A shadow copy's pair: stable's latency for the same request (ms); NaN when stable gave no good answer. */
  pairedMs: number;
  /** The candidate's first `warmup` requests are behind this event, so latency tests take it. */
  pastWarmup: boolean;
}

/** A rule at its boundary: the numbers of the trip's evidence, and the rule's own detail. */
export interface RuleCrossing {
  statistic: number;
  boundary: number;
  /** Spread into the trip's evidence after `statistic` and `boundary`: its key order is the evidence's. */
  detail: Record<string, unknown>;
}

/**
 * One rule of SPEC §5: a small stateful object that takes every event and says when the
 * evidence against the candidate reached its boundary. Rules share nothing but the event.
 */
export interface Rule {
  /** The reason a trip by this rule gives. */
  readonly reason: TripReason;
  /** Starts the epoch tests that `now` has reached. */
  tick(now: number): void;
  /** Takes one event; true when the evidence against the candidate may have grown. */
  observe(e: JudgeEvent): boolean;
  /** The first live test at its boundary, with the evidence detail; null when none is. */
  crossing(): RuleCrossing | null;
}

/** Feeds one event to each live conditional test at the current share. */
export function feedConditional(tests: SpendingTests<ConditionalTest>, share: number, fromCandidate: boolean): void {
  const live = tests.live();
  for (let i = 0; i < live.length; i++) {
    const t = (live[i] as [ConditionalTest, number])[0];
    t.setShare(share);
    t.event(fromCandidate);
  }
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Adds one request (failed or slow, or not) to each live one-sample test. */
export function addToRate(tests: SpendingTests<RateAboveTest>, hit: boolean): void {
  const live = tests.live();
  for (let i = 0; i < live.length; i++) (live[i] as [RateAboveTest, number])[0].add(hit);
}
