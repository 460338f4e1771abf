import { repinned } from './headers.js';
import type { Dispatcher } from 'undici';
import type { InFlight, InFlightItem } from './inflight.js';
import type { FailureKind, Outcome, OutcomeSink } from './outcome.js';
import { mapUpstreamError } from './upstream-errors.js';
import type { Upstream } from './upstream.js';
import { ResponseCheck } from '../checks/response-check.js';
import type { RouteChecks } from '../checks/route-checks.js';
import { compareAnswers, type AgreementSink } from './agreement.js';

/** Header on every copy, so a model server can tell shadow traffic from live traffic. */
export const SHADOW_HEADER = 'x-rollgate-shadow';

/** Why a copy was not sent: the limit on copies in flight, or a body too large (or of unknown length) to copy. */
export type MirrorDropReason = 'concurrency' | 'body';

export interface MirrorLimits {
  maxInFlight: number;
  maxBodyBytes: number;
}

/**
 * Shadow traffic of one route: copies of client requests sent to the candidate, whose answers
 * are read, judged and dropped. A copy never touches the client's exchange: it has its own
 * handler, its own slot in a bounded number of copies in flight, and is dropped (and counted)
 * rather than queued when the limit is reached.
 */
export class Mirror {
  readonly limits: MirrorLimits;
  readonly #route: string;
  readonly #dataHeader: string;
  readonly #sink: OutcomeSink;
  readonly #inflight: InFlight;
  inFlight = 0;
  readonly dropped: Record<MirrorDropReason, number> = { concurrency: 0, body: 0 };
  /** Copies sent. */
  sent = 0;

  readonly checks: RouteChecks | null;
  readonly onAgreement: AgreementSink;

  constructor(route: string, limits: MirrorLimits, sink: OutcomeSink, inflight: InFlight, dataHeader: string, checks: RouteChecks | null = null, onAgreement: AgreementSink = () => {}) {
    this.#route = route;
    this.checks = checks;
    this.onAgreement = onAgreement;
    this.#dataHeader = dataHeader;
    this.limits = limits;
    this.#sink = sink;
    this.#inflight = inflight;
  }

  /** True when the body (by its declared length) may be copied. */
  canCopyBody(contentLength: string | undefined): boolean {
    if (contentLength === undefined) return true;
    const n = Number(contentLength);
    return n >= 0 && n <= this.limits.maxBodyBytes;
  }

  drop(reason: MirrorDropReason): void {
    this.dropped[reason]++;
  }

  /**
   * Sends one copy to `upstream` (the candidate), unless the limit on copies in flight is
   * reached; `primary` is the client's exchange with stable, whose latency the copy is paired with.
   * With `compareOnly` the copy goes to stable instead, for an agreement on a canary route: its
   * answer is compared with the candidate's (the primary's) and judged no further.
   */
  send(upstream: Upstream, method: string, path: string, headers: string[], body: Buffer | null, primary: { copy: MirrorExchange['primaryTarget'] | null }, compareOnly = false): void {
    if (this.inFlight >= this.limits.maxInFlight) {
      this.dropped.concurrency++;
      return;
    }
    this.inFlight++;
    this.sent++;
    const copy = new MirrorExchange(this, this.#route, upstream, this.#sink, this.#inflight, compareOnly, method);
    primary.copy = copy;
    // The copy reads its version's data, with that version's snapshot id.
    const h = repinned(headers, this.#dataHeader, upstream.snapshot);
    h.push(SHADOW_HEADER, '1');
    try {
      upstream.pool.dispatch({ path, method, headers: h, body }, copy);
    } catch (err) {
      copy.onError(err as Error);
    }
  }

  /** Called by a copy when it ends. */
  ended(): void {
    this.inFlight--;
  }
}

/**
 * One copy in flight: an undici handler that reads and drops the answer. Its outcome goes to the
 * sink once both it and the client's exchange with stable have ended, with stable's latency.
 */
export class MirrorExchange implements Outcome, InFlightItem, Dispatcher.DispatchHandler {
  readonly route: string;
  readonly role: 'candidate' | 'stable';
  readonly version: string;
  readonly startedAt = performance.now();
  readonly streaming = false;
  readonly replayed = false;
  slowMask = 0;
  prev: InFlightItem | null = null;
  next: InFlightItem | null = null;
  status = 0;
  failure: FailureKind = 'none';
  latencyMs = 0;
  ttfbMs = Number.NaN;
  pairedMs = Number.NaN;
  readonly check: ResponseCheck | null;
  /** The primary's answer (parsed), for the agreement. */
  #primaryAnswer: unknown = undefined;
  /** A copy to stable on a canary route: compared with the candidate's answer, never judged. */
  readonly #compareOnly: boolean;
  readonly #mirror: Mirror;
  readonly #sink: OutcomeSink;
  readonly #inflight: InFlight;
  readonly #upstream: Upstream;
  readonly #method: string;
  #done = false;
  #primaryDone = false;

  constructor(mirror: Mirror, route: string, upstream: Upstream, sink: OutcomeSink, inflight: InFlight, compareOnly: boolean, method: string) {
    this.#mirror = mirror;
    this.#method = method;
    this.route = route;
    this.role = compareOnly ? 'stable' : 'candidate';
    this.#compareOnly = compareOnly;
    this.version = upstream.label;
    this.#upstream = upstream;
    this.#sink = sink;
    this.#inflight = inflight;
    this.check = mirror.checks === null ? null : new ResponseCheck(mirror.checks, this.startedAt);
    // A compared copy is not judged, so it is not swept for latency either.
    if (!compareOnly) inflight.add(this);
    upstream.acquire();
  }

  get answered(): boolean {
    return !Number.isNaN(this.ttfbMs) && (this.check === null || this.check.firstToken);
  }

  /** What the primary exchange calls when it ends. */
  get primaryTarget(): { primaryEnded(latencyMs: number, answer: unknown): void } {
    return this;
  }

  onConnect(): void {}

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true;
    this.ttfbMs = performance.now() - this.startedAt;
    this.status = statusCode;
    if (statusCode >= 500) this.failure = 'status';
    else this.check?.begin(statusCode, rawHeaders, this.#method);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.check?.data(chunk);
    return true;
  }

  onComplete(): void {
    const failed = this.check === null || this.failure !== 'none' ? null : this.check.end(performance.now());
    if (failed !== null) this.failure = failed;
    this.#finish();
  }

  onError(err: Error): void {
    const kind = mapUpstreamError(err).failure;
    // After the head, a broken answer is a broken stream (a stalled one stays a timeout).
    this.failure = this.answered && kind !== 'timeout' ? 'stream' : kind;
    this.#finish();
  }

  /** The client's exchange has ended (`latencyMs` NaN when it failed), with its answer when kept. */
  primaryEnded(latencyMs: number, answer: unknown): void {
    this.pairedMs = latencyMs;
    this.#primaryAnswer = answer;
    this.#primaryDone = true;
    if (this.#done) this.#report();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.latencyMs = performance.now() - this.startedAt;
    if (!this.#compareOnly) this.#inflight.remove(this);
    this.#mirror.ended();
    if (this.#primaryDone) this.#report();
  }

  // The upstream is released only once the outcome is recorded, so a retired version's series
  // are not forgotten before its last copy is counted.
  #report(): void {
    const m = this.#mirror;
    const a = m.checks?.agreement;
    if (a != null && this.failure === 'none' && !Number.isNaN(this.pairedMs)) {
      const mine = this.check?.doc;
      // Shadow: this is the candidate's answer and the primary stable's; compare-only: the other way round.
      const [stable, candidate] = this.#compareOnly ? [mine, this.#primaryAnswer] : [this.#primaryAnswer, mine];
      const result = compareAnswers(a, stable, candidate);
      if (result !== null) m.onAgreement(this.route, result);
    }
    if (!this.#compareOnly) this.#sink(this);
    this.#upstream.release();
  }
}
