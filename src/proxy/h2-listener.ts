import type { Server } from 'node:http';
import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import tlsLib, { type TLSSocket } from 'node:tls';
import { answerPlainOnTls } from '../client-error.js';
import type { GatewayConfig, TlsConfig } from '../config/types.js';

/** The connection preface every HTTP/2 client with prior knowledge starts with (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Streams one client may have open at once; more are refused (RST_STREAM REFUSED_STREAM). */
export const H2_MAX_CONCURRENT_STREAMS = 100;
/** The largest header block accepted, as for HTTP/1.1 heads (16 KiB). */
export const H2_MAX_HEADER_LIST_SIZE = 16 * 1024;

export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, remoteAddress: string | undefined) => void;

/** The HTTP/2 side of the data plane, beside the HTTP/1.1 server on the same port. */
export interface H2Side {
  readonly server: Http2Server;
  /** Sends GOAWAY to every client: streams in flight finish, no new ones open. */
  closeSessions(): void;
  destroySessions(): void;
}

/**
 * Makes the HTTP/1.1 server take HTTP/2 on its own port as well. In cleartext (h2c), each new
 * connection's first bytes are read: the HTTP/2 preface hands the socket to an HTTP/2 server,
 * anything else goes to the HTTP/1.1 server as before. With `listen.tls`, every connection is
 * TLS and ALPN decides: `h2` goes to the HTTP/2 server, `http/1.1` (or no ALPN) to the HTTP/1.1
 * one. Once per connection, nothing per request. A connection that sends nothing (or does not
 * finish its TLS handshake) within listen.headersTimeout is closed.
 */
export function acceptH2c(server: Server, listen: GatewayConfig['listen'], onStream: StreamHandler): H2Side {
  const h2 = http2.createServer({
    settings: { maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS, maxHeaderListSize: H2_MAX_HEADER_LIST_SIZE, enablePush: false },
    maxHeaderListPairs: 256,
    maxSessionMemory: 16,
  });
  const sessions = new Set<Http2Session>();
  h2.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined);
    session.setTimeout(listen.idleTimeoutMs, () => session.close());
  });
  h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => undefined);
    onStream(stream, headers, stream.session?.socket?.remoteAddress);
  });
  const http1 = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const toHttp1 = (socket: Socket): void => {
    for (const l of http1) l.call(server, socket);
  };
  const toH2 = (socket: Socket): void => {
    // The HTTP/1.1 server allows half-open sockets; HTTP/2 has no use for them. A client whose
    // connection ended (FIN) is gone: the socket closes, its session and every stream with it.
    // Left half-open, a stream whose RST_STREAM never came stayed in flight for good.
    socket.allowHalfOpen = false;
    h2.emit('connection', socket);
  };
  const tls = listen.tls ?? null;
  const onConnection = tls !== null ? tlsConnections(tls, listen.headersTimeoutMs, toH2, toHttp1) : h2cConnections(listen.headersTimeoutMs, toH2, toHttp1);
  server.on('connection', onConnection);
  return {
    server: h2,
    closeSessions: () => sessions.forEach((s) => s.close()),
    destroySessions: () => sessions.forEach((s) => s.destroy()),
  };
}

/** Cleartext: the HTTP/2 preface (prior knowledge) or HTTP/1.1. */
function h2cConnections(timeoutMs: number, toH2: (s: Socket) => void, toHttp1: (s: Socket) => void): (socket: Socket) => void {
  const classify = (buf: Buffer): boolean | null => {
    const n = Math.min(buf.length, PREFACE.length);
    const prefix = buf.compare(PREFACE, 0, n, 0, n) === 0;
    return prefix && n < PREFACE.length ? null : prefix;
  };
  return (socket) =>
    sniff(socket, timeoutMs, classify, (isH2) => {
      if (isH2) toH2(socket);
      else {
        toHttp1(socket);
        socket.resume();
      }
    });
}

/** The first byte of every TLS connection: a handshake record (RFC 8446 §5.1). */
const TLS_HANDSHAKE = 0x16;

/**
 * TLS (`listen.tls`): the handshake offers h2 and http/1.1 by ALPN. A connection that starts
 * with anything but a TLS record (plain HTTP sent to the TLS port) is answered 400 in cleartext,
 * naming the cause, and closed; a failed or unfinished handshake closes the connection.
 */
function tlsConnections(config: TlsConfig, timeoutMs: number, toH2: (s: Socket) => void, toHttp1: (s: Socket) => void): (socket: Socket) => void {
  const server = tlsLib.createServer({ cert: config.cert, key: config.key, ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: timeoutMs });
  server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') toH2(socket);
    else toHttp1(socket);
  });
  return (socket) =>
    sniff(
      socket,
      timeoutMs,
      (buf) => buf[0] === TLS_HANDSHAKE,
      (isTls, first) => {
        // The TLS socket reads what was put back itself: resuming here would take it from it.
        if (isTls) server.emit('connection', socket);
        else answerPlainOnTls(socket, first);
      },
    );
}

/**
 * Reads a new connection's first bytes until `classify` can tell (null: not yet), then puts them
 * back and hands the paused socket on. A connection that ends first is closed at once.
 */
function sniff(socket: Socket, timeoutMs: number, classify: (buf: Buffer) => boolean | null, done: (verdict: boolean, first: Buffer) => void): void {
  let seen: Buffer | null = null;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer): void => {
    const buf = seen === null ? chunk : Buffer.concat([seen, chunk]);
    const verdict = classify(buf);
    if (verdict === null) {
      seen = buf; // not enough to tell: wait for more
      return;
    }
    clearTimeout(timer);
    socket.off('data', onData).off('close', onClose).off('end', onEnd);
    socket.pause();
    socket.unshift(buf);
    done(verdict, buf);
  };
  const onClose = (): void => clearTimeout(timer);
  // The server allows half-open sockets: a client that connects and leaves before sending
  // anything (a port probe) would otherwise stay until the timer, holding up a shutdown.
  const onEnd = (): void => {
    socket.destroy();
  };
  socket.on('data', onData).on('close', onClose).on('end', onEnd).on('error', () => undefined);
}

/** Request headers never forwarded upstream: pseudo-headers are remade, these are per connection. */
const REQUEST_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** The headers of a call to send upstream: the client's minus the dropped, with the forwarding ones set. */
export function h2RequestHeaders(headers: IncomingHttpHeaders, requestId: string, remoteAddress: string | undefined, dataHeader: string, authority: string, scheme: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 || REQUEST_DROPPED.has(name) || name === dataHeader) continue;
    if (name === 'te' && headers.te !== 'trailers') continue;
    out[name] = headers[name];
  }
  const xff = headers['x-forwarded-for'];
  const client = remoteAddress ?? 'unknown';
  out['x-forwarded-for'] = typeof xff === 'string' && xff !== '' ? `${xff}, ${client}` : client;
  out['x-forwarded-proto'] = headers[':scheme'] === 'https' ? 'https' : 'http';
  const host = headers[':authority'];
  if (typeof host === 'string') out['x-forwarded-host'] = host;
  out['x-request-id'] = requestId;
  out[':method'] = headers[':method'] ?? 'POST';
  out[':authority'] = authority;
  out[':scheme'] = scheme;
  return out;
}
