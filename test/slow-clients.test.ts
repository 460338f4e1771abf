import net from 'node:net';
import t from 'tap';
import { request } from 'undici';
import { Readable } from 'node:stream';
import { closeAll, config, startGateway, startLabelled, startUpstream } from './helpers/servers.js';

// listen.headersTimeout, requestTimeout and idleTimeout (SPEC §9): slow and idle clients are
// closed at their limits, and other clients are served meanwhile. Raw sockets on loopback.

const route = (url: string) => ({ name: 'm', match: { pathPrefix: '/v1' }, stable: { version: 'v1', url } });

/** A raw connection; resolves `closed` with what the server sent before it closed the socket. */
function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1'))));
  return { socket, closed };
}

/** Writes `text` a byte at a time, `gapMs` apart, until it is written or the socket closes. */
async function dribble(socket: net.Socket, text: string, gapMs: number): Promise<number> {
  let sent = 0;
  for (const ch of text) {
    if (socket.destroyed) break;
    socket.write(ch);
    sent++;
    await new Promise((r) => setTimeout(r, gapMs));
  }
  return sent;
}

/** An upstream and a gateway in front of it with these `listen` limits, both closed after the test. */
async function gatewayWith(t: { teardown(fn: () => unknown): void }, listen: Record<string, string>) {
  const up = await startLabelled('v1');
  const gw = await startGateway(config([route(up.url)], { listen: { host: '127.0.0.1', port: 0, ...listen } }));
  t.teardown(closeAll(gw, up));
  return { up, gw };
}

const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);

t.test('headers sent a byte at a time are cut off at listen.headersTimeout; other clients are served meanwhile', async (t) => {
  const { up, gw } = await gatewayWith(t, { headersTimeout: '400ms', requestTimeout: '5s' });
  const slow = rawClient(gw.port);
  const head = 'GET /v1/x HTTP/1.1\r\nhost: 127.0.0.1\r\n' + 'x-filler: '.padEnd(400, 'a') + '\r\n\r\n';
  const dribbling = dribble(slow.socket, head, 20);
  // While it dribbles, normal requests are answered.
  for (let i = 0; i < 5; i++) {
    const r = await request(`${gw.url}/v1/x`);
    t.equal(r.statusCode, 200, `a normal client's request ${i + 1} is answered`);
    await r.body.dump();
  }
  const answer = await within(slow.closed, 10_000);
  t.not(answer, 'timeout', 'the slow client was closed');
  t.match(answer, /^(HTTP\/1\.1 408 |)/, 'with a 408, or no answer at all');
  const sent = await dribbling;
  t.ok(sent < head.length, `it was cut off before its head was complete (${sent} of ${head.length} bytes)`);
  t.equal(up.seen.length, 5, 'nothing of the slow request reached the upstream');
});

t.test('a request body dribbled past listen.requestTimeout is cut off, and never reaches the upstream whole', async (t) => {
  const { up, gw } = await gatewayWith(t, { headersTimeout: '300ms', requestTimeout: '600ms' });
  const slow = rawClient(gw.port);
  slow.socket.write('POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 300\r\n\r\n');
  void dribble(slow.socket, 'b'.repeat(300), 20);
  const answer = await within(slow.closed, 10_000);
  t.not(answer, 'timeout', 'the slow client was closed');
  t.notMatch(answer, /^HTTP\/1\.1 200 /, 'it got no answer from the model');
  t.equal(up.seen.length, 0, 'a body of known length is read whole before it is sent: the upstream saw nothing');
});

t.test('a kept-alive connection with no request is closed after listen.idleTimeout', async (t) => {
  const { gw } = await gatewayWith(t, { idleTimeout: '300ms' });
  const c = rawClient(gw.port);
  c.socket.write('GET /v1/x HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
  const answer = await within(c.closed, 10_000);
  t.not(answer, 'timeout', 'the idle connection was closed');
  t.match(answer, /^HTTP\/1\.1 200 /, 'after its one request was answered');
  t.match(answer, /\r\nkeep-alive: timeout=0\r\n/i, 'the answer told the client how long the connection is kept (whole seconds, rounded down)');
});

/** Live JS memory (heap and Buffers) after a full collection. */
async function liveBytes(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  await new Promise((r) => setTimeout(r, 5));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

t.test('a client that never reads its answer holds bounded memory: backpressure reaches the upstream', async (t) => {
  const MB = 1024 * 1024;
  const TOTAL = 1024 * MB;
  let produced = 0;
  let upstreamClosed = false;
  const up = await startUpstream((req, res) => {
    req.resume();
    if (req.url === '/v1/small') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    // 1 GB made on demand: only what the gateway pulls is ever produced.
    const body = new Readable({
      read() {
        if (produced >= TOTAL) this.push(null);
        else {
          produced += 64 * 1024;
          this.push(Buffer.alloc(64 * 1024, 0x61));
        }
      },
    });
    res.on('close', () => {
      upstreamClosed = true;
      body.destroy();
    });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
    body.pipe(res);
  });
  const gw = await startGateway(config([route(up.url)]));
  t.teardown(closeAll(gw, up));
  const before = await liveBytes();

  const stuck = rawClient(gw.port);
  stuck.socket.pause(); // never reads a byte
  stuck.socket.write('GET /v1/big HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
  // Wait until the upstream stops producing: every buffer on the way is full.
  let last = -1;
  for (let i = 0; i < 100 && produced !== last; i++) {
    last = produced;
    await new Promise((r) => setTimeout(r, 300));
  }
  t.equal(produced, last, `the upstream stopped producing (at ${(produced / MB).toFixed(1)} MB)`);
  t.ok(produced < 64 * MB, `of a 1 GB answer the upstream produced only ${(produced / MB).toFixed(1)} MB (socket buffers on the way)`);
  const grown = (await liveBytes()) - before;
  t.ok(grown < 16 * MB, `the process holds ${(grown / MB).toFixed(1)} MB more for it (< 16 MB)`);

  for (let i = 0; i < 5; i++) {
    const r = await request(`${gw.url}/v1/small`);
    t.equal(r.statusCode, 200, `meanwhile another client's request ${i + 1} is answered`);
    await r.body.dump();
  }
  stuck.socket.destroy();
  for (let i = 0; i < 100 && !upstreamClosed; i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(upstreamClosed, 'when the client goes away, the upstream request is closed too');
  t.ok(produced < 64 * MB, 'and nothing more was produced');
});

/** An upstream answering each request with `size` bytes made on demand; counts its answers closed early. */
async function bulkUpstream(size: number) {
  const stats = { started: 0, cutOff: 0 };
  const up = await startUpstream((req, res) => {
    req.resume();
    stats.started++;
    let left = size;
    const body = new Readable({
      read() {
        const n = Math.min(left, 64 * 1024);
        left -= n;
        this.push(n === 0 ? null : Buffer.alloc(n, 0x62));
      },
    });
    res.on('close', () => {
      if (!res.writableFinished) stats.cutOff++;
      body.destroy();
    });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    body.pipe(res);
  });
  return { up, stats };
}

const pipelined = (n: number) => 'GET /v1/big HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'.repeat(n);

t.test('pipelined requests read slowly get every answer whole', async (t) => {
  const SIZE = 2 * 1024 * 1024;
  const { up, stats } = await bulkUpstream(SIZE);
  const gw = await startGateway(config([route(up.url)]));
  t.teardown(closeAll(gw, up));
  // Several clients at once, each pipelining three requests and reading in bursts: answers are
  // handed the socket while other answers are being parsed.
  const clients = Array.from({ length: 6 }, () => {
    const c = rawClient(gw.port);
    let bytes = 0;
    c.socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      c.socket.pause();
      setTimeout(() => c.socket.resume(), 2);
      if (bytes >= 3 * SIZE) c.socket.end();
    });
    // Nothing read at first: the first answer waits on backpressure while the next ones queue.
    c.socket.pause();
    setTimeout(() => c.socket.resume(), 300);
    c.socket.write(pipelined(3));
    return c.closed;
  });
  const answers = await Promise.all(clients.map((p) => within(p, 60_000)));
  for (const [i, a] of answers.entries()) {
    t.not(a, 'timeout', `client ${i + 1} finished`);
    t.equal((typeof a === 'string' ? a.match(/HTTP\/1\.1 200 /g) : null)?.length, 3, `client ${i + 1} got three 200 answers`);
  }
  t.equal(stats.cutOff, 0, 'no upstream answer was cut off');
  t.equal(gw.gateway.routes.get('m')?.inflight.stable.size, 0, 'nothing is left in flight');
});

t.test('a client that leaves with pipelined requests queued: every upstream request is closed', async (t) => {
  const { up, stats } = await bulkUpstream(256 * 1024 * 1024);
  const gw = await startGateway(config([route(up.url)]));
  t.teardown(closeAll(gw, up));
  const c = rawClient(gw.port);
  c.socket.pause(); // reads nothing
  c.socket.write(pipelined(3));
  for (let i = 0; i < 100 && stats.started < 3; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(stats.started, 3, 'the upstream got all three requests');
  c.socket.destroy();
  for (let i = 0; i < 100 && stats.cutOff < 3; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(stats.cutOff, 3, 'all three upstream answers were closed, the two queued behind the first too');
  t.equal(gw.gateway.routes.get('m')?.inflight.stable.size, 0, 'nothing is left in flight');
});

t.test('a head timeout longer than the request timeout is a config error naming the key', async (t) => {
  t.throws(() => config([route('http://127.0.0.1:1')], { listen: { headersTimeout: '2m', requestTimeout: '1m' } }), /listen\.headersTimeout: must not be longer than requestTimeout \(1m\)/);
  t.throws(() => config([route('http://127.0.0.1:1')], { listen: { requestTimeout: '5s' } }), /listen\.requestTimeout: must not be shorter than headersTimeout \(default 10s\)/);
  t.throws(() => config([route('http://127.0.0.1:1')], { listen: { idleTimeout: '0ms' } }), /listen\.idleTimeout: must be longer than 0ms/);
});

t.test('a connection that leaves before sending anything (a port probe) is let go at once', async (t) => {
  const { gw } = await gatewayWith(t, { headersTimeout: '10s' });
  const probe = net.connect(gw.port, '127.0.0.1');
  await new Promise<void>((resolve) => probe.on('connect', () => resolve()));
  probe.end();
  const connections = () => new Promise<number>((resolve) => gw.gateway.server.getConnections((_e, n) => resolve(n)));
  let open = await connections();
  for (let i = 0; i < 40 && open > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    open = await connections();
  }
  t.equal(open, 0, 'the gateway closed its side long before headersTimeout (10 s)');
});
