import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';

/**
 * The floor rollgate builds on: a node:http server that reads each (small) request body whole,
 * sends it through one undici Pool with `dispatch()` and flat header arrays, and streams the
 * answer back from the handler's callbacks: what rollgate's hot path does, without the routing,
 * the split, the judge's records or the metrics. rollgate's CPU per request less this one's is
 * what rollgate itself adds.
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || !values.upstream) {
  console.error('usage: dispatch-proxy.js --port N --upstream URL');
  process.exit(2);
}

// The same pool settings as a rollgate version's (src/proxy/upstream.ts).
const pool = new Pool(values.upstream, { keepAliveTimeout: 4_000, pipelining: 1 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade']);

/** One request's dispatch handler, writing the answer into the client's response as it comes. */
class Pass implements Dispatcher.DispatchHandler {
  readonly #res: http.ServerResponse;
  #resume: (() => void) | null = null;

  constructor(res: http.ServerResponse) {
    this.#res = res;
  }

  onConnect(): void {}

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.#resume = resume;
    const out: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1]!.toString('latin1'));
    }
    this.#res.writeHead(statusCode, out);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const ok = this.#res.write(chunk);
    if (!ok && this.#resume !== null) this.#res.once('drain', this.#resume);
    return ok;
  }

  onComplete(): void {
    this.#res.end();
  }

  onError(): void {
    if (this.#res.headersSent) this.#res.destroy();
    else this.#res.writeHead(502).end();
  }
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 0 ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const headers = ['content-type', req.headers['content-type'] ?? 'application/octet-stream'];
    if (body !== null) headers.push('content-length', String(body.length));
    pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers, body }, new Pass(res));
  });
});
server.keepAliveTimeout = 120_000;
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
