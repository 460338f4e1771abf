import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { ErrorCode } from '../errors.js';
import type { FailureKind, Outcome, OutcomeSink, VersionRole } from './outcome.js';
import type { Upstream } from './upstream.js';
import { CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, closeFrame, FrameWatch } from './ws-frames.js';
import { clientAnswerHead, declaredLength, parseAnswerHead, refuseUpgrade, type AnswerHead } from './ws-head.js';

/** How long a close waits for the frame in progress to end before it cuts the connection. */
export const CLOSE_WAIT_MS = 1_000;
/** How long a closed side may take to finish before its socket is destroyed. */
const LINGER_MS = 2_000;

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

export interface WsStart {
  route: string;
  role: VersionRole;
  upstream: Upstream;
  requestId: string;
  startedAt: number;
  timeouts: { connectMs: number; responseMs: number };
  sink: OutcomeSink;
  /** Called once the connection's outcome went to the sink. */
  onEnd(c: WsConnection): void;
  /** retryOnStable: opens the same handshake on stable after this one failed unseen; null: no retry. */
  retry: (() => void) | null;
}

/**
 * One proxied WebSocket connection: the handshake forwarded to the picked version, then bytes
 * piped both ways with backpressure while both directions' frame headers are watched. Ends with
 * one outcome: a handshake without 101 (5xx, none at all, not HTTP) or an upstream that closed
 * with 1011 or without a close frame is a failure; a 4xx is the client's; anything else is fine.
 */
export class WsConnection implements Outcome {
  readonly route: string;
  readonly role: VersionRole;
  readonly version: string;
  readonly requestId: string;
  readonly upstream: Upstream;
  startedAt: number;
  status = 0;
  failure: FailureKind = 'none';
  latencyMs = 0;
  ttfbMs = Number.NaN;
  readonly streaming = false;
  replayed = false;
  readonly #s: WsStart;
  readonly #client: Socket;
  #up: Socket | null = null;
  #received: Buffer | null = null;
  #open = false;
  #decided = false;
  #ended = false;
  #closing: number | null = null;
  /** The client sent a close frame before the upstream did: the upstream's is its answer. */
  #clientClosedFirst = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #fromUp = new FrameWatch();
  readonly #fromClient = new FrameWatch();

  constructor(s: WsStart, client: Socket) {
    this.#s = s;
    this.route = s.route;
    this.role = s.role;
    this.version = s.upstream.label;
    this.requestId = s.requestId;
    this.upstream = s.upstream;
    this.startedAt = s.startedAt;
    this.#client = client;
  }

  /** Bytes written to either socket and not yet handed to the kernel. */
  queuedBytes(): number {
    return this.#client.writableLength + (this.#up?.writableLength ?? 0);
  }

  /** Opens the upstream connection and sends it the handshake and any bytes the client sent after it. */
  start(target: URL, request: string, early: Buffer): void {
    const client = this.#client;
    this.upstream.acquire();
    client.pause();
    client.on('error', () => this.#clientGone());
    client.on('end', () => this.#clientGone());
    client.on('close', () => this.#clientGone());
    const port = Number(target.port) || (target.protocol === 'https:' ? 443 : 80);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const up = target.protocol === 'https:' ? tls.connect({ host, port, servername: net.isIP(host) === 0 ? host : undefined, ALPNProtocols: ['http/1.1'] }) : net.connect({ host, port });
    this.#up = up;
    up.setNoDelay(true);
    this.#arm(this.#s.timeouts.connectMs);
    up.once(target.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      this.#arm(this.#s.timeouts.responseMs);
      up.write(request);
      if (early.length > 0) up.write(early);
    });
    up.on('data', (c: Buffer) => (this.#open ? this.#relayDown(c) : this.#handshakeData(c)));
    up.on('error', (err: NodeJS.ErrnoException) => this.#upGone(CONNECT_ERRORS.has(err.code ?? '') ? 'connect' : 'reset'));
    up.on('end', () => this.#upGone('reset'));
    up.on('close', () => this.#upGone('reset'));
  }

  /**
   * Closes the client with `code` at a frame boundary (waiting up to CLOSE_WAIT_MS for the frame
   * in progress to end) and the upstream side with it; not a failure. A connection still in its
   * handshake is closed as soon as it opens.
   */
  close(code: number): void {
    if (this.#closing !== null || this.#ended) return;
    this.#closing = code;
    if (this.#open) this.#closeAtBoundary();
  }

  #closeAtBoundary(): void {
    if (this.#fromUp.atBoundary) this.#sendClose();
    else this.#arm(CLOSE_WAIT_MS);
  }

  #sendClose(): void {
    this.#decide('none');
    clearTimeout(this.#timer);
    this.#client.end(closeFrame(this.#closing ?? CLOSE_GOING_AWAY));
    this.#up?.destroy();
    this.#linger();
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#expired(), ms);
  }

  #expired(): void {
    if (this.#open || this.#decided) {
      // A close that waited for a frame boundary in vain, or an answer body that took too long: cut both sides.
      this.#decide('none');
      this.#destroyBoth();
      return;
    }
    this.#handshakeFailed('timeout', 'ROLLGATE_UPSTREAM_TIMEOUT', `upstream ${this.version} of route ${this.route} did not answer the WebSocket handshake in time`);
  }

  #handshakeData(chunk: Buffer): void {
    if (this.#decided) return;
    const received = this.#received === null ? chunk : Buffer.concat([this.#received, chunk]);
    const head = parseAnswerHead(received);
    if (head === null) {
      this.#received = received;
      return;
    }
    this.#received = null;
    if (head instanceof Error) {
      this.#handshakeFailed('protocol', 'ROLLGATE_UPSTREAM_ERROR', `upstream ${this.version} of route ${this.route} answered the WebSocket handshake with something that is not HTTP/1.1: ${head.message}`);
      return;
    }
    clearTimeout(this.#timer);
    this.status = head.status;
    this.ttfbMs = performance.now() - this.startedAt;
    this.latencyMs = this.ttfbMs;
    if (head.status === 101) this.#opened(head);
    else this.#passAnswer(head);
  }

  #opened(head: AnswerHead): void {
    const client = this.#client;
    const up = this.#up as Socket;
    this.#open = true;
    client.write(clientAnswerHead(head, this.route, this.version, this.requestId));
    client.on('data', (c: Buffer) => this.#relayUp(c));
    client.on('drain', () => up.resume());
    up.on('drain', () => client.resume());
    if (head.rest.length > 0) this.#relayDown(head.rest);
    client.resume();
    if (this.#closing !== null && !this.#ended) this.#closeAtBoundary();
  }

  /** An answer other than 101 goes to the client as it came, then both sides close. */
  #passAnswer(head: AnswerHead): void {
    const s = head.status;
    if (s >= 500 && this.#retried('status')) return;
    // 4xx is the client's (a missing subprotocol, a bad key, no auth), as on every HTTP answer.
    this.#decide(s >= 500 ? 'status' : s >= 400 ? 'none' : 'protocol');
    const client = this.#client;
    const up = this.#up as Socket;
    let left = declaredLength(head);
    client.write(clientAnswerHead(head, this.route, this.version, this.requestId));
    const pass = (c: Buffer): void => {
      const part = left === null || c.length <= left ? c : c.subarray(0, left);
      if (left !== null) left -= part.length;
      if (part.length > 0 && !client.write(part)) up.pause();
      if (left === 0) this.#finishBoth();
    };
    up.removeAllListeners('data');
    up.on('data', pass);
    client.on('drain', () => up.resume());
    this.#arm(this.#s.timeouts.responseMs);
    if (head.rest.length > 0 || left === 0) pass(head.rest);
  }

  #handshakeFailed(kind: FailureKind, code: ErrorCode, message: string): void {
    if (this.#decided || this.#retried(kind)) return;
    this.#decide(kind);
    this.latencyMs = performance.now() - this.startedAt;
    refuseUpgrade(this.#client, code, message, ['x-rollgate-route', this.route, 'x-rollgate-version', this.version, 'x-request-id', this.requestId]);
    this.#up?.destroy();
    this.#end();
  }

  /** A failed candidate handshake the client saw nothing of, replayed on stable: true when it was. */
  #retried(kind: FailureKind): boolean {
    const retry = this.#s.retry;
    if (retry === null || this.#ended || this.#client.destroyed) return false;
    this.#decide(kind);
    this.replayed = true;
    this.latencyMs = performance.now() - this.startedAt;
    this.#up?.destroy();
    this.#end();
    retry();
    return true;
  }

  #relayDown(chunk: Buffer): void {
    const client = this.#client;
    if (this.#closing !== null) {
      const n = this.#fromUp.feed(chunk, true);
      if (n > 0) client.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (this.#fromUp.atBoundary) this.#sendClose();
      return;
    }
    this.#fromUp.feed(chunk);
    if (!client.write(chunk)) this.#up?.pause();
  }

  #relayUp(chunk: Buffer): void {
    this.#fromClient.feed(chunk);
    if (this.#fromClient.closeCode !== null && this.#fromUp.closeCode === null) this.#clientClosedFirst = true;
    if (!(this.#up as Socket).write(chunk)) this.#client.pause();
  }

  /** The upstream side ended, broke or closed. */
  #upGone(kind: FailureKind): void {
    if (!this.#open) {
      if (this.#decided) this.#finishBoth();
      else this.#handshakeFailed(kind, 'ROLLGATE_UPSTREAM_UNAVAILABLE', `upstream ${this.version} of route ${this.route} is unavailable: the WebSocket handshake got no answer`);
      return;
    }
    // Without a close frame the upstream dropped the connection; #decide sees a 1011.
    if (!this.#decided) this.#decide(this.#fromUp.closeCode === null ? 'stream' : 'none');
    this.#finishBoth();
  }

  /** The client side ended, broke or closed: never a failure of the version. */
  #clientGone(): void {
    if (!this.#decided) this.#decide(this.#open ? 'none' : 'aborted');
    this.#finishBoth();
  }

  #decide(kind: FailureKind): void {
    if (this.#decided) return;
    this.#decided = true;
    this.failure = kind;
    // An upstream that closed with 1011 failed, whoever cut the TCP connection after it.
    if (kind === 'none' && this.#fromUp.closeCode === CLOSE_INTERNAL_ERROR && this.#closing === null && !this.#clientClosedFirst) this.failure = 'stream';
  }

  /** Ends both sides (flushing what is queued), then destroys them after LINGER_MS. */
  #finishBoth(): void {
    if (this.#ended) return;
    this.#client.end();
    this.#up?.end();
    this.#linger();
    this.#end();
  }

  #linger(): void {
    const timer = setTimeout(() => this.#destroyBoth(), LINGER_MS);
    timer.unref();
    this.#end();
  }

  #destroyBoth(): void {
    this.#client.destroy();
    this.#up?.destroy();
    this.#end();
  }

  /** Hands the outcome to the sink, once. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    if (this.#open) {
      // Judged at its end, as of now: the latency is the handshake's.
      this.startedAt = performance.now() - this.latencyMs;
    } else if (this.latencyMs === 0) this.latencyMs = performance.now() - this.startedAt;
    this.#s.sink(this);
    this.upstream.release();
    this.#s.onEnd(this);
  }
}
