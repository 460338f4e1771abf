import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import t from 'tap';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { startAdmin } from '../src/admin/server.js';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { FrameWatch } from '../src/proxy/ws-frames.js';
import { closeAll, config, eventually, freePort, rawExchange, seededRng, startGateway, startUpstream, type TestGateway } from './helpers/servers.js';

type Mode = 'echo' | 'refuse503' | 'close1011' | 'drop';

interface WsUpstream {
  url: string;
  server: http.Server;
  wss: WebSocketServer;
  /** Handshake requests seen, in order. */
  seen: IncomingMessage[];
  set(mode: Mode): void;
  close(): Promise<void>;
}

/** A real WebSocket upstream: echoes each message prefixed with its label, or fails as told. */
async function startWsUpstream(label: string): Promise<WsUpstream> {
  let mode: Mode = 'echo';
  const seen: IncomingMessage[] = [];
  const server = http.createServer((_req, res) => res.end(label));
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push(req);
    if (mode === 'refuse503') {
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      wss.emit('connection', ws, req);
      ws.on('message', (data) => {
        if (mode === 'close1011') ws.close(1011, 'model crashed');
        else if (mode === 'drop') ws.terminate();
        else ws.send(`${label}:${(data as Buffer).toString()}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    wss,
    seen,
    set: (m) => (mode = m),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function route(stableUrl: string, candidateUrl: string, weight: number, extra: Record<string, unknown> = {}) {
  return { name: 'rt', match: { pathPrefix: '/v1/realtime' }, stable: { version: 'v1', url: stableUrl }, candidate: { version: 'v2', url: candidateUrl, weight }, ...extra };
}

interface Opened {
  ws: WebSocket;
  version: string;
  status: number;
}

/** Opens a WebSocket through the gateway; resolves with the version that answered, or the refusal's status. */
function connect(gw: TestGateway, headers: Record<string, string> = {}, path = '/v1/realtime/stream'): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}${path}`, { headers });
    ws.once('upgrade', (res) => resolve({ ws, version: String(res.headers['x-rollgate-version']), status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ ws, version: String(res.headers['x-rollgate-version']), status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

function waitOpen(ws: WebSocket): Promise<void> {
  return ws.readyState === WebSocket.OPEN ? Promise.resolve() : new Promise((resolve) => ws.once('open', () => resolve()));
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (d) => resolve((d as Buffer).toString()));
    ws.once('close', (code) => reject(new Error(`closed ${code}`)));
    ws.send(text);
  });
}

function closed(ws: WebSocket): Promise<number> {
  return ws.readyState === WebSocket.CLOSED ? Promise.resolve(-1) : new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

async function stack(t: { teardown(fn: () => unknown): void }, weight: number, extra: Record<string, unknown> = {}, seed = 7) {
  const stable = await startWsUpstream('v1');
  const candidate = await startWsUpstream('v2');
  const gw = await startGateway(config([route(stable.url, candidate.url, weight, extra)]), { rng: seededRng(seed) });
  t.teardown(closeAll(gw, stable, candidate));
  return { stable, candidate, gw, controller: gw.rollouts.route('rt')! };
}

t.test('messages echo through the gateway on both versions at the weight', async (t) => {
  const { stable, gw } = await stack(t, 25);
  const versions: string[] = [];
  for (let batch = 0; batch < 8; batch++) {
    const opened = await Promise.all(Array.from({ length: 50 }, () => connect(gw)));
    for (const o of opened) {
      await waitOpen(o.ws);
      const back = await echo(o.ws, `hello ${batch}`);
      t.equal(back, `${o.version}:hello ${batch}`, 'the message went to the version the handshake named, and back', { diagnostic: false });
      versions.push(o.version);
      o.ws.close(1000);
    }
    await Promise.all(opened.map((o) => closed(o.ws)));
  }
  const share = (versions.filter((v) => v === 'v2').length / versions.length) * 100;
  t.ok(Math.abs(share - 25) <= 5, `candidate share ${share.toFixed(1)}% of 400 connections at weight 25`);
  t.ok(await eventually(() => gw.outcomes.length === 400), 'one outcome per connection, when it ends');
  t.ok(gw.outcomes.every((o) => o.failure === 'none' && o.status === 101), 'every connection ended well');
  const seen = stable.seen[0]!;
  t.equal(seen.url, '/v1/realtime/stream', 'the path is forwarded');
  t.equal(seen.headers.upgrade, 'websocket', 'Upgrade: websocket is kept');
  t.match(String(seen.headers.connection), /upgrade/i, 'Connection: Upgrade is kept');
  t.ok(seen.headers['sec-websocket-key'], 'Sec-WebSocket-Key is kept');
  t.ok(seen.headers['x-request-id'], 'x-request-id is added');
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is added');
  t.equal(gw.gateway.websockets.count(), 0, 'no connection is left open');
});

t.test('sticky keys and the override header choose the version of a connection', async (t) => {
  const { gw } = await stack(t, 50, { sticky: { header: 'x-user' }, allowOverride: true });
  const forced = await Promise.all(Array.from({ length: 20 }, () => connect(gw, { 'x-rollgate-version': 'v2' })));
  t.ok(forced.every((o) => o.version === 'v2'), 'x-rollgate-version: v2 always lands on the candidate');
  const stuck = await Promise.all(Array.from({ length: 20 }, () => connect(gw, { 'x-user': 'alice' })));
  t.equal(new Set(stuck.map((o) => o.version)).size, 1, 'one sticky key, one version');
  const users = await Promise.all(Array.from({ length: 40 }, (_, i) => connect(gw, { 'x-user': `user-${i}` })));
  t.equal(new Set(users.map((o) => o.version)).size, 2, 'different keys reach both versions');
  for (const o of [...forced, ...stuck, ...users]) o.ws.terminate();
});

t.test('a candidate whose handshakes fail is rolled back and clients then connect to stable', async (t) => {
  for (const failure of ['503', 'refused'] as const) {
    const { candidate, gw, controller } = await stack(t, 50);
    if (failure === '503') candidate.set('refuse503');
    else await candidate.close();
    const statuses: number[] = [];
    for (let i = 0; i < 200 && controller.phase !== 'rolled_back'; i++) {
      const o = await connect(gw);
      statuses.push(o.status);
      o.ws.terminate();
    }
    t.equal(controller.phase, 'rolled_back', `${failure}: the route is rolled back`);
    const failed = statuses.filter((s) => s !== 101);
    t.ok(failed.length >= 1 && failed.length <= 5, `${failure}: rolled back after ${failed.length} failed handshakes (consecutiveFailures 5)`);
    t.ok(failed.every((s) => s === (failure === '503' ? 503 : 502)), `${failure}: the client saw ${failed.join(',')}`);
    t.ok(gw.outcomes.some((o) => o.version === 'v2' && o.failure === (failure === '503' ? 'status' : 'connect')), `${failure}: the outcome names the failure`);
    const after = await Promise.all(Array.from({ length: 20 }, () => connect(gw)));
    t.ok(after.every((o) => o.status === 101 && o.version === 'v1'), `${failure}: after the rollback every client connects to stable`);
    for (const o of after) o.ws.terminate();
  }
});

t.test('with retryOnStable, a failed candidate handshake is replayed on stable and the client sees no error', async (t) => {
  for (const failure of ['503', 'refused'] as const) {
    const { candidate, gw, controller } = await stack(t, 50, { retryOnStable: true });
    if (failure === '503') candidate.set('refuse503');
    else await candidate.close();
    const opened: Opened[] = [];
    for (let i = 0; i < 200 && controller.phase !== 'rolled_back'; i++) opened.push(await connect(gw));
    t.equal(controller.phase, 'rolled_back', `${failure}: the route is rolled back`);
    t.ok(opened.every((o) => o.status === 101 && o.version === 'v1'), `${failure}: all ${opened.length} clients got a 101 from stable`);
    for (const o of opened) {
      await waitOpen(o.ws);
      t.equal(await echo(o.ws, 'x'), 'v1:x', 'and talk to it', { diagnostic: false });
      o.ws.terminate();
    }
    const replayed = gw.outcomes.filter((o) => o.replayed);
    t.ok(replayed.length >= 1 && replayed.every((o) => o.version === 'v2' && o.failure !== 'none'), `${failure}: ${replayed.length} candidate failures recorded as replayed`);
  }
});

t.test('after a trip, open candidate connections are closed with 1012 and reconnect to stable', async (t) => {
  const { candidate, gw, controller } = await stack(t, 50);
  const open = await Promise.all(Array.from({ length: 20 }, () => connect(gw)));
  await Promise.all(open.map((o) => waitOpen(o.ws)));
  const onCandidate = open.filter((o) => o.version === 'v2');
  const onStable = open.filter((o) => o.version === 'v1');
  t.ok(onCandidate.length > 0 && onStable.length > 0, `${onCandidate.length} on the candidate, ${onStable.length} on stable`);
  const codes = onCandidate.map((o) => closed(o.ws));
  candidate.set('refuse503');
  for (let i = 0; i < 200 && controller.phase !== 'rolled_back'; i++) (await connect(gw)).ws.terminate();
  t.equal(controller.phase, 'rolled_back', 'the judge tripped on failed handshakes');
  t.strictSame(await Promise.all(codes), onCandidate.map(() => 1012), 'every open candidate connection got close code 1012');
  for (const o of onStable) t.equal(await echo(o.ws, 'still'), 'v1:still', 'stable connections stay open');
  const again = await Promise.all(onCandidate.map(() => connect(gw)));
  t.ok(again.every((o) => o.version === 'v1' && o.status === 101), 'reconnects land on stable');
  await eventually(() => gw.outcomes.filter((o) => o.version === 'v2' && o.status === 101).length === onCandidate.length);
  t.ok(gw.outcomes.filter((o) => o.version === 'v2' && o.status === 101).every((o) => o.failure === 'none'), 'connections closed by the rollback are not failures');
  for (const o of [...onStable, ...again]) o.ws.terminate();
});

t.test('with websocket.keepOnRollback, candidate connections stay open after a rollback', async (t) => {
  const { gw, controller } = await stack(t, 100, { websocket: { keepOnRollback: true } });
  const o = await connect(gw);
  await waitOpen(o.ws);
  t.equal(o.version, 'v2');
  controller.rollback();
  await new Promise((r) => setTimeout(r, 100)); // the event is published after the change
  t.equal(await echo(o.ws, 'kept'), 'v2:kept', 'the candidate connection still echoes');
  t.equal((await connect(gw)).version, 'v1', 'new connections go to stable');
  o.ws.terminate();
});

t.test('the 1012 close waits for the frame in progress: an operator rollback during a stream of large messages', async (t) => {
  const { candidate, gw, controller } = await stack(t, 100);
  const big = Buffer.alloc(1024 * 1024, 5);
  candidate.wss.on('connection', (ws) => {
    const pump = (): void => {
      if (ws.readyState !== WebSocket.OPEN) return;
      while (ws.bufferedAmount < 4 * big.length) ws.send(big);
      setTimeout(pump, 5);
    };
    pump();
  });
  const o = await connect(gw);
  await waitOpen(o.ws);
  const sizes: number[] = [];
  o.ws.on('message', (d) => sizes.push((d as Buffer).length));
  const errors: Error[] = [];
  o.ws.on('error', (e) => errors.push(e));
  await eventually(() => sizes.length >= 5);
  const code = closed(o.ws);
  controller.rollback();
  t.equal(await code, 1012, 'the client gets 1012 (service restart)');
  t.strictSame(errors, [], 'and no protocol error: the close frame came between frames');
  t.ok(sizes.length >= 5 && sizes.every((n) => n === big.length), `${sizes.length} whole messages of 1 MiB before it`);
  t.equal((await connect(gw)).version, 'v1', 'the reconnect lands on stable');
});

t.test('a candidate closing with 1011, or dropping the connection, counts as a failure', async (t) => {
  const { candidate, gw } = await stack(t, 100, { rollback: { consecutiveFailures: 100 } });
  const admin = await startAdmin({ config: gw.gateway.config, rollouts: gw.rollouts, token: 'tok', ready: () => true, metrics: gw.metrics });
  t.teardown(() => admin.app.close());
  const ok = await connect(gw);
  await waitOpen(ok.ws);
  await echo(ok.ws, 'fine');
  ok.ws.close(1000);
  await closed(ok.ws);
  candidate.set('close1011');
  const bad = await connect(gw);
  await waitOpen(bad.ws);
  bad.ws.send('crash');
  t.equal(await closed(bad.ws), 1011, 'the client sees the upstream close code');
  candidate.set('drop');
  const dropped = await connect(gw);
  await waitOpen(dropped.ws);
  dropped.ws.send('drop');
  await closed(dropped.ws);
  t.ok(await eventually(() => gw.outcomes.length === 3), 'three outcomes');
  t.strictSame(gw.outcomes.map((o) => [o.version, o.status, o.failure]), [['v2', 101, 'none'], ['v2', 101, 'stream'], ['v2', 101, 'stream']]);
  const text = await (await request(`http://127.0.0.1:${admin.address.port}/metrics`)).body.text();
  t.match(text, /rollgate_requests_total\{route="rt",version="v2",outcome="error"\} 2/, 'two errors in rollgate_requests_total');
  t.match(text, /rollgate_requests_total\{route="rt",version="v2",outcome="ok"\} 1/, 'the normal close counts once as ok');
});

t.test('a client that does not read holds bounded gateway memory while the upstream sends', async (t) => {
  const { candidate, gw } = await stack(t, 100);
  const chunk = Buffer.alloc(256 * 1024, 7);
  let upstreamWs: WebSocket | null = null;
  candidate.wss.on('connection', (ws) => (upstreamWs = ws));
  const o = await connect(gw);
  await waitOpen(o.ws);
  (o.ws as unknown as { _socket: net.Socket })._socket.pause();
  await eventually(() => upstreamWs !== null);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().arrayBuffers;
  let sent = 0;
  const up = upstreamWs as unknown as WebSocket;
  while (up.bufferedAmount < 48 * 1024 * 1024 && sent < 256 * 1024 * 1024) {
    up.send(chunk);
    sent += chunk.length;
    if (sent % (8 * 1024 * 1024) === 0) await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 300));
  gc?.();
  const grown = process.memoryUsage().arrayBuffers - before;
  t.ok(up.bufferedAmount >= 40 * 1024 * 1024, `the upstream holds ${(up.bufferedAmount / 2 ** 20).toFixed(0)} MiB it could not send`);
  t.ok(gw.gateway.websockets.queuedBytes() < 4 * 1024 * 1024, `the gateway queues ${(gw.gateway.websockets.queuedBytes() / 2 ** 10).toFixed(0)} KiB`);
  t.ok(grown < 24 * 1024 * 1024, `buffers grew ${(grown / 2 ** 20).toFixed(1)} MiB while ${(sent / 2 ** 20).toFixed(0)} MiB were sent`);
  o.ws.terminate();
});

t.test('bad upgrades are refused with the error shape and never crash the gateway', async (t) => {
  const garbage = net.createServer((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')));
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  const garbageUrl = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
  const stable = await startWsUpstream('v1');
  const gw = await startGateway(config([route(stable.url, garbageUrl, 100, { allowOverride: true })]));
  t.teardown(closeAll(gw, stable, { close: () => new Promise<void>((r) => garbage.close(() => r())) }));
  const handshake = (path: string, upgrade = 'websocket') =>
    `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
  const unknown = await rawExchange(gw.port, handshake('/nowhere'));
  t.match(unknown, /^HTTP\/1\.1 404 /, 'an unknown route: 404');
  t.match(unknown, /"code":"ROLLGATE_NO_ROUTE"/, 'with the error code');
  const h2c = await rawExchange(gw.port, `POST /v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\n{}`);
  t.match(h2c, /^HTTP\/1\.1 400 /, 'an Upgrade other than websocket on a request with a body: 400');
  t.match(h2c, /only websocket is taken/, 'saying why');
  const bad = await rawExchange(gw.port, handshake('/v1/realtime'));
  t.match(bad, /^HTTP\/1\.1 502 /, 'an upstream answering garbage: 502');
  t.match(bad, /"code":"ROLLGATE_UPSTREAM_ERROR"/, 'with the error code');
  t.ok(await eventually(() => gw.outcomes.some((o) => o.failure === 'protocol')), 'counted as the candidate\'s protocol failure');
  const refused = await connect(gw, { 'x-rollgate-version': 'v1' });
  await waitOpen(refused.ws);
  t.equal(await echo(refused.ws, 'alive'), 'v1:alive', 'the gateway still proxies WebSockets');
  refused.ws.terminate();
  const half = await rawExchange(gw.port, 'GET /v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\xff', 500);
  t.type(half, 'string', 'bytes before the answer do not crash the gateway');
  const r = await request(`${gw.url}/nowhere`);
  await r.body.dump();
  t.equal(r.statusCode, 404, 'and still answers HTTP');
});

t.test('a candidate answering 4xx to the handshake is not counted against it', async (t) => {
  const up = http.createServer();
  up.on('upgrade', (_req, socket: net.Socket) => socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\nno'));
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  const port = (up.address() as AddressInfo).port;
  const gw = await startGateway(config([route(`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${port}`, 100)]));
  t.teardown(closeAll(gw, { close: () => new Promise<void>((r) => up.close(() => r())) }));
  const o = await connect(gw);
  t.equal(o.status, 401, 'the client gets the 401');
  t.ok(await eventually(() => gw.outcomes.length === 1));
  t.equal(gw.outcomes[0]!.failure, 'none', 'a 4xx is the client\'s');
});

t.test('websocket.keepOnRollback must be a boolean; the error names the key path', async (t) => {
  const err = t.throws(() => config([route('http://127.0.0.1:1', 'http://127.0.0.1:2', 5, { websocket: { keepOnRollback: 'yes' } })])) as unknown as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.problems.join('\n'), /routes\[0\]\.websocket\.keepOnRollback/);
  t.equal(parseConfig({ routes: [route('http://127.0.0.1:1', 'http://127.0.0.1:2', 5)] }).routes[0]!.websocket.keepOnRollback, false, 'default false');
});

t.test('frame headers are read across any split of the bytes', async (t) => {
  const frame = (opcode: number, payload: Buffer, mask: Buffer | null = null): Buffer => {
    const n = payload.length;
    const len = n < 126 ? Buffer.from([n]) : n < 65536 ? Buffer.from([126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([127]), Buffer.alloc(4), Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255])]);
    len[0] = (len[0] as number) | (mask === null ? 0 : 0x80);
    const body = mask === null ? payload : Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
    return Buffer.concat([Buffer.from([0x80 | opcode]), len, ...(mask === null ? [] : [mask]), body]);
  };
  const code = (c: number, reason = ''): Buffer => Buffer.concat([Buffer.from([c >> 8, c & 255]), Buffer.from(reason)]);
  const frames = [frame(1, Buffer.from('hi')), frame(2, Buffer.alloc(300, 1)), frame(2, Buffer.alloc(70_000, 2)), frame(9, Buffer.alloc(0))];
  for (const [closing, masked, expect] of [[code(1011, 'boom'), false, 1011], [code(1000), true, 1000], [Buffer.alloc(0), false, 1005]] as const) {
    const bytes = Buffer.concat([...frames, frame(8, closing, masked ? Buffer.from([1, 2, 3, 4]) : null)]);
    for (const step of [1, 2, 3, 7, 125, 4096]) {
      const w = new FrameWatch();
      const boundaries: number[] = [];
      for (let i = 0; i < bytes.length; i += step) {
        const chunk = bytes.subarray(i, i + step);
        let at = 0;
        while (at < chunk.length) {
          const n = w.feed(chunk.subarray(at), true);
          at += n;
          if (w.atBoundary) {
            boundaries.push(i + at);
            if (at < chunk.length) at += w.feed(chunk.subarray(at, at + 1));
          }
        }
      }
      t.equal(w.closeCode, expect, `close code ${expect}, ${masked ? 'masked' : 'unmasked'}, in chunks of ${step}`, { diagnostic: false });
      t.equal(new Set(boundaries).has(bytes.length), true, 'the last frame ends at the end', { diagnostic: false });
    }
  }
});

t.test('an open WebSocket outlives the server\'s request timeouts', async (t) => {
  const stable = await startWsUpstream('v1');
  const gw = await startGateway(config([{ name: 'rt', match: { pathPrefix: '/v1/realtime' }, stable: { version: 'v1', url: stable.url } }], { listen: { host: '127.0.0.1', port: 0, requestTimeout: '1s', headersTimeout: '1s', idleTimeout: '1s' } }));
  t.teardown(closeAll(gw, stable));
  const o = await connect(gw);
  await waitOpen(o.ws);
  await new Promise((r) => setTimeout(r, 2_500));
  t.equal(await echo(o.ws, 'late'), 'v1:late', 'still open after requestTimeout, headersTimeout and idleTimeout passed');
  o.ws.terminate();
});

t.test('an Upgrade other than websocket on a request without a body is ignored: served as HTTP/1.1', async (t) => {
  const plain = await startUpstream((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upgrade: req.headers.upgrade ?? null, path: req.url }));
  });
  const gw = await startGateway(config([{ name: 'm', match: { pathPrefix: '/v1' }, stable: { version: 'v1', url: plain.url } }]));
  t.teardown(closeAll(gw, plain));
  // What `curl --http2 http://...` sends.
  const answer = await rawExchange(gw.port, 'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', 5_000);
  t.match(answer, /^HTTP\/1\.1 200 /, 'answered 200 over HTTP/1.1');
  t.match(answer, /\r\nx-rollgate-version: v1\r\n/i, 'by the route');
  t.match(answer, /\r\nconnection: close\r\n/i, 'and the connection closes after it');
  t.match(answer, /\{"upgrade":null,"path":"\/v1\/models"\}/, 'the upstream got a plain request, without the Upgrade');
  t.equal(plain.seen.length, 1);
});
