import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { clientResponseHeaders, isStreamingAnswer, repinned } from './headers.js';
import type { OutcomeSink } from './outcome.js';
import { ExchangeRecord } from './exchange-record.js';
import { mapUpstreamError, writeUpstreamError } from './upstream-errors.js';
import type { InFlight } from './inflight.js';
import type { Upstream } from './upstream.js';
import { ResponseCheck } from '../checks/response-check.js';
import type { RouteChecks } from '../checks/route-checks.js';
import { HeldAnswer } from './held-answer.js';
import { endOfFirstRead, PendingBody } from './request-body.js';
import { kExchange, onRequestData, onRequestEnd, onResponseClose, onResponseDrain, type DrainState, type ExchangeContext, type ExchangeRoute, type SentRequest, type UpstreamErrorReporter, type WithExchange, type WithRequestExchange } from './exchange-parts.js';

/**
 * One proxied request: the undici dispatch handler that streams the upstream's answer into the
 * client's response, and the outcome record handed to the sink when it ends. One object per
 * request carries all of it, so the hot path allocates little besides what Node and undici do.
 */
export class Exchange extends ExchangeRecord implements Dispatcher.DispatchHandler {
  readonly #res: WithExchange;
  readonly #sink: OutcomeSink;
  readonly #onUpstreamError: UpstreamErrorReporter;
  #upstream: Upstream;
  /** Where a failed candidate request is replayed (stable), or null when it is not. */
  #replay: Upstream | null;
  /** What was sent, kept for the replay: only when the body is a Buffer (or there is none). */
  #sent: SentRequest | null = null;
  /** Reading a candidate's 5xx answer that will be replaced by stable's. */
  #swallowing = false;
  #inflight: InFlight;
  readonly #inflightStable: InFlight;
  readonly #drain: DrainState;
  readonly #dataHeader: string;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #headersSent = false;
  #dispatched = false;
  #pending: PendingBody | null = null;
  #clientGone = false;
  #done = false;
  readonly #checks: RouteChecks | null;
  /** The candidate's answer, held until its checks pass (holdForReplay). */
  #held: HeldAnswer | null = null;

  constructor(context: ExchangeContext, route: ExchangeRoute, toCandidate: boolean, upstream: Upstream, replay: Upstream | null, res: ServerResponse, requestId: string, startedAt: number) {
    super(route.name, toCandidate ? 'candidate' : 'stable', upstream.label, startedAt, requestId, route.checks === null ? null : new ResponseCheck(route.checks, startedAt));
    this.#dataHeader = route.dataHeader;
    this.#upstream = upstream;
    this.#res = res;
    this.#sink = context.sink;
    this.#onUpstreamError = context.onUpstreamError;
    this.#drain = context.drain;
    this.#replay = replay;
    this.#inflight = toCandidate ? route.inflight.candidate : route.inflight.stable;
    this.#inflightStable = route.inflight.stable;
    this.#checks = route.checks;
    this.#inflight.add(this);
    upstream.acquire();
    this.#res[kExchange] = this;
    res.on('close', onResponseClose);
  }

  get upstreamUrl(): string {
    return this.#upstream.url;
  }

  /** Sends the request upstream; `body` is the client's request stream, or null when it has none. */
  start(method: string, path: string, headers: string[], body: Readable | Buffer | null): void {
    this.#dispatched = true;
    if (this.#replay !== null) {
      if (body === null || Buffer.isBuffer(body)) this.#sent = { method, path, headers, body };
      else this.#replay = null;
    }
    // Shadow: the copy goes out just before or just after, at random: of two requests sent at
    // once the second is a little slower on a busy host, and neither version may be second on purpose.
    const copy = body === null || Buffer.isBuffer(body) ? this.mirrorTo : null;
    this.mirrorTo = null;
    if (copy !== null && this.copyFirst) copy(method, headers, body as Buffer | null);
    try {
      this.#upstream.pool.dispatch({ path, method, headers, body }, this);
    } catch (err) {
      this.onError(err as Error);
    }
    if (copy !== null && !this.copyFirst) copy(method, headers, body as Buffer | null);
  }

  /** Reads the body before sending (see PendingBody); `limit` is finite for a chunked body. */
  startBuffered(req: IncomingMessage, path: string, headers: string[], limit = Infinity): void {
    this.#pending = new PendingBody(req.method ?? 'POST', path, headers, limit);
    (req as WithRequestExchange)[kExchange] = this;
    req.on('data', onRequestData);
    req.on('end', onRequestEnd);
    if (limit !== Infinity) setImmediate(endOfFirstRead, this, req);
  }

  bodyChunk(chunk: Buffer, req: IncomingMessage): void {
    if (this.#pending?.add(chunk) === true) this.readAheadOver(req);
  }

  readAheadOver(req: IncomingMessage): void {
    const p = this.#pending;
    if (p === null || this.#done) return;
    this.#pending = null;
    this.start(p.method, p.path, p.headers, p.rest(req));
  }

  bodyEnd(): void {
    const p = this.#pending;
    if (p === null || this.#done) return;
    this.#pending = null;
    this.start(p.method, p.path, p.headers, p.whole());
  }

  clientClosed(): void {
    if (this.#done || this.#res.writableFinished) return;
    this.#clientGone = true;
    if (this.#abort !== null) this.#abort();
    else if (!this.#dispatched) {
      // Gone while its body was still arriving: nothing was sent upstream.
      this.#pending = null;
      this.failure = 'aborted';
      this.#finish();
    }
  }

  resumeUpstream(): void {
    if (this.#done || this.#resume === null) return;
    // Node also emits 'drain' when a pipelined answer behind this one writes, though the socket
    // is still full: resuming then would pile the answer up in memory. Wait for the socket.
    const socket = this.#res.socket;
    if (socket !== null && socket.writableNeedDrain) socket.once('drain', () => this.resumeUpstream());
    else this.#resume();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#clientGone) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true;
    this.ttfbMs = performance.now() - this.startedAt;
    this.status = statusCode;
    this.#resume = resume;
    if (statusCode >= 500 && this.#replay !== null && this.replayIfReceived) {
      // Read and drop the candidate's error; stable answers instead once it has ended.
      this.#swallowing = true;
      return true;
    }
    const check = this.check;
    if (check !== null) {
      check.begin(statusCode, rawHeaders, this.#res.req.method);
      if (this.#replay !== null && this.replayIfReceived && this.#checks?.json?.holdForReplay === true && check.kept !== null) {
        this.#held = new HeldAnswer(statusCode, statusText, rawHeaders, this.#checks.maxBytes);
        return true;
      }
    }
    return this.#writeHead(statusCode, statusText, rawHeaders);
  }

  #writeHead(statusCode: number, statusText: string, rawHeaders: Buffer[]): boolean {
    this.streaming = isStreamingAnswer(rawHeaders);
    try {
      const headers = clientResponseHeaders(rawHeaders, this.route, this.version, this.requestId, this.#drain.draining);
      if (statusText === '') this.#res.writeHead(statusCode, headers);
      else this.#res.writeHead(statusCode, statusText, headers);
    } catch (err) {
      // A header value Node refuses to write (control characters), a transfer coding other than chunked: the answer is unusable.
      this.#abort?.(err as Error);
      return false;
    }
    this.#headersSent = true;
    return true;
  }

  /** Lets a held answer go to the client; false when the client's socket wants a pause. */
  #release(held: HeldAnswer): boolean {
    this.#held = null;
    if (!this.#writeHead(held.status, held.statusText, held.rawHeaders)) return false;
    let ok = true;
    for (const chunk of held.chunks) ok = this.#res.write(chunk);
    return ok;
  }

  onData(chunk: Buffer): boolean {
    if (this.#swallowing) return true;
    const check = this.check;
    let ok: boolean;
    if (check !== null) {
      check.data(chunk);
      const held = this.#held;
      if (held !== null) {
        if (held.add(chunk)) return true;
        ok = this.#release(held);
      } else ok = this.#res.write(chunk);
    } else ok = this.#res.write(chunk);
    if (!ok && this.#resume !== null) this.#res.once('drain', onResponseDrain);
    return ok;
  }

  onComplete(): void {
    if (this.#done) return;
    if (this.#swallowing) {
      this.failure = 'status';
      this.#replayOnStable();
      return;
    }
    const held = this.#held;
    if (held !== null) {
      const failed = (this.check as ResponseCheck).end(performance.now()) ?? held.unusable();
      if (failed !== null) {
        // The client never saw it: stable answers instead.
        this.#held = null;
        this.failure = failed;
        this.#replayOnStable();
        return;
      }
      this.#release(held);
    }
    // The client has the whole answer before it is checked: the verdict only feeds the judge.
    this.#res.end();
    const failed = this.check === null || held !== null ? null : this.check.end(performance.now());
    this.failure = this.status >= 500 ? 'status' : (failed ?? 'none');
    this.#finish();
  }

  onError(err: Error): void {
    if (this.#done) return;
    if (this.#clientGone) {
      this.failure = 'aborted';
      this.#finish();
      return;
    }
    const mapped = mapUpstreamError(err);
    // Refused, or failed before it was handed to a connection (abort unset): never received.
    if (!this.#headersSent && this.#replay !== null && (this.replayIfReceived || this.#abort === null || mapped.failure === 'connect')) {
      this.failure = this.#swallowing ? 'status' : mapped.failure;
      this.#onUpstreamError(this, mapped, err);
      this.#replayOnStable();
      return;
    }
    if (this.#headersSent) {
      // The answer had begun: the only honest signal left for the client is a broken stream.
      this.failure = 'stream';
      this.#res.destroy();
    } else {
      this.failure = mapped.failure;
      writeUpstreamError(this.#res, mapped, this, this.#upstream.url, this.#drain.draining);
    }
    this.#onUpstreamError(this, mapped, err);
    this.#finish();
  }

  /**
   * Records the candidate's failure (it still counts against the candidate), then sends the same
   * request to stable on this same exchange; the client gets stable's answer.
   */
  #replayOnStable(): void {
    const stable = this.#replay as Upstream;
    const sent = this.#sent as SentRequest;
    // Stable reads its own data: the replay carries stable's snapshot id, not the candidate's.
    const headers = stable.snapshot === this.#upstream.snapshot ? sent.headers : repinned(sent.headers, this.#dataHeader, stable.snapshot);
    // And under its own URL's path: the request's path was made with the candidate's.
    const path = stable.basePath + sent.path.slice(this.#upstream.basePath.length);
    const now = performance.now();
    this.latencyMs = now - this.startedAt;
    this.replayed = true;
    this.#inflight.remove(this);
    this.#sink(this);
    // Released after the sink: the candidate's outcome is recorded before its version may be forgotten.
    this.#upstream.release();
    stable.acquire();
    this.#inflight = this.#inflightStable;
    this.#inflight.add(this);
    this.restartOnStable(stable.label, now, this.#checks === null ? null : new ResponseCheck(this.#checks, now));
    this.#upstream = stable;
    this.#replay = null;
    this.#swallowing = false;
    this.#held = null;
    this.#abort = null;
    this.#resume = null;
    this.start(sent.method, path, headers, sent.body);
  }

  #finish(): void {
    this.#done = true;
    this.latencyMs = performance.now() - this.startedAt;
    this.#inflight.remove(this);
    this.#res.removeListener('close', onResponseClose);
    this.#res[kExchange] = undefined;
    this.#sink(this);
    this.#upstream.release();
    if (this.copy !== null) this.copy.primaryEnded(this.failure !== 'none' ? Number.NaN : this.judgedMs(), this.check?.doc);
  }
}
