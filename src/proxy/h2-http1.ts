import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { errorBody, errorStatus } from '../errors.js';
import type { ExchangeContext, ExchangeRoute, SentRequest } from './exchange-parts.js';
import { ExchangeRecord } from './exchange-record.js';
import { flatHeaders, h2ResponseHeaders, isStreamingAnswer, repinned, upstreamRequestHeaders } from './headers.js';
import { StreamBody } from './request-body.js';
import type { InFlight } from './inflight.js';
import { mapUpstreamError, upstreamErrorMessage, type MappedError } from './upstream-errors.js';
import type { Upstream } from './upstream.js';

/** Which http1 version a plain HTTP/2 request goes to, and what it may be replayed on. */
export interface Http1Plan {
  toCandidate: boolean;
  upstream: Upstream;
  /** Stable, when a failed candidate request is replayed there (retryOnStable); else null. */
  replay: Upstream | null;
  /** Whether a failure after the candidate may have received the request is replayed too. */
  replayIfReceived: boolean;
  /** Request bodies of a known length up to this many bytes are read whole before sending. */
  bufferLimit: number;
  requestId: string;
  /** The client sent its own x-request-id (it is passed on as it is). */
  hasId: boolean;
  remoteAddress: string | undefined;
  startedAt: number;
}

/**
 * One plain HTTP/2 request to a version that speaks HTTP/1.1, sent through that version's undici
 * pool: the request's head and body go upstream as exchange.ts sends an HTTP/1.1 request's, and
 * the answer comes back on the stream, both bodies with backpressure. Judged as HTTP/1.1 is: the
 * same outcome kinds, timeouts and error answers; with retryOnStable, a candidate failure before
 * any of its answer went out is replayed on stable when the body was read whole.
 */
export class H2Http1Exchange extends ExchangeRecord implements Dispatcher.DispatchHandler {
  readonly #ctx: ExchangeContext;
  readonly #route: ExchangeRoute;
  readonly #stream: ServerHttp2Stream;
  #upstream: Upstream;
  #replay: Upstream | null;
  #inflight: InFlight;
  readonly #bufferLimit: number;
  #sent: SentRequest | null = null;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #swallowing = false;
  #headersSent = false;
  #dispatched = false;
  #clientGone = false;
  #done = false;

  constructor(ctx: ExchangeContext, route: ExchangeRoute, stream: ServerHttp2Stream, plan: Http1Plan) {
    super(route.name, plan.toCandidate ? 'candidate' : 'stable', plan.upstream.label, plan.startedAt, plan.requestId, null);
    this.#ctx = ctx;
    this.#route = route;
    this.#stream = stream;
    this.#upstream = plan.upstream;
    this.#replay = plan.replay;
    this.replayIfReceived = plan.replayIfReceived;
    this.#bufferLimit = plan.bufferLimit;
    this.#inflight = plan.toCandidate ? route.inflight.candidate : route.inflight.stable;
    this.#inflight.add(this);
    plan.upstream.acquire();
  }

  get upstreamUrl(): string {
    return this.#upstream.url;
  }

  /** Reads what is needed of the request and sends it upstream. */
  start(headers: IncomingHttpHeaders, plan: Http1Plan): void {
    const s = this.#stream;
    s.on('close', () => this.#clientClosed());
    s.on('drain', () => this.#resume?.());
    // A stream can arrive already closed (its session went at once): its 'close' has passed.
    if (s.closed || s.destroyed) {
      this.#clientClosed();
      return;
    }
    const u = this.#upstream;
    const method = headers[':method'] ?? 'GET';
    const path = u.basePath + (headers[':path'] ?? '/');
    const sent = upstreamRequestHeaders(flatHeaders(headers), undefined, plan.requestId, plan.hasId, plan.remoteAddress, headers[':scheme'] === 'https' ? 'https' : 'http', this.#route.dataHeader, u.snapshot);
    if (s.endAfterHeaders) {
      this.#dispatch(method, path, sent, null);
      return;
    }
    const length = Number(headers['content-length'] ?? Number.NaN);
    if (!(length <= this.#bufferLimit)) {
      this.#dispatch(method, path, sent, new StreamBody(s));
      return;
    }
    // A body of known, small length is read whole: sent in one write, and replayable.
    const chunks: Buffer[] = [];
    s.on('data', (chunk: Buffer) => chunks.push(chunk));
    s.on('end', () => {
      if (!this.#done) this.#dispatch(method, path, sent, chunks.length === 0 ? null : Buffer.concat(chunks));
    });
  }

  #dispatch(method: string, path: string, headers: string[], body: Buffer | Readable | null): void {
    this.#dispatched = true;
    if (this.#replay !== null) {
      if (body === null || Buffer.isBuffer(body)) this.#sent = { method, path, headers, body };
      else this.#replay = null;
    }
    try {
      this.#upstream.pool.dispatch({ method, path, headers, body }, this);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#clientGone) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.ttfbMs = performance.now() - this.startedAt;
    this.status = statusCode;
    this.#resume = resume;
    if (statusCode >= 500 && this.#replay !== null && this.replayIfReceived) {
      // Read and drop the candidate's error; stable answers instead once it has ended.
      this.#swallowing = true;
      return true;
    }
    this.streaming = isStreamingAnswer(rawHeaders);
    const s = this.#stream;
    if (s.destroyed || s.closed) return true;
    try {
      s.respond(h2ResponseHeaders(statusCode, rawHeaders, this));
    } catch (err) {
      // A transfer coding other than chunked, a repeated content-type: the answer is unusable.
      this.#abort?.(err as Error);
      return false;
    }
    this.#headersSent = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const s = this.#stream;
    // Node ends the stream at respond() for HEAD, 204 and 304: a body after that is dropped.
    if (this.#swallowing || s.writableEnded || s.destroyed) return true;
    return s.write(chunk);
  }

  onComplete(): void {
    if (this.#done) return;
    if (this.#swallowing) {
      this.failure = 'status';
      this.#replayOnStable();
      return;
    }
    const s = this.#stream;
    if (!s.writableEnded && !s.destroyed) s.end();
    this.failure = this.status >= 500 ? 'status' : 'none';
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
    if (!this.#headersSent && this.#replay !== null && this.#sent !== null && (this.replayIfReceived || this.#abort === null || mapped.failure === 'connect')) {
      this.failure = this.#swallowing ? 'status' : mapped.failure;
      this.#ctx.onUpstreamError(this, mapped, err);
      this.#replayOnStable();
      return;
    }
    if (this.#headersSent) {
      // The answer had begun: the only honest signal left for the client is a reset stream.
      this.failure = 'stream';
      this.#stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    } else {
      this.failure = mapped.failure;
      this.#answerError(mapped);
    }
    this.#ctx.onUpstreamError(this, mapped, err);
    this.#finish();
  }

  /** The gateway's own answer to an upstream failure: the status and JSON body HTTP/1.1 clients get. */
  #answerError(mapped: MappedError): void {
    const s = this.#stream;
    if (s.destroyed || s.closed || s.headersSent) return;
    const body = errorBody(mapped.code, upstreamErrorMessage(mapped, this, this.#upstream.url), { route: this.route });
    s.respond({
      ':status': errorStatus(mapped.code),
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-rollgate-route': this.route,
      'x-rollgate-version': this.version,
      'x-request-id': this.requestId,
    });
    s.end(body);
  }

  /**
   * Records the candidate's failure (it still counts against the candidate), then sends the same
   * request to stable on this same exchange; the client gets stable's answer.
   */
  #replayOnStable(): void {
    const stable = this.#replay as Upstream;
    const sent = this.#sent as SentRequest;
    const headers = stable.snapshot === this.#upstream.snapshot ? sent.headers : repinned(sent.headers, this.#route.dataHeader, stable.snapshot);
    const path = stable.basePath + sent.path.slice(this.#upstream.basePath.length);
    const now = performance.now();
    this.latencyMs = now - this.startedAt;
    this.replayed = true;
    this.#inflight.remove(this);
    this.#ctx.sink(this);
    this.#upstream.release();
    stable.acquire();
    this.#inflight = this.#route.inflight.stable;
    this.#inflight.add(this);
    this.restartOnStable(stable.label, now, null);
    this.#upstream = stable;
    this.#replay = null;
    this.#swallowing = false;
    this.#abort = null;
    this.#resume = null;
    this.#dispatch(sent.method, path, headers, sent.body);
  }

  #clientClosed(): void {
    // An answer node ended at its head (HEAD, 204, 304) may close the stream before undici completes.
    const s = this.#stream;
    if (this.#done || (this.#headersSent && s.writableEnded && !s.aborted)) return;
    // The client reset the stream (or its connection went) before the answer ended.
    this.#clientGone = true;
    if (this.#abort !== null) this.#abort();
    else if (!this.#dispatched) {
      this.failure = 'aborted';
      this.#finish();
    }
  }

  #finish(): void {
    this.#done = true;
    this.latencyMs = performance.now() - this.startedAt;
    this.#inflight.remove(this);
    this.#ctx.sink(this);
    this.#upstream.release();
  }
}
