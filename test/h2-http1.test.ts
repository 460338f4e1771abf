import { connect as h2connect, constants as h2, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import t from 'tap';
import { peakGrowth } from './helpers/memory.js';
import { config, freePort, seededRng, startGateway, startUpstream, type TestGateway, type TestUpstream } from './helpers/servers.js';

/**
 * Plain HTTP/2 requests (prior knowledge, as curl --http2-prior-knowledge or a browser after
 * ALPN would send them) to versions that speak HTTP/1.1: translated by the gateway, judged and
 * counted as HTTP/1.1 requests are.
 */

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request on an HTTP/2 session; the body is written in `chunks` pieces when given. */
function request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | Buffer[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    s.on('response', (h) => (head = h));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }));
    s.on('error', reject);
    if (body !== undefined) {
      for (const part of Array.isArray(body) ? body : [body]) s.write(part);
      s.end();
    }
  });
}

const get = (session: ClientHttp2Session, path: string, extra: OutgoingHttpHeaders = {}): Promise<Answer> => request(session, { ':method': 'GET', ':path': path, ...extra });

/** An http1 upstream that answers with what it received: method, url, headers and the body's length and hash-free echo. */
function startEcho(label: string, status = 200): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ served: label, method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1') });
      res.writeHead(status, { 'content-type': 'application/json', 'x-served-by': label });
      res.end(body);
    });
  });
}

function route(stable: TestUpstream, candidate: TestUpstream | null, extra: Record<string, unknown> = {}) {
  return {
    name: 'api',
    match: { pathPrefix: '/' },
    stable: { version: 'v1', url: stable.url },
    ...(candidate === null ? {} : { candidate: { version: 'v2', url: candidate.url, weight: 20 } }),
    ...extra,
  };
}

async function setup(t: { teardown(fn: () => unknown): void }, upstreams: TestUpstream[], routes: unknown[], seed = 7): Promise<{ gw: TestGateway; session: ClientHttp2Session }> {
  const gw = await startGateway(config(routes), { rng: seededRng(seed) });
  const session = h2connect(`http://127.0.0.1:${gw.port}`);
  session.on('error', () => undefined);
  t.teardown(async () => {
    session.destroy();
    await gw.close();
    await Promise.all(upstreams.map((u) => u.close()));
  });
  return { gw, session };
}

const metricsText = (gw: TestGateway): Promise<string> => gw.metrics.registry.metrics();

t.test('GET and POST are translated to HTTP/1.1: method, path, headers and body reach the upstream, its answer comes back', async (t) => {
  const stable = await startEcho('v1');
  const { gw, session } = await setup(t, [stable], [route(stable, null)]);

  const a = await get(session, '/predict?x=1', { 'x-user': 'ann', cookie: 'a=1', 'x-request-id': 'req-42' });
  t.equal(a.status, 200);
  t.equal(a.headers['x-rollgate-route'], 'api', 'the route header is on the answer');
  t.equal(a.headers['x-rollgate-version'], 'v1', 'the version header is on the answer');
  t.equal(a.headers['x-request-id'], 'req-42', 'the client\'s request id comes back');
  t.equal(a.headers['x-served-by'], 'v1', 'the upstream\'s own headers pass');
  const seen = JSON.parse(a.body.toString());
  t.equal(seen.httpVersion, '1.1', 'the upstream is spoken to in HTTP/1.1');
  t.equal(seen.method, 'GET');
  t.equal(seen.url, '/predict?x=1', 'path and query pass');
  t.equal(seen.headers['x-user'], 'ann', 'request headers pass');
  t.equal(seen.headers['x-request-id'], 'req-42', 'the request id goes upstream');
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'x-forwarded-for names the client');
  t.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${gw.port}`, ':authority becomes x-forwarded-host');
  t.equal(seen.headers['x-forwarded-proto'], 'http');
  t.equal(seen.headers.host, `127.0.0.1:${stable.port}`, 'Host is the upstream\'s');
  t.notOk((seen.rawHeaders as string[]).some((h) => h.startsWith(':')), 'no pseudo-header goes upstream');

  const twoCookies = await get(session, '/c', { cookie: ['a=1', 'b=2'] });
  t.equal(JSON.parse(twoCookies.body.toString()).headers.cookie, 'a=1; b=2', 'HTTP/2 cookie fields are joined with "; " for HTTP/1.1');
  const generated = await get(session, '/g');
  t.match(generated.headers['x-request-id'], /^[0-9a-f]{12}-[0-9a-z]+$/, 'a request id is made when the client sent none');
  t.equal(JSON.parse(generated.body.toString()).headers['x-request-id'], generated.headers['x-request-id'], 'the same id went upstream');

  const payload = Buffer.from(JSON.stringify({ inputs: [[1, 2, 3]] }));
  const post = await request(session, { ':method': 'POST', ':path': '/predict', 'content-type': 'application/json', 'content-length': payload.length }, payload);
  const echoed = JSON.parse(post.body.toString());
  t.equal(echoed.method, 'POST');
  t.equal(echoed.body, payload.toString(), 'a small body with its length arrives whole');
  t.equal(echoed.headers['content-length'], String(payload.length));

  // No content-length, in many DATA frames: streamed upstream chunked.
  const parts = Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 * 1024, 97 + (i % 26)));
  const streamed = await request(session, { ':method': 'PUT', ':path': '/upload' }, parts);
  const up = JSON.parse(streamed.body.toString());
  t.equal(up.method, 'PUT');
  t.equal(up.headers['transfer-encoding'], 'chunked', 'a body of unknown length is sent chunked');
  t.ok(Buffer.from(up.body, 'latin1').equals(Buffer.concat(parts)), 'a 1 MB body of unknown length arrives whole and in order');

  const head = await request(session, { ':method': 'HEAD', ':path': '/h' });
  t.equal(head.status, 200, 'HEAD is answered');
  t.equal(head.body.length, 0, 'with no body');
  t.equal(gw.outcomes.length, 6, 'one outcome per request');
  t.same(gw.outcomes.map((o) => o.failure), ['none', 'none', 'none', 'none', 'none', 'none'], 'every one answered, HEAD included (not taken for an abort)');
  t.match(await metricsText(gw), /^rollgate_requests_total\{route="api",version="v1",outcome="ok"\} 6$/m, 'each counts once in rollgate_requests_total');
});

t.test('1,000 requests over ONE connection split at weight 20 per request, the upstreams agree', async (t) => {
  const stable = await startEcho('v1');
  const candidate = await startEcho('v2');
  const { gw, session } = await setup(t, [stable, candidate], [route(stable, candidate)]);
  const N = 1_000;
  const by = { v1: 0, v2: 0 } as Record<string, number>;
  for (let batch = 0; batch < N / 50; batch++) {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => get(session, `/r/${batch * 50 + i}`)));
    for (const a of answers) {
      const served = JSON.parse(a.body.toString()).served as string;
      if (a.status !== 200 || a.headers['x-rollgate-version'] !== served) return t.fail(`status ${a.status}, version header ${a.headers['x-rollgate-version']} for ${served}`);
      by[served] = (by[served] ?? 0) + 1;
    }
  }
  const share = (100 * (by.v2 ?? 0)) / N;
  t.ok(Math.abs(share - 20) <= 3, `candidate share ${share.toFixed(1)}% is within 3 points of 20`);
  t.equal(candidate.seen.length, by.v2, 'the candidate counted the requests it answered');
  t.equal(stable.seen.length, by.v1, 'stable counted the requests it answered');
  const text = await metricsText(gw);
  t.match(text, new RegExp(`^rollgate_requests_total\\{route="api",version="v2",outcome="ok"\\} ${by.v2}$`, 'm'), 'the candidate\'s requests are counted');
  t.match(text, new RegExp(`^rollgate_requests_total\\{route="api",version="v1",outcome="ok"\\} ${by.v1}$`, 'm'), 'stable\'s requests are counted');
  t.equal(gw.outcomes.filter((o) => o.role === 'candidate').length, by.v2, 'outcomes record the candidate\'s share');
});

t.test('a candidate answering 500 is rolled back within consecutiveFailures; the client sees the 500', async (t) => {
  const stable = await startEcho('v1');
  let failing = false;
  const candidate = await startUpstream((req, res) => {
    req.resume();
    res.writeHead(failing ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(failing ? 'model crashed' : 'ok');
  });
  const { gw, session } = await setup(t, [stable, candidate], [route(stable, candidate, { rollback: { consecutiveFailures: 5 } })]);
  const controller = gw.rollouts.route('api')!;
  for (let i = 0; i < 100; i++) await get(session, '/p');
  t.equal(controller.phase, 'progressing', 'no rollback while both versions answer');
  failing = true;
  const before = candidate.seen.length;
  let seen500 = 0;
  for (let i = 0; i < 2_000 && controller.phase !== 'rolled_back'; i++) {
    const a = await get(session, '/p');
    if (a.status === 500) {
      if (a.headers['x-rollgate-version'] !== 'v2' || a.body.toString() !== 'model crashed') t.fail('the candidate\'s 500 reaches the client as it was');
      seen500++;
    }
  }
  t.equal(controller.phase, 'rolled_back', 'the route is rolled back');
  const failed = candidate.seen.length - before;
  t.ok(failed >= 1 && failed <= 5, `rolled back after ${failed} failed candidate requests (consecutiveFailures 5)`);
  t.equal(seen500, failed, 'every failure reached the client (no retryOnStable)');
  const after = candidate.seen.length;
  for (let i = 0; i < 30; i++) t.equal((await get(session, '/p')).headers['x-rollgate-version'], 'v1');
  t.equal(candidate.seen.length, after, 'nothing reaches the candidate after the rollback');
  t.match(await metricsText(gw), new RegExp(`^rollgate_requests_total\\{route="api",version="v2",outcome="error"\\} ${failed}$`, 'm'), 'the 500s count as errors');
});

t.test('with retryOnStable a candidate 500 is replayed on stable: the client gets stable\'s answer, the failure still counts', async (t) => {
  const stable = await startEcho('v1');
  const candidate = await startEcho('v2', 503);
  // Each version under its own base path: the replay goes to stable's.
  const versions = { stable: { version: 'v1', url: `${stable.url}/s` }, candidate: { version: 'v2', url: `${candidate.url}/c`, weight: 20 } };
  const { gw, session } = await setup(t, [stable, candidate], [route(stable, candidate, { ...versions, retryOnStable: true, rollback: { consecutiveFailures: 3 } })]);
  const controller = gw.rollouts.route('api')!;
  const body = Buffer.from('{"inputs":[1]}');
  let wrong = 0;
  for (let i = 0; i < 500 && controller.phase !== 'rolled_back'; i++) {
    const a = await request(session, { ':method': 'POST', ':path': '/p', 'content-length': body.length }, body);
    const echoed = JSON.parse(a.body.toString());
    if (a.status !== 200 || echoed.served !== 'v1' || echoed.url !== '/s/p' || echoed.body !== body.toString() || a.headers['x-rollgate-version'] !== 'v1') wrong++;
  }
  t.same(candidate.seen.map((r) => r.url).slice(0, 1), ['/c/p'], 'the candidate got the request under its own base path');
  t.equal(wrong, 0, 'every request got stable\'s answer to its own body');
  t.equal(controller.phase, 'rolled_back', 'the candidate\'s failures still count');
  const failed = candidate.seen.length;
  t.ok(failed >= 1 && failed <= 3, `${failed} candidate requests failed`);
  t.equal(gw.outcomes.filter((o) => o.replayed).length, failed, 'each was replayed');
});

t.test('a 404 from the candidate is the client\'s: counted as client_error, never a failure', async (t) => {
  const stable = await startEcho('v1');
  const candidate = await startEcho('v2', 404);
  const { gw, session } = await setup(t, [stable, candidate], [route(stable, candidate, { rollback: { consecutiveFailures: 3, warmup: 10 } })], 11);
  let notFound = 0;
  for (let i = 0; i < 500; i++) if ((await get(session, '/missing')).status === 404) notFound++;
  t.ok(notFound >= 50, `${notFound} requests answered 404 by the candidate`);
  t.equal(notFound, candidate.seen.length, 'each 404 reached the client');
  t.equal(gw.rollouts.route('api')!.phase, 'progressing', 'the route is not rolled back');
  const text = await metricsText(gw);
  t.match(text, new RegExp(`^rollgate_requests_total\\{route="api",version="v2",outcome="client_error"\\} ${notFound}$`, 'm'), 'counted as client errors');
  t.match(text, /^rollgate_requests_total\{route="api",version="v2",outcome="error"\} 0$/m, 'none counts as an error');
});

t.test('hop-by-hop headers of the upstream\'s answer are dropped, not passed into HTTP/2', async (t) => {
  const stable = await startUpstream((req, res) => {
    req.resume();
    if (req.url === '/two-types') {
      res.writeHead(200, ['content-type', 'text/plain', 'content-type', 'text/html']);
      return void res.end('which?');
    }
    res.setHeader('connection', 'keep-alive, x-hop');
    res.setHeader('keep-alive', 'timeout=5');
    res.setHeader('transfer-encoding', 'chunked');
    res.setHeader('proxy-connection', 'keep-alive');
    res.setHeader('upgrade', 'h2c');
    res.setHeader('x-hop', 'named by connection');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('X-Model-Name', 'resnet');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('chunk one, ');
    setTimeout(() => res.end('chunk two'), 20);
  });
  const { gw, session } = await setup(t, [stable], [route(stable, null)]);
  const a = await get(session, '/hop');
  t.equal(a.status, 200, 'the answer is served');
  t.equal(a.body.toString(), 'chunk one, chunk two', 'its chunked body arrives whole');
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'x-hop']) t.notOk(name in a.headers, `no ${name}`);
  t.same(a.headers['set-cookie'], ['a=1', 'b=2'], 'repeated set-cookie fields stay separate');
  t.equal(a.headers['x-model-name'], 'resnet', 'other headers pass, lowercased');
  t.equal(gw.outcomes[0]?.failure, 'none');
  t.equal(gw.outcomes[0]?.streaming, true, 'an answer without content-length is recorded as streaming');
  // HTTP/1.1 clients get both; HTTP/2 allows one content-type, and picking one would be a guess.
  const twoTypes = await get(session, '/two-types');
  t.equal(twoTypes.status, 502, 'an answer HTTP/2 cannot carry (two content-types) is a 502');
  t.equal(JSON.parse(twoTypes.body.toString()).error.code, 'ROLLGATE_UPSTREAM_ERROR');
  t.equal(gw.outcomes[1]?.failure, 'protocol', 'counted against the version as a protocol failure');
});

t.test('a 20 MB answer passes whole to a slow reader with bounded memory; a 20 MB upload to a slow reader too', async (t) => {
  const SIZE = 20 * 1_048_576;
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = i % 251;
  const stable = await startUpstream((req, res) => {
    if (req.method === 'POST') {
      let bytes = 0;
      let n = 0;
      // A slow reader: the gateway must hold the client back, not buffer the upload.
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        if (++n % 4 === 0) {
          req.pause();
          setTimeout(() => req.resume(), 5);
        }
      });
      req.on('end', () => res.end(String(bytes)));
      return;
    }
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE });
    let sent = 0;
    const more = (): void => {
      while (sent < SIZE) {
        sent += block.length;
        if (!res.write(block)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  const { gw, session } = await setup(t, [stable], [route(stable, null)]);
  const read = new Promise<{ bytes: number; intact: boolean }>((resolve, reject) => {
    const s = session.request({ ':method': 'GET', ':path': '/big' });
    let bytes = 0;
    let intact = true;
    let n = 0;
    s.on('data', (c: Buffer) => {
      for (let i = 0; i < c.length; i += 4099) if (c[i] !== ((bytes + i) % block.length) % 251) intact = false;
      bytes += c.length;
      // A slow reader: the gateway must hold the upstream back, not buffer the answer.
      if (++n % 8 === 0) {
        s.pause();
        setTimeout(() => s.resume(), 5);
      }
    });
    s.on('end', () => resolve({ bytes, intact }));
    s.on('error', reject);
  });
  const growth = await peakGrowth(read);
  const got = await read;
  t.equal(got.bytes, SIZE, '20 MB arrived');
  t.ok(got.intact, 'intact and in order');
  t.ok(growth < 6 * 1_048_576, `peak live memory growth ${(growth / 1_048_576).toFixed(1)} MB for a 20 MB answer`);

  const upload = request(session, { ':method': 'POST', ':path': '/up' }, Array.from({ length: SIZE / block.length }, () => block));
  const upGrowth = await peakGrowth(upload);
  t.equal((await upload).body.toString(), String(SIZE), 'a 20 MB upload arrived whole upstream');
  t.ok(upGrowth < 6 * 1_048_576, `peak live memory growth ${(upGrowth / 1_048_576).toFixed(1)} MB for a 20 MB upload`);
  t.same(gw.outcomes.map((o) => o.failure), ['none', 'none']);
});

t.test('errors the gateway makes: 502 and 504 with the JSON error body, counted against the version', async (t) => {
  const hanging = await startUpstream(() => undefined);
  const downPort = await freePort();
  const grpcish = await startEcho('g1');
  const routes = [
    { name: 'down', match: { pathPrefix: '/down' }, stable: { version: 'd1', url: `http://127.0.0.1:${downPort}` } },
    { name: 'slow', match: { pathPrefix: '/slow' }, stable: { version: 's1', url: hanging.url }, timeouts: { response: '300ms' } },
    // Catches every other path, CONNECT's included (it has no :path): a CONNECT must not reach it.
    { name: 'rest', match: { pathPrefix: '/' }, stable: { version: 'r1', url: grpcish.url } },
  ];
  const { gw, session } = await setup(t, [hanging, grpcish], routes);

  const down = await get(session, '/down/x');
  t.equal(down.status, 502, 'an upstream that refuses the connection: 502');
  t.equal(down.headers['content-type'], 'application/json; charset=utf-8');
  t.equal(down.headers['x-rollgate-version'], 'd1');
  t.equal(down.headers['x-rollgate-route'], 'down');
  t.ok(typeof down.headers['x-request-id'] === 'string', 'with its request id');
  t.same(JSON.parse(down.body.toString()), { error: { code: 'ROLLGATE_UPSTREAM_UNAVAILABLE', message: `route down: upstream d1 (http://127.0.0.1:${downPort}) refused the connection`, route: 'down' } }, 'the body HTTP/1.1 clients get');

  const slow = await get(session, '/slow/x');
  t.equal(slow.status, 504, 'no answer within timeouts.response: 504');
  t.equal(JSON.parse(slow.body.toString()).error.code, 'ROLLGATE_UPSTREAM_TIMEOUT');

  const tunnel = await request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' }, Buffer.alloc(0));
  t.equal(tunnel.status, 400, 'CONNECT is refused: 400');
  t.equal(JSON.parse(tunnel.body.toString()).error.code, 'ROLLGATE_MALFORMED_REQUEST');

  const grpc = await request(session, { ':method': 'POST', ':path': '/rest/pkg.Service/Call', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.alloc(5));
  t.equal(grpc.headers['grpc-status'], '12', 'a gRPC call to an http1 version is still UNIMPLEMENTED');
  t.equal(grpcish.seen.length, 0, 'neither it nor the CONNECT reaches the upstream');

  const text = await metricsText(gw);
  t.match(text, /^rollgate_requests_total\{route="down",version="d1",outcome="error"\} 1$/m, 'the refused request counts as an error');
  t.match(text, /^rollgate_requests_total\{route="slow",version="s1",outcome="timeout"\} 1$/m, 'the timeout counts as a timeout');
  t.same(gw.outcomes.map((o) => o.failure), ['connect', 'timeout']);
});

t.test('a client that resets its stream mid-answer aborts the upstream request and is never counted', async (t) => {
  let closedUpstream = false;
  const stable = await startUpstream((req, res) => {
    req.resume();
    if (req.url !== '/stream') return void res.end('ok');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const timer = setInterval(() => res.write('data: token\n\n'), 5);
    res.on('close', () => {
      clearInterval(timer);
      closedUpstream = true;
    });
  });
  const { gw, session } = await setup(t, [stable], [route(stable, null)]);
  await new Promise<void>((resolve) => {
    const s = session.request({ ':method': 'GET', ':path': '/stream' });
    s.on('data', () => s.close(h2.NGHTTP2_CANCEL));
    s.on('close', () => resolve());
  });
  const deadline = Date.now() + 5_000;
  while ((!closedUpstream || gw.outcomes.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.ok(closedUpstream, 'the upstream request was cut');
  t.equal(gw.outcomes[0]?.failure, 'aborted', 'recorded as aborted');
  t.notMatch(await metricsText(gw), /^rollgate_requests_total\{route="api",version="v1",outcome="(ok|error)"\} [1-9]/m, 'and not counted');
  t.equal((await get(session, '/after')).status, 200, 'the connection serves the next request');
});
