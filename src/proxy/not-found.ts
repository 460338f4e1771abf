import type { ServerResponse } from 'node:http';
import { errorBody, errorStatus, type ErrorCode } from '../errors.js';

// Absolute-form targets (`GET http://host/path`) are allowed by RFC 9112 §3.2.2; route on the path.
export function originForm(target: string): string {
  try {
    const u = new URL(target);
    return u.pathname + u.search;
  } catch {
    return '/';
  }
}

export function notFound(res: ServerResponse, url: string, closing: boolean): void {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const body = errorBody('ROLLGATE_NO_ROUTE', `no route matches path ${path.slice(0, 200)}`);
  res.writeHead(404, [
    'content-type', 'application/json; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    ...(closing ? ['connection', 'close'] : []),
  ]);
  res.end(body);
}


/** A refusal before routing: 400 with the project's error body, and the connection closed. */
function refuse(res: ServerResponse, code: ErrorCode, message: string): void {
  const body = errorBody(code, message);
  res.shouldKeepAlive = false;
  res.writeHead(errorStatus(code), ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'connection', 'close']);
  res.end(body);
}

/** A request whose framing two parsers could read differently (RFC 9112 §6): refused, never forwarded. */
export function badFraming(res: ServerResponse): void {
  refuse(res, 'ROLLGATE_BAD_FRAMING', 'Transfer-Encoding must be exactly chunked');
}

/** An HTTP/1.1 request without a Host header, which a server must refuse (RFC 9112 §3.2). */
export function missingHost(res: ServerResponse): void {
  refuse(res, 'ROLLGATE_MALFORMED_REQUEST', 'host: an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)');
}
