import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { startAdmin } from '../src/admin/server.js';
import type { FailureKind } from '../src/proxy/outcome.js';
import { config, eventually, startGateway } from './helpers/servers.js';

// Upstreams that break HTTP/1.1 in the ways real servers do, each a raw TCP server writing its
// answer byte for byte, behind a real gateway. For each: what the client gets, and what the judge
// is told (the outcome record's failure kind and rollgate_requests_total on /metrics). After each
// case the route answers a clean request, so nothing of a broken answer leaks into the next one.

interface Seen {
  head: string;
  body: Buffer;
}

/** What the raw upstream does with the first request it reads; later requests get CLEAN. */
type Respond = (s: Socket, req: Seen) => void;

const CLEAN = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnext';
const JSON_DOC = JSON.stringify({ label: 'positive', score: 0.93, note: 'x'.repeat(200) });
const GZIP = gzipSync(JSON_DOC);
const BROTLI = brotliCompressSync(JSON_DOC);

const write = (bytes: string | Buffer): Respond => (s) => s.write(bytes);
const writeAndClose = (bytes: string | Buffer): Respond => (s) => s.end(bytes);

/** Writes the head, then the body one byte every `gapMs`. */
function dribble(head: string, body: string, gapMs: number): Respond {
  return (s) => {
    s.write(head);
    let i = 0;
    const next = (): void => {
      if (s.destroyed) return;
      s.write(body.charAt(i++));
      if (i < body.length) setTimeout(next, gapMs);
    };
    setTimeout(next, gapMs);
  };
}

interface RawUpstream {
  url: string;
  seen: Seen[];
  connections(): number;
  open(): number;
  close(): void;
}

/** A TCP server that reads HTTP requests (head and Content-Length body) and answers them raw. */
async function rawUpstream(respond: Respond | null, closeFirstConnection: boolean, every = false): Promise<RawUpstream> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.setNoDelay(true);
    if (connections++ === 0 && closeFirstConnection) {
      s.destroy();
      return;
    }
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const req = { head, body: buf.subarray(end + 4, end + 4 + length) };
        buf = buf.subarray(end + 4 + length);
        seen.push(req);
        if ((seen.length === 1 || every) && respond !== null) respond(s, req);
        else s.write(CLEAN);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    connections: () => connections,
    open: () => sockets.size,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

interface ClientAnswer {
  /** 1xx answers the client received before the final one. */
  interim: number[];
  status: number;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: Buffer;
  /** The body ended cleanly (false: the connection closed in the middle of it). */
  complete: boolean;
}

interface Send {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Sends `Expect: 100-continue` and the body only once the 100 came. */
  expectContinue?: boolean;
}

/** One request with node:http over a keep-alive agent (one connection), answer read to the end. */
function send(agent: http.Agent, port: number, path: string, o: Send = {}): Promise<ClientAnswer> {
  return new Promise((resolve, reject) => {
    const interim: number[] = [];
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
    if (o.expectContinue === true) headers.expect = '100-continue';
    const req = http.request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers, agent });
    req.on('information', (info: { statusCode: number }) => interim.push(info.statusCode));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let complete = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (complete = true));
      res.on('error', () => {});
      res.on('close', () =>
        resolve({ interim, status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks), complete: complete && res.complete }),
      );
    });
    if (o.expectContinue === true) req.on('continue', () => req.end(o.body));
    else req.end(o.body);
  });
}

type Label = 'ok' | 'client_error' | 'error' | 'timeout';

interface Case {
  name: string;
  respond: Respond | null;
  /** The upstream closes its first connection as soon as it accepted it. */
  closeOnAccept?: boolean;
  /** The route checks its answers against a JSON schema. */
  jsonCheck?: boolean;
  request?: Send;
  /** What the client gets: status, 1xx, headers (undefined: absent), body; complete by default. */
  client: { status: number; interim?: number[]; headers?: Record<string, string | undefined>; body?: string | Buffer; code?: string; complete?: boolean };
  /**
   * What the judge is told: the outcome's failure kind and its rollgate_requests_total label; on
   * a route with checks, the rollgate_response_checks_total{check="json"} outcome counted.
   */
  judge: { failure: FailureKind; label: Label; streaming?: boolean; minLatencyMs?: number; jsonCheck?: string };
  /** Connections the upstream accepted by the end (2: the one that sent stray bytes was not reused). */
  connections?: number;
  /** The gateway closes the upstream connection (stray bytes came on it) before the next request. */
  closed?: boolean;
  /** Checks of what the upstream received. */
  upstream?: (t: Test, seen: Seen) => void;
}

const OK = { failure: 'none', label: 'ok' } as const;
const PROTOCOL = { failure: 'protocol', label: 'error' } as const;
const BAD_GATEWAY = { status: 502, code: 'ROLLGATE_UPSTREAM_ERROR' };
const H200 = 'HTTP/1.1 200 OK\r\n';
const SMUGGLED = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled';

const CASES: Case[] = [
  {
    name: 'Expect: 100-continue from the client',
    respond: write(`${H200}Content-Length: 4\r\n\r\npong`),
    request: { method: 'POST', body: 'ping', expectContinue: true },
    client: { status: 200, interim: [100], body: 'pong' },
    judge: OK,
    upstream: (t, seen) => {
      t.notMatch(seen.head, /\r\nexpect:/i, 'the upstream is not asked to expect anything: the gateway answered the 100 itself');
      t.equal(seen.body.toString(), 'ping', 'the upstream got the body sent after the 100');
    },
  },
  {
    name: 'a 100 Continue the upstream was not asked for',
    respond: write(`HTTP/1.1 100 Continue\r\n\r\n${H200}Content-Length: 2\r\n\r\nok`),
    request: { method: 'POST', body: 'ping' },
    client: { ...BAD_GATEWAY, interim: [] },
    judge: PROTOCOL,
  },
  {
    name: '102 Processing and 103 Early Hints before a 200',
    respond: write(`HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </m.css>; rel=preload\r\n\r\n${H200}Content-Length: 2\r\n\r\nok`),
    client: { status: 200, interim: [], headers: { link: undefined }, body: 'ok' },
    judge: OK,
    connections: 1,
  },
  {
    name: '101 Switching Protocols to a request that asked for no upgrade',
    respond: write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'HEAD answered with a Content-Length and no body',
    respond: write(`${H200}Content-Type: application/json\r\nContent-Length: 17\r\n\r\n`),
    request: { method: 'HEAD' },
    client: { status: 200, headers: { 'content-length': '17', 'content-type': 'application/json' }, body: '' },
    judge: OK,
  },
  {
    name: 'HEAD answered with a body anyway',
    respond: write(`${H200}Content-Length: 8\r\n\r\nsmuggled`),
    request: { method: 'HEAD' },
    client: { status: 200, headers: { 'content-length': '8' }, body: '' },
    judge: OK,
  },
  {
    name: '204 No Content',
    respond: write('HTTP/1.1 204 No Content\r\nX-Done: yes\r\n\r\n'),
    request: { method: 'DELETE' },
    client: { status: 204, headers: { 'x-done': 'yes' }, body: '' },
    judge: OK,
    connections: 1,
  },
  {
    name: '304 Not Modified',
    respond: write('HTTP/1.1 304 Not Modified\r\nETag: "v7"\r\n\r\n'),
    request: { headers: { 'if-none-match': '"v7"' } },
    client: { status: 304, headers: { etag: '"v7"' }, body: '' },
    judge: OK,
  },
  {
    name: 'a 204 followed by a body (another answer)',
    respond: write(`HTTP/1.1 204 No Content\r\n\r\n${SMUGGLED}`),
    client: { status: 204, body: '' },
    judge: OK,
    connections: 2,
  },
  {
    name: 'trailers after a chunked body, the client sent TE: trailers',
    respond: write(`${H200}Transfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n`),
    request: { headers: { te: 'trailers' } },
    client: { status: 200, headers: { trailer: undefined, 'transfer-encoding': 'chunked' }, body: 'hello' },
    judge: { ...OK, streaming: true },
    upstream: (t, seen) => t.notMatch(seen.head, /\r\nte:/i, 'TE is hop-by-hop: not forwarded'),
  },
  {
    name: 'a body longer than its Content-Length (the rest is another answer)',
    respond: write(`${H200}Content-Length: 4\r\n\r\nbody${SMUGGLED}`),
    client: { status: 200, headers: { 'content-length': '4' }, body: 'body' },
    judge: OK,
    connections: 2,
  },
  {
    name: 'stray bytes after a complete answer, on the idle connection',
    respond: (s) => {
      s.write(`${H200}Content-Length: 4\r\n\r\nbody`);
      setTimeout(() => s.write(SMUGGLED), 20);
    },
    client: { status: 200, body: 'body' },
    judge: OK,
    closed: true,
    connections: 2,
  },
  {
    name: 'a body shorter than its Content-Length, then close',
    respond: writeAndClose(`${H200}Content-Length: 10\r\n\r\nshort`),
    client: { status: 200, headers: { 'content-length': '10' }, body: 'short', complete: false },
    judge: { failure: 'stream', label: 'error' },
  },
  {
    name: 'a chunked body cut before its last chunk',
    respond: writeAndClose(`${H200}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`),
    client: { status: 200, body: 'hello', complete: false },
    judge: { failure: 'stream', label: 'error', streaming: true },
  },
  {
    name: 'a body delimited by closing the connection',
    respond: writeAndClose(`${H200}Content-Type: text/plain\r\n\r\nuntil the end`),
    client: { status: 200, headers: { 'transfer-encoding': 'chunked' }, body: 'until the end' },
    judge: { ...OK, streaming: true },
  },
  {
    name: 'both Content-Length and Transfer-Encoding',
    respond: write(`${H200}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'two different Content-Lengths',
    respond: write(`${H200}Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc`),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'Transfer-Encoding: gzip, chunked (a coding the gateway would not undo)',
    respond: write(Buffer.concat([Buffer.from(`${H200}Transfer-Encoding: gzip, chunked\r\n\r\n${GZIP.length.toString(16)}\r\n`), GZIP, Buffer.from('\r\n0\r\n\r\n')])),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'a response header block over 16 KiB',
    respond: write(`${H200}X-Big: ${'a'.repeat(17 * 1024)}\r\nContent-Length: 2\r\n\r\nok`),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'a body dribbled one byte at a time',
    respond: dribble(`${H200}Content-Type: text/plain\r\nContent-Length: 16\r\n\r\n`, 'one byte at once', 5),
    client: { status: 200, headers: { 'content-length': '16' }, body: 'one byte at once' },
    // Not a stream (it has a Content-Length): judged by its whole time, 16 gaps of 5 ms (a timer
    // may fire a little early on the event loop's clock, hence the slack).
    judge: { ...OK, streaming: false, minLatencyMs: 60 },
  },
  {
    name: 'a gzip body (Content-Encoding: gzip)',
    respond: write(Buffer.concat([Buffer.from(`${H200}Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${GZIP.length}\r\n\r\n`), GZIP])),
    request: { headers: { 'accept-encoding': 'gzip' } },
    client: { status: 200, headers: { 'content-encoding': 'gzip', 'content-length': String(GZIP.length) }, body: GZIP },
    judge: OK,
    upstream: (t, seen) => t.match(seen.head, /\r\naccept-encoding: gzip/i, "the client's Accept-Encoding reaches the upstream"),
  },
  {
    name: 'a brotli JSON body on a route with a JSON check',
    jsonCheck: true,
    respond: write(Buffer.concat([Buffer.from(`${H200}Content-Type: application/json\r\nContent-Encoding: br\r\nContent-Length: ${BROTLI.length}\r\n\r\n`), BROTLI])),
    request: { headers: { 'accept-encoding': 'br' } },
    client: { status: 200, headers: { 'content-encoding': 'br' }, body: BROTLI },
    judge: { ...OK, jsonCheck: 'unchecked' },
  },
  {
    name: 'an upstream that answers something that is not HTTP',
    respond: write('SSH-2.0-OpenSSH_9.6\r\n\r\n'),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'an upstream that closes the connection as soon as it accepted it',
    respond: null,
    closeOnAccept: true,
    client: { status: 502, code: 'ROLLGATE_UPSTREAM_UNAVAILABLE' },
    judge: { failure: 'reset', label: 'error' },
  },
  {
    name: 'status code 99',
    respond: write('HTTP/1.1 99 Too Low\r\nContent-Length: 0\r\n\r\n'),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'status code 1000',
    respond: write('HTTP/1.1 1000 Too High\r\nContent-Length: 0\r\n\r\n'),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
  {
    name: 'a status line that is not HTTP/1.x',
    respond: write('HTTP/9 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    client: BAD_GATEWAY,
    judge: PROTOCOL,
  },
];

const SCHEMA = { type: 'object', required: ['label'], properties: { label: { type: 'string' } } };

/** rollgate_requests_total of one route's v1, by outcome label, from a /metrics scrape. */
function requestCounts(metrics: string, route: string): Record<Label, number> {
  const counts: Record<Label, number> = { ok: 0, client_error: 0, error: 0, timeout: 0 };
  const re = new RegExp(`^rollgate_requests_total\\{route="${route}",version="v1",outcome="(\\w+)"\\} (\\d+)$`, 'gm');
  for (const m of metrics.matchAll(re)) counts[m[1] as Label] = Number(m[2]);
  return counts;
}

t.test('misbehaving upstreams: what the client gets and what the judge is told', async (t) => {
  const upstreams = await Promise.all(CASES.map((c) => rawUpstream(c.respond, c.closeOnAccept === true)));
  const routes = CASES.map((c, i) => ({
    name: `c${i}`,
    match: { pathPrefix: `/c${i}` },
    stable: { version: 'v1', url: (upstreams[i] as RawUpstream).url },
    ...(c.jsonCheck === true ? { checks: { json: { schema: SCHEMA } } } : {}),
  }));
  const cfg = config(routes);
  const gw = await startGateway(cfg);
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token: 'misbehaving-token', ready: () => true, metrics: gw.metrics });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await admin.app.close();
    await gw.close();
    for (const u of upstreams) u.close();
  });
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${admin.address.port}/metrics`)).text();

  for (const [i, c] of CASES.entries()) {
    const route = `c${i}`;
    const up = upstreams[i] as RawUpstream;
    const before = requestCounts(await scrape(), route);
    const got = await send(agent, gw.port, `/${route}/x`, c.request);
    const want = c.client;
    t.equal(got.status, want.status, `${c.name}: the client gets ${want.status}`);
    t.same(got.interim, want.interim ?? [], `${c.name}: 1xx the client got: [${(want.interim ?? []).join(', ')}]`);
    t.equal(got.complete, want.complete ?? true, `${c.name}: the body ${want.complete === false ? 'breaks off' : 'ends cleanly'}`);
    t.equal(got.headers['x-rollgate-version'], 'v1', `${c.name}: x-rollgate-version names the version`);
    for (const [name, value] of Object.entries(want.headers ?? {})) t.equal(got.headers[name], value, `${c.name}: ${name} ${value ?? 'absent'}`);
    if (want.body !== undefined) t.same(got.body, Buffer.from(want.body), `${c.name}: the body, byte for byte`);
    if (want.code !== undefined) t.match(got.body.toString('latin1'), `{"error":{"code":"${want.code}"`, `${c.name}: ${want.code}`);
    t.same(got.trailers, {}, `${c.name}: no trailers`);

    const outcome = gw.outcomes.filter((o) => o.route === route);
    t.equal(outcome.length, 1, `${c.name}: one outcome`);
    t.equal(outcome[0]?.failure, c.judge.failure, `${c.name}: the judge is told failure ${c.judge.failure}`);
    if (c.judge.streaming !== undefined) t.equal(outcome[0]?.streaming, c.judge.streaming, `${c.name}: judged as ${c.judge.streaming ? '' : 'not '}streaming`);
    if (c.judge.minLatencyMs !== undefined) {
      const o = outcome[0];
      t.ok((o?.latencyMs ?? 0) >= c.judge.minLatencyMs, `${c.name}: latency ${o?.latencyMs.toFixed(1)} ms covers the dribble (>= ${c.judge.minLatencyMs} ms)`);
      t.ok((o?.ttfbMs ?? Infinity) < (o?.latencyMs ?? 0), `${c.name}: the first byte came before the last`);
    }
    const metrics = await scrape();
    const after = requestCounts(metrics, route);
    const delta = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as Label]]));
    t.same(delta, { ok: 0, client_error: 0, error: 0, timeout: 0, [c.judge.label]: 1 }, `${c.name}: rollgate_requests_total{outcome="${c.judge.label}"} +1`);
    if (c.judge.jsonCheck !== undefined) {
      for (const o of ['pass', 'invalid', 'unchecked']) {
        const n = o === c.judge.jsonCheck ? 1 : 0;
        t.match(metrics, `rollgate_response_checks_total{route="${route}",version="v1",check="json",outcome="${o}"} ${n}\n`, `${c.name}: json check ${o} ${n}`);
      }
    }

    if (c.upstream !== undefined && up.seen[0] !== undefined) c.upstream(t, up.seen[0]);
    if (c.closed === true) t.ok(await eventually(() => up.open() === 0), `${c.name}: the gateway closed the upstream connection`);
    const next = await send(agent, gw.port, `/${route}/next`);
    t.same([next.status, next.body.toString(), next.complete], [200, 'next', true], `${c.name}: the next request on the route gets its own answer`);
    if (c.connections !== undefined) t.equal(up.connections(), c.connections, `${c.name}: the upstream saw ${c.connections} connection(s)`);
  }
});

t.test('a held candidate answer whose head cannot be passed on is replayed on stable, not sent empty', async (t) => {
  const doc = '{"label":"candidate"}';
  const heads = [
    ['a header value with a control character', `${H200}Content-Type: application/json\r\nX-Bad: a\u0001b\r\nContent-Length: ${doc.length}\r\n\r\n`],
    ['Transfer-Encoding: identity, the body ending with the connection', `${H200}Content-Type: application/json\r\nTransfer-Encoding: identity\r\n\r\n`],
  ] as const;
  const stable = await rawUpstream((s) => s.write(`${H200}Content-Type: application/json\r\nContent-Length: 18\r\n\r\n{"label":"stable"}`), false, true);
  const candidates = await Promise.all(heads.map(([, head]) => rawUpstream((s) => s.end(head + doc), false, true)));
  const gw = await startGateway(
    config(
      candidates.map((c, i) => ({
        name: `held${i}`,
        match: { pathPrefix: `/held${i}` },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: c.url, weight: 100 },
        retryOnStable: true,
        checks: { json: { schema: SCHEMA, holdForReplay: true } },
      })),
    ),
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await gw.close();
    stable.close();
    for (const c of candidates) c.close();
  });
  for (const [i, [name]] of heads.entries()) {
    const got = await send(agent, gw.port, `/held${i}/x`, { method: 'POST', body: '{}' });
    t.same([got.status, got.headers['x-rollgate-version'], got.body.toString(), got.complete], [200, 'v1', '{"label":"stable"}', true], `${name}: the client gets stable's answer`);
    const outcomes = gw.outcomes.filter((o) => o.route === `held${i}`).map((o) => [o.version, o.failure, o.replayed]);
    t.same(outcomes, [['v2', 'protocol', true], ['v1', 'none', false]], `${name}: the candidate's answer counts as a protocol failure, replayed`);
  }
});
