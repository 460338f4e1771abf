import type { RollbackRules } from '../config/types.js';
import type { Outcome } from '../proxy/outcome.js';
import { SlidingWindow } from '../stats/window.js';
import { checkedKinds, type JudgeSignals, type RuleAlphas } from './alpha.js';
import { CHECK_KINDS, type CheckKind, type TripReason } from './decide.js';
import type { FleetDelta } from './fleet-delta.js';
import { Agreement } from './rules/agreement.js';
import { Latency } from './rules/latency.js';
import { ErrorRelative } from './rules/error-relative.js';
import type { JudgeEvent } from './rules/rule.js';

/**
 * What a judge learns of the answers themselves (SPEC §9), beside failures and latency: the
 * kinds of the candidate's check failures (a trip whose failures are all of one kind is named
 * after it), time per output token with its windows and tests, and the agreement test. A route
 * without checks has none of it.
 */
export class AnswerSignals {
  readonly llm: boolean;
  /** Time per output token of each version (ms per token), and its test; null without `checks.llm`. */
  readonly tpotStable: SlidingWindow | null = null;
  readonly tpotCandidate: SlidingWindow | null = null;
  readonly tpot: Latency | null = null;
  readonly agreement: Agreement | null = null;
  /** The relative test of each check kind the route's checks can give. */
  readonly kindTests: ErrorRelative[];
  readonly #kindTest: Partial<Record<CheckKind, ErrorRelative>> = {};
  /** The candidate's counted failures since the deployment, and of each check kind. */
  #failures = 0;
  readonly #byKind: Record<CheckKind, number> = { invalid: 0, truncated: 0, empty: 0, stream_error: 0 };
  /** The latest detail of each kind (a schema error's path and message, a stream's error). */
  readonly #details: Record<CheckKind, string | null> = { invalid: null, truncated: null, empty: null, stream_error: null };

  constructor(rules: RollbackRules, alphas: RuleAlphas, signals: JudgeSignals, now: number) {
    this.llm = signals.llm;
    this.kindTests = checkedKinds(signals).map((kind) => (this.#kindTest[kind] = new ErrorRelative(rules, alphas.kind, now, kind)));
    if (signals.llm) {
      this.tpotStable = new SlidingWindow(rules.windowMs, now);
      this.tpotCandidate = new SlidingWindow(rules.windowMs, now);
      const zeros = (): number[] => rules.latency.quantiles.map(() => 0);
      // tpot's slow events are not pooled by the fleet (its judge runs failures and latency only).
      const unpooled: FleetDelta = { stable: { requests: 0, failures: 0, slow: zeros() }, candidate: { requests: 0, failures: 0, slow: zeros() } };
      this.tpot = new Latency(rules, alphas.tpot, now, this.tpotStable, unpooled, 'tpot');
    }
    if (signals.agreement !== null) this.agreement = new Agreement(rules, alphas.agreement, now, signals.agreement.maxDisagreement);
  }

  /** A candidate's counted failure, of `kind`. */
  candidateFailure(o: Outcome): void {
    this.#failures++;
    const kind = o.failure as CheckKind;
    if (this.#byKind[kind] === undefined) return;
    this.#byKind[kind]++;
    const detail = o.check?.detail;
    if (detail !== undefined && detail !== null) this.#details[kind] = detail;
  }

  /**
   * Time per output token of an answer that has it: its windows, then its tests, on the judge's
   * event (after the other rules took it). True when the evidence may have grown.
   */
  observeTpot(o: Outcome, e: JudgeEvent): boolean {
    const tpot = o.check?.tpotMs ?? Number.NaN;
    if (this.tpot === null || Number.isNaN(tpot)) return false;
    (o.role === 'candidate' ? this.tpotCandidate : this.tpotStable)?.record(e.now, tpot, null);
    // Judged from the first answer: a cold start shows in the first token, not in the pace after it.
    e.latencyMs = tpot;
    e.counted = 0;
    e.failed = false;
    e.pastWarmup = true;
    return this.tpot.observe(e);
  }

  /** A failure of either version: to its kind's test, if it has one; true when the evidence may have grown. */
  kindFailure(failure: string, e: JudgeEvent): boolean {
    const test = this.#kindTest[failure as CheckKind];
    return test !== undefined && test.observe(e);
  }

  /**
   * The reason a trip of `reason` gives, and the keys it adds to the evidence: a failure rule
   * whose failures were all of one check kind is named after that kind; latency on an LLM route
   * is time to first token.
   */
  rename(reason: TripReason): { reason: TripReason; detail: Record<string, unknown> | null } {
    if (reason === 'latency' && this.llm) return { reason: 'ttft', detail: null };
    const own = CHECK_KINDS.find((k) => k === reason);
    if (own !== undefined) {
      // A kind's own test: the failures behind it are all of that kind.
      const check = this.#details[own];
      return { reason, detail: check === null ? { rule: 'error_rate' } : { rule: 'error_rate', check } };
    }
    if ((reason !== 'consecutive_failures' && reason !== 'error_rate') || this.#failures === 0) return { reason, detail: null };
    for (const kind of CHECK_KINDS) {
      if (this.#byKind[kind] !== this.#failures) continue;
      const check = this.#details[kind];
      return { reason: kind, detail: check === null ? { rule: reason } : { rule: reason, check } };
    }
    return { reason, detail: null };
  }

  tick(now: number): void {
    for (const k of this.kindTests) k.tick(now);
    this.tpot?.tick(now);
    this.agreement?.tick(now);
  }
}
