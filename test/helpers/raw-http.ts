import net from 'node:net';

/** How a raw request frames its body. */
export type Framing =
  | { kind: 'length' } // a correct Content-Length (none when the body is empty)
  | { kind: 'none' } // no framing header at all: any body bytes follow as a second request
  | { kind: 'chunked' } // Transfer-Encoding: chunked, correctly encoded
  | { kind: 'bad-chunk' } // Transfer-Encoding: chunked, with a chunk size that is not hex
  | { kind: 'header'; value: string }; // Content-Length: <value> as given, with the body as is

export interface RawRequest {
  method: string;
  target: string;
  /** Header lines in order, written as given (after Host unless one is given here). */
  headers: [string, string][];
  body: Buffer;
  framing: Framing;
  /** Leave out the Host header the request would otherwise start with. */
  noHost?: boolean;
}

/** A request's bytes: the request line, the headers, a closing `Connection: close`, the body. */
export function requestBytes(r: RawRequest): Buffer {
  const lines = [`${r.method} ${r.target} HTTP/1.1`];
  if (r.noHost !== true && !r.headers.some(([n]) => n.toLowerCase() === 'host')) lines.push('Host: 127.0.0.1');
  for (const [name, value] of r.headers) lines.push(`${name}: ${value}`);
  let body = r.body;
  if (r.framing.kind === 'length' && body.length > 0) lines.push(`Content-Length: ${body.length}`);
  if (r.framing.kind === 'header') lines.push(`Content-Length: ${r.framing.value}`);
  if (r.framing.kind === 'chunked') {
    lines.push('Transfer-Encoding: chunked');
    body = Buffer.concat([body.length > 0 ? Buffer.from(`${body.length.toString(16)}\r\n`) : Buffer.alloc(0), body, Buffer.from(body.length > 0 ? '\r\n0\r\n\r\n' : '0\r\n\r\n')]);
  }
  if (r.framing.kind === 'bad-chunk') {
    lines.push('Transfer-Encoding: chunked');
    body = Buffer.concat([Buffer.from('ZZ\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]);
  }
  lines.push('Connection: close');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), body]);
}

export interface RawAnswer {
  kind: 'answer';
  status: number;
  /** Header names lowercased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/** What came back: an answer, the connection closed with no answer, or nothing within the time. */
export type RawResult = RawAnswer | { kind: 'closed'; bytes: string } | { kind: 'timeout'; bytes: string };

interface Head {
  status: number;
  headers: Record<string, string>;
  bodyStart: number;
}

function parseHead(buf: Buffer, from: number): Head | null {
  const end = buf.indexOf('\r\n\r\n', from, 'latin1');
  if (end === -1) return null;
  const lines = buf.toString('latin1', from, end).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (status === null) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(status[1]), headers, bodyStart: end + 4 };
}

/** A chunked body decoded, or null while it is incomplete. */
function dechunk(buf: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at, 'latin1');
    if (eol === -1) return null;
    const size = parseInt(buf.toString('latin1', at, eol).split(';')[0] ?? '', 16);
    if (Number.isNaN(size)) throw new Error('a chunked answer with a bad chunk size');
    // The last chunk, then trailer lines, then an empty line.
    if (size === 0) return buf.indexOf('\r\n\r\n', eol, 'latin1') === -1 ? null : Buffer.concat(parts);
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/**
 * The answer once it is complete in `buf`, skipping 1xx answers; null while more is needed.
 * An event stream is complete with its head: it stays open by design.
 */
function complete(buf: Buffer, headRequest: boolean, closed: boolean): RawAnswer | null {
  let from = 0;
  for (;;) {
    const head = parseHead(buf, from);
    if (head === null) return null;
    if (head.status >= 100 && head.status < 200) {
      from = head.bodyStart;
      continue;
    }
    const rest = buf.subarray(head.bodyStart);
    const answer = (body: Buffer): RawAnswer => ({ kind: 'answer', status: head.status, headers: head.headers, body });
    if (headRequest || head.status === 204 || head.status === 304) return answer(Buffer.alloc(0));
    if ((head.headers['content-type'] ?? '').startsWith('text/event-stream')) return answer(Buffer.alloc(0));
    if (/chunked/i.test(head.headers['transfer-encoding'] ?? '')) {
      const body = dechunk(rest);
      return body === null ? null : answer(body);
    }
    const length = head.headers['content-length'];
    if (length !== undefined) return rest.length >= Number(length) ? answer(rest.subarray(0, Number(length))) : null;
    return closed ? answer(rest) : null;
  }
}

/**
 * Writes a request's bytes to a loopback port and reads one answer. The socket is never
 * half-closed (Node's server would abort the request), so a server that neither answers nor
 * closes is reported as a timeout after `ms`, not waited on.
 */
export function rawRequest(port: number, bytes: Buffer, opts: { ms: number; head?: boolean }): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let done = false;
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const finish = (result: RawResult | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', bytes: buf.toString('latin1', 0, 200) }), opts.ms);
    const check = (closed: boolean): void => {
      try {
        const answer = complete(buf, opts.head === true, closed);
        if (answer !== null) finish(answer);
        else if (closed) finish({ kind: 'closed', bytes: buf.toString('latin1', 0, 200) });
      } catch (err) {
        finish(err as Error);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      check(false);
    });
    // A reset after the answer was sent is the server closing a connection it was done with.
    socket.on('error', () => check(true));
    socket.on('close', () => check(true));
  });
}
