import type { ServerResponse } from 'node:http';
import { errorBody, errorStatus, type ErrorCode } from '../errors.js';
import type { FailureKind } from './outcome.js';
import { TRANSFER_CODING } from './headers.js';

export interface MappedError {
  failure: FailureKind;
  code: ErrorCode;
  /** What a person reads in the 502/504 body, after the route and version. */
  what: string;
}

const TABLE: Record<string, MappedError> = {
  UND_ERR_CONNECT_TIMEOUT: { failure: 'timeout', code: 'ROLLGATE_UPSTREAM_TIMEOUT', what: 'did not accept a connection in time' },
  UND_ERR_HEADERS_TIMEOUT: { failure: 'timeout', code: 'ROLLGATE_UPSTREAM_TIMEOUT', what: 'did not answer in time' },
  UND_ERR_BODY_TIMEOUT: { failure: 'timeout', code: 'ROLLGATE_UPSTREAM_TIMEOUT', what: 'stopped sending in the middle of its answer' },
  ECONNREFUSED: { failure: 'connect', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'refused the connection' },
  ENOTFOUND: { failure: 'connect', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'has a host name that does not resolve' },
  EAI_AGAIN: { failure: 'connect', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'has a host name that does not resolve' },
  EHOSTUNREACH: { failure: 'connect', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'is unreachable' },
  ENETUNREACH: { failure: 'connect', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'is unreachable' },
  ECONNRESET: { failure: 'reset', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'reset the connection' },
  EPIPE: { failure: 'reset', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'closed the connection' },
  UND_ERR_SOCKET: { failure: 'reset', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'closed the connection before answering' },
  UND_ERR_CLOSED: { failure: 'reset', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'pool is closed' },
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a body that does not match its content-length' },
  ERR_INVALID_CHAR: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a header the gateway cannot pass on' },
  ERR_HTTP_INVALID_HEADER_VALUE: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a header the gateway cannot pass on' },
  ERR_INVALID_HTTP_TOKEN: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a header the gateway cannot pass on' },
  // Passing an HTTP/1.1 answer on over HTTP/2: node refuses a repeated single-value field (two content-types).
  ERR_HTTP2_HEADER_SINGLE_VALUE: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a header the gateway cannot pass on' },
  ERR_HTTP2_INVALID_HEADER_VALUE: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a header the gateway cannot pass on' },
  ERR_HTTP2_INVALID_CONNECTION_HEADERS: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a header the gateway cannot pass on' },
  UND_ERR_INFO: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent an invalid answer' },
  UND_ERR_HEADERS_OVERFLOW: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent response headers over the size limit (16 KiB by default)' },
  [TRANSFER_CODING]: { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a Transfer-Encoding other than chunked' },
};

/**
 * undici's SocketError for an interim answer it refuses: a 100 Continue (the gateway never sends
 * `Expect` upstream) or a 101 to a request that asked for no upgrade. The socket is fine; the answer is not.
 */
const BAD_INTERIM = new Map<unknown, MappedError>([
  ['bad response', { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent a 100 Continue it was not asked for' }],
  ['bad upgrade', { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'switched protocols (101) unasked' }],
]);

const DEFAULT: MappedError = { failure: 'reset', code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', what: 'failed' };
const PROTOCOL: MappedError = { failure: 'protocol', code: 'ROLLGATE_UPSTREAM_ERROR', what: 'sent an invalid HTTP answer' };

/** Maps an undici or socket error to a failure kind and the client's 502/504 (one place for all). */
export function mapUpstreamError(err: unknown): MappedError {
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
  // undici's parser errors carry no code when llhttp's error number has no name.
  if (e?.name === 'HTTPParserError') return PROTOCOL;
  const code = e?.code;
  if (typeof code !== 'string') return DEFAULT;
  const interim = code === 'UND_ERR_SOCKET' ? BAD_INTERIM.get(e?.message) : undefined;
  if (interim !== undefined) return interim;
  if (Object.hasOwn(TABLE, code)) return TABLE[code] as MappedError;
  if (code.startsWith('HPE_')) return PROTOCOL;
  return DEFAULT;
}

/** What the 502/504 body says: the route, the version and its URL, and what went wrong. */
export function upstreamErrorMessage(mapped: MappedError, ex: { route: string; version: string }, upstreamUrl: string): string {
  return `route ${ex.route}: upstream ${ex.version} (${upstreamUrl}) ${mapped.what}`;
}

/**
 * The client's answer to an upstream failure (502/504 with the JSON error body naming the route
 * and version), unless the response already started or the client is gone.
 */
export function writeUpstreamError(res: ServerResponse, mapped: MappedError, ex: { route: string; version: string; requestId: string }, upstreamUrl: string, draining: boolean): void {
  if (res.headersSent || res.destroyed) return;
  const body = errorBody(mapped.code, upstreamErrorMessage(mapped, ex, upstreamUrl), { route: ex.route });
  res.writeHead(errorStatus(mapped.code), [
    'content-type', 'application/json; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'x-rollgate-route', ex.route,
    'x-rollgate-version', ex.version,
    'x-request-id', ex.requestId,
    ...(draining ? ['connection', 'close'] : []),
  ]);
  res.end(body);
}
