import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): meaningful for one connection only, so never forwarded
 * in either direction. Proxy-Authenticate/-Authorization and Trailer are the older RFC 2616
 * §13.5.1 list, still honoured by nginx and haproxy. `host` is set by the upstream pool and
 * `expect` is answered by Node's server itself.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

const REQUEST_ONLY_DROPPED = new Set(['host', 'expect']);

export const REQUEST_ID = 'x-request-id';

/** The only Transfer-Encoding accepted, from clients and upstreams: `chunked` alone, in any case, with optional whitespace. */
export const CHUNKED = /^[ \t]*chunked[ \t]*$/i;

/** Thrown for an answer framed with a transfer coding the gateway would pass on undone. */
export const TRANSFER_CODING = 'ERR_UPSTREAM_TRANSFER_CODING';

const COMMON_CONNECTION = /^(?:keep-alive|close)$/i;

/** The header names a Connection header lists (RFC 9110 §7.6.1), lowercased; null when none. */
export function connectionTokens(value: string | undefined): Set<string> | null {
  if (value === undefined) return null;
  // Nearly every Connection header is one of these, which name no header: no split, no Set.
  if ((value.length === 10 || value.length === 5) && COMMON_CONNECTION.test(value)) return null;
  let tokens: Set<string> | null = null;
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive') continue;
    (tokens ??= new Set()).add(t);
  }
  return tokens;
}

/**
 * The request headers to send upstream, as undici's flat [name, value, ...] array: the client's
 * raw headers minus hop-by-hop ones, with x-request-id and X-Forwarded-* set, and last the route's
 * data header with the serving version's snapshot id (SPEC §9 pinning). A client's own data
 * header is dropped: which data a version reads is the gateway's to say, not the caller's.
 */
export function upstreamRequestHeaders(
  raw: string[],
  connection: string | undefined,
  requestId: string,
  hasRequestId: boolean,
  clientAddress: string | undefined,
  scheme: 'http' | 'https',
  dataHeader: string,
  snapshot: string | null,
): string[] {
  const named = connectionTokens(connection);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let host: string | undefined;
  let proto = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (named !== null && named.has(lower))) continue;
    if (lower === dataHeader) continue;
    if (REQUEST_ONLY_DROPPED.has(lower)) {
      if (lower === 'host') host = raw[i + 1];
      continue;
    }
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? raw[i + 1] : `${forwardedFor}, ${raw[i + 1]}`;
      continue;
    }
    if (lower === 'x-forwarded-proto') proto = true;
    out.push(name, raw[i + 1] as string);
  }
  if (clientAddress !== undefined) {
    out.push('x-forwarded-for', forwardedFor === undefined ? clientAddress : `${forwardedFor}, ${clientAddress}`);
  } else if (forwardedFor !== undefined) {
    out.push('x-forwarded-for', forwardedFor);
  }
  if (host !== undefined) out.push('x-forwarded-host', host);
  if (!proto) out.push('x-forwarded-proto', scheme);
  if (!hasRequestId) out.push(REQUEST_ID, requestId);
  if (snapshot !== null) out.push(dataHeader, snapshot);
  return out;
}

/**
 * The same request's headers for another version (a replay on stable, a shadow copy): a new
 * array whose data header pair, always last, carries `snapshot` instead (or is gone with null).
 */
export function repinned(headers: readonly string[], dataHeader: string, snapshot: string | null): string[] {
  const n = headers.length;
  const out = n >= 2 && headers[n - 2] === dataHeader ? headers.slice(0, n - 2) : headers.slice();
  if (snapshot !== null) out.push(dataHeader, snapshot);
  return out;
}

const CHUNKED_BYTES = Buffer.from('chunked');

function checkTransferCoding(value: Buffer): void {
  if (value.equals(CHUNKED_BYTES)) return;
  const text = value.toString('latin1');
  if (!CHUNKED.test(text)) throw Object.assign(new Error(`transfer-encoding: ${text}`), { code: TRANSFER_CODING });
}

/**
 * The response headers for the client from undici's raw Buffer pairs, minus hop-by-hop ones and
 * any x-rollgate-* / x-request-id the upstream set (ours win), as a flat array for writeHead.
 * Throws (code TRANSFER_CODING) on a Transfer-Encoding other than `chunked`: undici undoes only
 * the chunking, so a gzip transfer coding would reach the client as bytes no header explains.
 */
export function clientResponseHeaders(
  raw: Buffer[],
  route: string,
  version: string,
  requestId: string,
  closing: boolean,
): string[] {
  let named: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const b = raw[i] as Buffer;
    if (b.length === 10 && b.toString('latin1').toLowerCase() === 'connection') {
      const tokens = connectionTokens((raw[i + 1] as Buffer).toString('latin1'));
      if (tokens !== null) {
        named ??= new Set();
        for (const t of tokens) named.add(t);
      }
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (named !== null && named.has(lower))) {
      if (lower === 'transfer-encoding') checkTransferCoding(raw[i + 1] as Buffer);
      continue;
    }
    if (lower === REQUEST_ID || lower === 'x-rollgate-route' || lower === 'x-rollgate-version') continue;
    out.push(name, (raw[i + 1] as Buffer).toString('latin1'));
  }
  out.push('x-rollgate-route', route, 'x-rollgate-version', version, REQUEST_ID, requestId);
  if (closing) out.push('connection', 'close');
  return out;
}

/**
 * The flat [name, value, ...] array of an HTTP/2 request's headers as HTTP/1.1 has them: the
 * pseudo-headers dropped but `:authority`, which is the Host (RFC 9113 §8.3.1). Node already
 * joined repeated fields, cookies with "; " as §8.2.3 asks before passing them to HTTP/1.1.
 */
export function flatHeaders(headers: IncomingHttpHeaders): string[] {
  const raw: string[] = [];
  const authority = headers[':authority'];
  if (typeof authority === 'string') raw.push('host', authority);
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || name.charCodeAt(0) === 58 || (name === 'host' && authority !== undefined)) continue;
    if (typeof v === 'string') raw.push(name, v);
    else for (const one of v) raw.push(name, one);
  }
  return raw;
}

/**
 * The answer's head for the HTTP/2 client: what HTTP/1.1 clients get (hop-by-hop fields dropped,
 * the gateway's own added), lowercased as HTTP/2 requires (RFC 9113 §8.2.2), repeated fields as
 * lists. Throws as clientResponseHeaders does; node's respond() throws on a repeated single-value field.
 */
export function h2ResponseHeaders(status: number, raw: Buffer[], ex: { route: string; version: string; requestId: string }): OutgoingHttpHeaders {
  const flat = clientResponseHeaders(raw, ex.route, ex.version, ex.requestId, false);
  const out: OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    if (name === 'http2-settings') continue; // §8.2.2: connection-specific, never sent in HTTP/2
    const value = flat[i + 1] as string;
    const had = out[name];
    if (had === undefined) out[name] = value;
    else if (Array.isArray(had)) had.push(value);
    else out[name] = [String(had), value];
  }
  return out;
}

const EVENT_STREAM = Buffer.from('text/event-stream');

/**
 * Whether an answer streams: an event stream, or a body without content-length (chunked).
 * Looks at header names by length first, so most headers cost one comparison.
 */
export function isStreamingAnswer(raw: Buffer[]): boolean {
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as Buffer;
    if (name.length === 14 && name.toString('latin1').toLowerCase() === 'content-length') hasLength = true;
    else if (name.length === 12 && name.toString('latin1').toLowerCase() === 'content-type') {
      const v = raw[i + 1] as Buffer;
      if (v.length >= EVENT_STREAM.length && v.subarray(0, EVENT_STREAM.length).equals(EVENT_STREAM)) return true;
    }
  }
  return !hasLength;
}
