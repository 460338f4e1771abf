import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ExchangeContext, ExchangeRoute } from './exchange-parts.js';
import { ExchangeRecord } from './exchange-record.js';
import type { FailureKind } from './outcome.js';
import type { InFlight } from './inflight.js';
import type { Upstream } from './upstream.js';
import { GRPC, answerH2, endWithTrailers, grpcFailure } from './h2-answers.js';

/** Response headers never passed to the client: the pseudo one is set by respond(). */
const RESPONSE_DROPPED = new Set([':status', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'x-rollgate-route', 'x-rollgate-version']);

/** Which version a call goes to, and what it may be replayed with. */
export interface H2CallPlan {
  toCandidate: boolean;
  upstream: Upstream;
  replay: Upstream | null;
  /** Request bodies up to this many bytes are kept for the replay. */
  limit: number;
  responseMs: number;
  requestId: string;
  startedAt: number;
}

/**
 * One HTTP/2 stream proxied to an h2c/h2 version: a gRPC call (judged by grpc-status) or a plain
 * HTTP/2 request (judged by :status). Both bodies are piped with backpressure. With a replay
 * target (retryOnStable), the candidate's head is held until its first DATA or its trailers, and
 * a failure before any DATA is sent again to stable with the request body kept so far.
 */
export class H2Exchange extends ExchangeRecord {
  readonly #ctx: ExchangeContext;
  readonly #route: ExchangeRoute;
  readonly #client: ServerHttp2Stream;
  readonly #grpc: boolean;
  readonly #request: OutgoingHttpHeaders;
  readonly #path: string;
  #upstream: Upstream;
  #replay: Upstream | null;
  #inflight: InFlight;
  #up: ClientHttp2Stream | null = null;
  /** The request body so far, kept for a replay; null once over the limit (or no replay). */
  #kept: Buffer[] | null;
  #keptBytes = 0;
  readonly #limit: number;
  readonly #responseMs: number;
  #clientEnded = false;
  #head: IncomingHttpHeaders | null = null;
  #trailers: IncomingHttpHeaders | null = null;
  #timer: NodeJS.Timeout | null = null;
  #done = false;

  constructor(ctx: ExchangeContext, route: ExchangeRoute, client: ServerHttp2Stream, grpc: boolean, request: OutgoingHttpHeaders, path: string, call: H2CallPlan) {
    super(route.name, call.toCandidate ? 'candidate' : 'stable', call.upstream.label, call.startedAt, call.requestId, null);
    this.#ctx = ctx;
    this.#route = route;
    this.#client = client;
    this.#grpc = grpc;
    this.#request = request;
    this.#path = path;
    this.#upstream = call.upstream;
    this.#replay = call.replay;
    this.#limit = call.limit;
    this.#responseMs = call.responseMs;
    this.#kept = call.replay === null ? null : [];
    this.streaming = true;
    this.#inflight = call.toCandidate ? route.inflight.candidate : route.inflight.stable;
    this.#inflight.add(this);
    call.upstream.acquire();
  }

  start(): void {
    const c = this.#client;
    c.on('data', (chunk: Buffer) => this.#clientData(chunk));
    c.on('end', () => {
      this.#clientEnded = true;
      this.#up?.end();
    });
    c.on('close', () => this.#clientClosed());
    c.on('error', () => undefined);
    c.on('drain', () => this.#up?.resume());
    // A stream can arrive already closed (its session went at once): its 'close' has passed.
    if (c.closed || c.destroyed) {
      this.#clientClosed();
      return;
    }
    this.#send();
  }

  get upstreamUrl(): string {
    return this.#upstream.url;
  }

  #send(): void {
    const u = this.#upstream;
    const session = u.h2?.session() ?? null;
    if (session === null) {
      this.#fail('connect', null);
      return;
    }
    const headers: OutgoingHttpHeaders = { ...this.#request, ':path': u.basePath + this.#path };
    if (u.snapshot !== null) headers[this.#route.dataHeader] = u.snapshot;
    let up: ClientHttp2Stream;
    try {
      up = session.request(headers);
    } catch {
      this.#fail('connect', null);
      return;
    }
    this.#up = up;
    up.on('response', (h) => this.#response(up, h));
    up.on('data', (chunk: Buffer) => this.#data(up, chunk));
    up.on('trailers', (t: IncomingHttpHeaders) => {
      if (up === this.#up) this.#trailers = t;
    });
    up.on('end', () => this.#end(up));
    up.on('error', () => undefined);
    up.on('close', () => this.#upClosed(up, u.h2 !== null && u.h2.connected(session)));
    up.on('drain', () => {
      if (up === this.#up) this.#client.resume();
    });
    this.#timer = setTimeout(() => this.#fail('timeout', up), this.#responseMs);
    if (this.#kept !== null) for (const chunk of this.#kept) up.write(chunk);
    if (this.#clientEnded) up.end();
  }

  #clientData(chunk: Buffer): void {
    if (this.#kept !== null) {
      this.#keptBytes += chunk.length;
      if (this.#keptBytes <= this.#limit) this.#kept.push(chunk);
      else this.#kept = null;
    }
    const up = this.#up;
    if (up !== null && !up.destroyed && !up.write(chunk)) this.#client.pause();
  }

  /** Whether a failure now can still go to stable instead: nothing sent, the body kept whole. */
  get #canReplay(): boolean {
    return this.#replay !== null && this.#kept !== null && !this.#client.headersSent;
  }

  #response(up: ClientHttp2Stream, head: IncomingHttpHeaders): void {
    if (up !== this.#up) return;
    this.#clearTimer();
    this.#head = head;
    this.status = Number(head[':status']) || 0;
    // A trailers-only gRPC answer, or a head held for a possible replay, waits for more.
    if (this.#grpc && head['grpc-status'] !== undefined) return;
    if (this.#replay === null) this.#respond(head);
  }

  #respond(head: IncomingHttpHeaders, endStream = false): void {
    const out: OutgoingHttpHeaders = { 'x-rollgate-route': this.route, 'x-rollgate-version': this.version, 'x-request-id': this.requestId };
    for (const name in head) if (!RESPONSE_DROPPED.has(name)) out[name] = head[name];
    out[':status'] = this.status;
    if (this.#client.destroyed || this.#client.headersSent) return;
    this.#client.respond(out, endStream ? { endStream: true } : { waitForTrailers: this.#grpc });
  }

  #data(up: ClientHttp2Stream, chunk: Buffer): void {
    if (up !== this.#up || this.#done) return;
    if (Number.isNaN(this.ttfbMs)) {
      this.ttfbMs = performance.now() - this.startedAt;
      if (!this.#grpc && this.status >= 500 && this.#canReplay) {
        this.failure = 'status';
        this.#replayOnStable(up);
        return;
      }
      if (this.#head !== null) this.#respond(this.#head);
    }
    if (!this.#client.write(chunk)) up.pause();
  }

  #end(up: ClientHttp2Stream): void {
    if (up !== this.#up || this.#done) return;
    const now = performance.now();
    if (Number.isNaN(this.ttfbMs)) this.ttfbMs = now - this.startedAt;
    const head = this.#head ?? {};
    if (this.#grpc) {
      const code = Number((this.#trailers ?? head)['grpc-status']);
      if (Number.isNaN(code) || grpcFailure(code)) this.failure = 'status';
    } else if (this.status >= 500) this.failure = 'status';
    if (this.failure !== 'none' && this.#canReplay) {
      this.#replayOnStable(up);
      return;
    }
    const c = this.#client;
    if (!c.headersSent) this.#respond(head, this.#grpc ? this.#trailers === null : true);
    if (this.#grpc && this.#trailers !== null) endWithTrailers(c, trailersOf(this.#trailers));
    else if (this.#grpc && !c.writableEnded && c.headersSent) endWithTrailers(c, { 'grpc-status': String(GRPC.INTERNAL), 'grpc-message': 'upstream sent no grpc-status' });
    else if (!c.writableEnded) c.end();
    this.#finish(now);
  }

  #upClosed(up: ClientHttp2Stream, connected: boolean): void {
    if (up !== this.#up || this.#done) return;
    // Closed without a clean end: reset by the upstream, or its session failed (or never connected).
    this.#fail(this.#head === null && !connected ? 'connect' : 'reset', up);
  }

  #fail(kind: FailureKind, up: ClientHttp2Stream | null): void {
    if (this.#done || (up !== null && up !== this.#up)) return;
    this.#clearTimer();
    this.failure = kind;
    if (this.#canReplay) {
      this.#replayOnStable(up);
      return;
    }
    up?.close(constants.NGHTTP2_CANCEL);
    const what = kind === 'timeout' ? 'did not answer in time' : kind === 'connect' ? 'cannot be reached' : 'reset the call';
    const message = `upstream ${this.version} of route ${this.route} ${what}`;
    const code = kind === 'timeout' ? GRPC.DEADLINE_EXCEEDED : GRPC.UNAVAILABLE;
    answerH2(this.#client, this.#grpc, code, kind === 'timeout' ? 'ROLLGATE_UPSTREAM_TIMEOUT' : 'ROLLGATE_UPSTREAM_UNAVAILABLE', message, { 'x-rollgate-route': this.route, 'x-rollgate-version': this.version });
    this.#finish(performance.now());
  }

  #replayOnStable(up: ClientHttp2Stream | null): void {
    const stable = this.#replay as Upstream;
    this.#replay = null;
    up?.close(constants.NGHTTP2_CANCEL);
    const now = performance.now();
    this.latencyMs = now - this.startedAt;
    this.replayed = true;
    this.#inflight.remove(this);
    this.#ctx.sink(this);
    this.#upstream.release();
    stable.acquire();
    this.#upstream = stable;
    this.#inflight = this.#route.inflight.stable;
    this.#inflight.add(this);
    this.restartOnStable(stable.label, now, null);
    this.streaming = true;
    this.#head = null;
    this.#trailers = null;
    this.#send();
  }

  #clientClosed(): void {
    if (this.#done) return;
    // The client reset the stream (or its connection went) before the answer ended.
    this.#clearTimer();
    this.#up?.close(constants.NGHTTP2_CANCEL);
    this.failure = 'aborted';
    this.#finish(performance.now());
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #finish(now: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    this.latencyMs = now - this.startedAt;
    this.#inflight.remove(this);
    this.#ctx.sink(this);
    this.#upstream.release();
  }
}

function trailersOf(t: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in t) if (name.charCodeAt(0) !== 58) out[name] = t[name];
  return out;
}
