import type { WindowSnapshot } from '../stats/window.js';

/** The failure kinds of the checks (SPEC §9): a trip whose failures are all of one is named after it. */
export const CHECK_KINDS = ['invalid', 'truncated', 'empty', 'stream_error'] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

export type TripReason = 'consecutive_failures' | 'error_rate' | 'latency' | CheckKind | 'ttft' | 'tpot' | 'disagreement';

/** What each check kind says of the candidate's answers, in a trip's sentence. */
const CHECK_WORDS: Record<CheckKind, string> = {
  invalid: 'failed the JSON check',
  truncated: 'were truncated streams',
  empty: 'were empty completions',
  stream_error: 'carried an error inside a 200',
};

/** A version's window in the evidence, with its label. */
export type VersionEvidence = WindowSnapshot & { version: string };

export interface TripEvidence {
  stable: VersionEvidence;
  candidate: VersionEvidence;
  /** The test statistic (failures in a row, or the log likelihood ratio in nats) and its boundary. */
  statistic: number;
  boundary: number;
  [detail: string]: unknown;
}

export interface Trip {
  reason: TripReason;
  /** Clock time of the deciding sample (ms, the judge's clock). */
  at: number;
  /** One sentence a person can read, with the numbers that tripped it. */
  message: string;
  evidence: TripEvidence;
}

const pct = (x: number): string => `${(x * 100).toFixed(x < 0.01 ? 2 : 1)}%`;
const ms = (x: unknown): string => (typeof x === 'number' ? `${x.toFixed(x < 10 ? 2 : 1)} ms` : 'n/a');

/** A number as a person reads it: four significant digits, no binary noise (0.00045, not 0.00045000000000000004). */
const num = (x: unknown): string => (typeof x === 'number' ? String(Number(x.toPrecision(4))) : String(x));

function counts(v: VersionEvidence): string {
  return `${v.failures} of ${v.count} (${pct(v.failureRate)})`;
}

/** Builds the trip record and its sentence: pure, so the wording is testable on its own. */
export function describeTrip(reason: TripReason, at: number, evidence: TripEvidence): Trip {
  const answers = describeAnswerTrip(reason, at, evidence);
  if (answers !== null) return answers;
  const { stable: s, candidate: c } = evidence;
  let message: string;
  if (reason === 'consecutive_failures') {
    message =
      `candidate ${c.version} failed ${evidence.statistic} requests in a row (limit ${evidence.boundary}) ` +
      `while stable ${s.version} did not; window: candidate ${counts(c)} failed, stable ${counts(s)}`;
  } else if (reason === 'error_rate' && evidence.test === 'absolute') {
    message =
      `candidate ${c.version} fails credibly more often than maxAbsolute ${pct(Number(evidence.maxAbsolute))}: ` +
      `${String(evidence.candidateFailures)} of ${String(evidence.candidateRequests)} requests failed; ` +
      `evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(evidence.alpha)}); ` +
      `stable ${s.version}: ${counts(s)}`;
  } else if (reason === 'error_rate' && evidence.test === 'baseline') {
    message =
      `candidate ${c.version} fails credibly more than ${String(evidence.tolerance)}x as often as stable ${s.version} did before the switch ` +
      `(${pct(Number(evidence.stableFailureRate))} of ${String(evidence.stableRequests)}; tested against ${pct(Number(evidence.p0))}): ` +
      `${String(evidence.candidateFailures)} of ${String(evidence.candidateRequests)} candidate requests failed; ` +
      `evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(evidence.alpha)})`;
  } else if (reason === 'latency' && evidence.test === 'baseline') {
    const q = String(evidence.q);
    message =
      `candidate ${c.version} is credibly slower than stable ${s.version} was before the switch at p${Number(q) * 100}: ` +
      `${String(evidence.candidateSlow)} of ${String(evidence.candidateRequests)} candidate answers took longer than ${ms(evidence.thresholdMs)} ` +
      `(stable's p${Number(q) * 100} then ${ms(evidence.stableQuantileMs)}; at most ${pct(Number(evidence.p0))} may); ` +
      `evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(evidence.alpha)})`;
  } else if (reason === 'latency' && evidence.test === 'paired') {
    message =
      `candidate ${c.version} is credibly slower than stable ${s.version} on the same requests (shadow copies): ` +
      `its answer was the slower one by more than ${String(evidence.tolerance)}x and ${ms(evidence.minDeltaMs)} ${String(evidence.candidateSlower)} times, ` +
      `stable's ${String(evidence.stableSlower)} times; window p50: candidate ${ms(c.latencyMs['0.5'])}, stable ${ms(s.latencyMs['0.5'])}; ` +
      `evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(evidence.alpha)})`;
  } else if (reason === 'error_rate') {
    message =
      `candidate ${c.version} fails credibly more than ${String(evidence.tolerance)}x as often as stable ${s.version}: ` +
      `window candidate ${counts(c)}, stable ${counts(s)}; of the failures since the test began ` +
      `${String(evidence.candidateFailures)} came from the candidate at a ${pct(Number(evidence.share))} traffic share; ` +
      `evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(evidence.alpha)})`;
  } else {
    const q = String(evidence.q);
    message =
      `candidate ${c.version} is credibly slower than stable ${s.version} at p${Number(q) * 100}: ` +
      `${String(evidence.candidateSlow)} candidate and ${String(evidence.stableSlow)} stable answers took longer than ` +
      `${ms(evidence.thresholdMs)} (stable's p${Number(q) * 100} ${ms(evidence.stableQuantileMs)}) at a ` +
      `${pct(Number(evidence.share))} traffic share; window p${Number(q) * 100}: candidate ${ms(c.latencyMs[q])}, ` +
      `stable ${ms(s.latencyMs[q])}; evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} ` +
      `(alpha ${num(evidence.alpha)})`;
  }
  return { reason, at, message, evidence };
}

/** The sentences of the reasons SPEC §9 adds (what the answers were); null for the others. */
function describeAnswerTrip(reason: TripReason, at: number, evidence: TripEvidence): Trip | null {
  const kind = CHECK_KINDS.find((k) => k === reason);
  if (kind !== undefined) {
    // Named after the kind of every failure behind it; the sentence is the rule's, after what the answers were.
    const rule = describeTrip(evidence.rule as TripReason, at, evidence);
    const detail = typeof evidence.check === 'string' ? ` (${evidence.check})` : '';
    const { failuresByKind } = evidence.candidate;
    const message = `${String(failuresByKind[kind])} answers of candidate ${evidence.candidate.version} ${CHECK_WORDS[kind]}${detail}; by rule ${String(evidence.rule)}: ${rule.message}`;
    return { reason, at, message, evidence };
  }
  const { stable: s, candidate: c } = evidence;
  let message: string;
  if (reason === 'disagreement') {
    const examples = (evidence.examples as { stable: string; candidate: string }[]).map((e) => `stable ${e.stable} / candidate ${e.candidate}`).join('; ');
    message =
      `candidate ${c.version} disagrees with stable ${s.version} credibly more often than maxDisagreement ${pct(Number(evidence.maxDisagreement))}: ` +
      `${String(evidence.disagreements)} of ${String(evidence.pairs)} compared pairs disagreed; ` +
      `evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(evidence.alpha)})` +
      (examples === '' ? '' : `; for example: ${examples}`);
    return { reason, at, message, evidence };
  }
  if (reason === 'tpot') {
    const q = String(evidence.q);
    message =
      `candidate ${c.version} streams its tokens credibly slower than stable ${s.version} at p${Number(q) * 100} of time per output token: ` +
      `${String(evidence.candidateSlow)} candidate and ${String(evidence.stableSlow)} stable answers took longer than ${ms(evidence.thresholdMs)} per token ` +
      `(stable's p${Number(q) * 100} ${ms(evidence.stableQuantileMs)}) at a ${pct(Number(evidence.share))} traffic share; ` +
      `evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(evidence.alpha)})`;
    return { reason, at, message, evidence };
  }
  if (reason === 'ttft') {
    // The latency rules' sentences, of time to first token.
    const rule = describeTrip('latency', at, evidence);
    return { reason, at, message: `time to first token: ${rule.message}`, evidence };
  }
  return null;
}
