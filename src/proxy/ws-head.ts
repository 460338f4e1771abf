import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody, errorStatus, type ErrorCode } from '../errors.js';
import { REQUEST_ID } from './headers.js';

/** The most an upstream's answer head to a handshake may take, as for the client's request head. */
export const MAX_ANSWER_HEAD_BYTES = 16 * 1024;

const END_OF_HEAD = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: [^\r\n]*)?$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export interface AnswerHead {
  status: number;
  /** The status line as the upstream wrote it. */
  statusLine: string;
  /** Header lines, name and value, as flat pairs. */
  headers: string[];
  /** Bytes after the head (the first frames of a 101, or the body of another answer). */
  rest: Buffer;
}

/**
 * Reads an answer head out of the bytes received so far: null while it is incomplete, an Error
 * when it is not HTTP/1.1 or is over the size limit.
 */
export function parseAnswerHead(received: Buffer): AnswerHead | Error | null {
  const end = received.indexOf(END_OF_HEAD);
  if (end === -1) return received.length > MAX_ANSWER_HEAD_BYTES ? new Error(`answer head over ${MAX_ANSWER_HEAD_BYTES} bytes`) : null;
  if (end > MAX_ANSWER_HEAD_BYTES) return new Error(`answer head over ${MAX_ANSWER_HEAD_BYTES} bytes`);
  const lines = received.subarray(0, end).toString('latin1').split('\r\n');
  const statusLine = lines[0] as string;
  const m = STATUS_LINE.exec(statusLine);
  if (m === null) return new Error('the answer is not HTTP/1.1');
  const headers: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon);
    if (!TOKEN.test(name) || line.includes('\n')) return new Error('the answer has a malformed header line');
    headers.push(name, line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), statusLine, headers, rest: received.subarray(end + 4) };
}

/** The handshake request for the upstream: request line, Host, the forwarded headers and the upgrade pair. */
export function handshakeRequest(path: string, host: string, headers: readonly string[], upgrade: string): string {
  let out = `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: Upgrade\r\nupgrade: ${upgrade}\r\n`;
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${out}\r\n`;
}

/**
 * The upstream's answer head for the client: its status line and headers minus any x-rollgate-*
 * or x-request-id it set (ours win), plus the route, version and request id as on HTTP answers.
 * An answer other than 101 also says `connection: close`: the gateway closes after it.
 */
export function clientAnswerHead(head: AnswerHead, route: string, version: string, requestId: string): string {
  const switching = head.status === 101;
  let out = `${head.statusLine}\r\n`;
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) {
    const lower = (h[i] as string).toLowerCase();
    if (lower === REQUEST_ID || lower === 'x-rollgate-route' || lower === 'x-rollgate-version') continue;
    if (!switching && (lower === 'connection' || lower === 'keep-alive')) continue;
    out += `${h[i]}: ${h[i + 1]}\r\n`;
  }
  out += `x-rollgate-route: ${route}\r\nx-rollgate-version: ${version}\r\n${REQUEST_ID}: ${requestId}\r\n`;
  if (!switching) out += 'connection: close\r\n';
  return `${out}\r\n`;
}

/** The body length an answer head declares; null when it has none (read to the end). */
export function declaredLength(head: AnswerHead): number | null {
  if (head.status === 204 || head.status === 304 || head.status < 200) return 0;
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) {
    if ((h[i] as string).toLowerCase() === 'content-length') {
      const n = Number(h[i + 1]);
      return Number.isSafeInteger(n) && n >= 0 ? n : null;
    }
  }
  return null;
}

/** Answers an upgrade request on its raw socket with the project's error body, and closes it. */
export function refuseUpgrade(socket: Socket, code: ErrorCode, message: string, extra: string[] = []): void {
  const status = errorStatus(code);
  const body = errorBody(code, message);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`${head}connection: close\r\n\r\n${body}`);
  // A client that never reads what it is sent does not keep the socket.
  setTimeout(() => socket.destroy(), 2_000).unref();
}
