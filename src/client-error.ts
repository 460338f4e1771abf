import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, errorStatus, type ErrorCode } from './errors.js';

/** What Node's HTTP parser reports about a request it could not read. */
interface ClientError {
  code?: string;
  reason?: string;
  message?: string;
}

/** The code and message for a request Node's server refused before any handler saw it. */
function classify(err: ClientError): { code: ErrorCode; message: string } {
  if (err.code === 'HPE_HEADER_OVERFLOW') return { code: 'ROLLGATE_HEADERS_TOO_LARGE', message: 'the request line and headers are over 16 KiB' };
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { code: 'ROLLGATE_REQUEST_TIMEOUT', message: 'the request did not arrive in time' };
  if (err.code === 'ERR_PLAIN_ON_TLS') return { code: 'ROLLGATE_MALFORMED_REQUEST', message: 'this port speaks TLS (listen.tls is set): send the request over https' };
  const why = err.reason ?? err.message ?? err.code ?? 'unreadable';
  return { code: 'ROLLGATE_MALFORMED_REQUEST', message: `the request is not valid HTTP/1.1: ${why}` };
}

/**
 * The `clientError` answer of both planes: what Node's own handler sends (400, 408 or 431, then
 * the connection closes), with the project's JSON error body, so that every refusal a client
 * sees has a code and a message. Bad bytes pipelined after a request that was read whole and is
 * still being answered wait for that answer: Node would write the 400 at once, in its place, and
 * cut the connection, so that the client read a refusal of a request that was carried out.
 */
export function answerClientError(err: ClientError, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (err.code !== 'ECONNRESET' && inFlight != null && !inFlight.writableFinished && !inFlight.destroyed) {
    if (inFlight.req.complete) {
      const after = (): void => answerAndClose(err, socket);
      inFlight.once('finish', after).once('close', after);
      return;
    }
    // The bad bytes are the body of the request being answered: the refusal is its answer,
    // unless that answer has begun, and then the connection can only be cut.
    if (inFlight.headersSent) {
      socket.destroy();
      return;
    }
  }
  answerAndClose(err, socket);
}

function answerAndClose(err: ClientError, socket: Duplex): void {
  if (err.code !== 'ECONNRESET' && socket.writable && !socket.destroyed) {
    const { code, message } = classify(err);
    const body = errorBody(code, message);
    socket.write(
      `HTTP/1.1 ${errorStatus(code)} ${STATUS_TEXT[code] ?? 'Bad Request'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * The `checkExpectation` answer of both planes: an Expect other than 100-continue is refused with
 * 417 (RFC 9110 §10.1.1), as Node does, with the project's error body; the request is not handled.
 */
export function answerUnknownExpectation(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const body = errorBody('ROLLGATE_EXPECTATION_FAILED', `expect: only 100-continue is supported, not ${JSON.stringify(req.headers.expect ?? '').slice(0, 100)}`);
  res.shouldKeepAlive = false;
  res.writeHead(errorStatus('ROLLGATE_EXPECTATION_FAILED'), ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'connection', 'close']);
  res.end(body);
}

const STATUS_TEXT: Partial<Record<ErrorCode, string>> = {
  ROLLGATE_HEADERS_TOO_LARGE: 'Request Header Fields Too Large',
  ROLLGATE_REQUEST_TIMEOUT: 'Request Timeout',
};

/**
 * Plain HTTP sent to the data plane's port when it speaks TLS (`listen.tls`): a 400 in cleartext
 * that says so, as nginx does, then the connection closes. Anything else that is not TLS is closed.
 */
export function answerPlainOnTls(socket: Duplex, first: Buffer): void {
  const start = first.toString('latin1', 0, 8);
  if (/^[A-Z]{3,7} /.test(start) && !start.startsWith('PRI ')) answerAndClose({ code: 'ERR_PLAIN_ON_TLS' }, socket);
  else socket.destroy();
}
