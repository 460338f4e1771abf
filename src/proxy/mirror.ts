import { repinned } from './headers.js';
import type { Dispatcher } from 'undici';
import type { InFlight, InFlightItem } from './inflight.js';
import type { FailureKind, Outcome, OutcomeSink } from './outcome.js';
import { mapUpstreamError } from './upstream-errors.js';
import type { Upstream } from './upstream.js';

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

  constructor(route: string, limits: MirrorLimits, sink: OutcomeSink, inflight: InFlight, dataHeader: string) {
    this.#route = route;
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
   */
  send(upstream: Upstream, method: string, path: string, headers: string[], body: Buffer | null, primary: { copy: { primaryEnded(latencyMs: number): void } | null }): void {
    if (this.inFlight >= this.limits.maxInFlight) {
      this.dropped.concurrency++;
      return;
    }
    this.inFlight++;
    this.sent++;
    const copy = new MirrorExchange(this, this.#route, upstream, this.#sink, this.#inflight);
    primary.copy = copy;
    // The copy reads the candidate's data, with the candidate's snapshot id.
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
  readonly role = 'candidate' as const;
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
  readonly #mirror: Mirror;
  readonly #sink: OutcomeSink;
  readonly #inflight: InFlight;
  readonly #upstream: Upstream;
  #done = false;
  #primaryDone = false;

  constructor(mirror: Mirror, route: string, upstream: Upstream, sink: OutcomeSink, inflight: InFlight) {
    this.#mirror = mirror;
    this.route = route;
    this.version = upstream.label;
    this.#upstream = upstream;
    this.#sink = sink;
    this.#inflight = inflight;
    inflight.add(this);
    upstream.acquire();
  }

  get answered(): boolean {
    return !Number.isNaN(this.ttfbMs);
  }

  onConnect(): void {}

  onHeaders(statusCode: number): boolean {
    if (statusCode < 200) return true;
    this.ttfbMs = performance.now() - this.startedAt;
    this.status = statusCode;
    if (statusCode >= 500) this.failure = 'status';
    return true;
  }

  onData(): boolean {
    return true;
  }

  onComplete(): void {
    this.#finish();
  }

  onError(err: Error): void {
    const kind = mapUpstreamError(err).failure;
    // After the head, a broken answer is a broken stream (a stalled one stays a timeout).
    this.failure = this.answered && kind !== 'timeout' ? 'stream' : kind;
    this.#finish();
  }

  /** The client's exchange with stable has ended (`latencyMs` NaN when it failed). */
  primaryEnded(latencyMs: number): void {
    this.pairedMs = latencyMs;
    this.#primaryDone = true;
    if (this.#done) this.#report();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.latencyMs = performance.now() - this.startedAt;
    this.#inflight.remove(this);
    this.#mirror.ended();
    if (this.#primaryDone) this.#report();
  }

  // The upstream is released only once the outcome is recorded, so a retired version's series
  // are not forgotten before its last copy is counted.
  #report(): void {
    this.#sink(this);
    this.#upstream.release();
  }
}
