import t from 'tap';
import { Pool } from 'undici';
import { closeAll, config, freePort, rawExchange, seededRng, startGateway, startUpstream } from './helpers/servers.js';

async function versions(label: string, behaviour: () => 'ok' | 'fail' | 'hang') {
  const bodies: string[] = [];
  const up = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push(body);
      const b = behaviour();
      if (b === 'hang') return;
      res.writeHead(b === 'fail' ? 503 : 200, { 'content-type': 'application/json' }).end(`{"model":"${label}"}`);
    });
  });
  return { up, bodies };
}

async function run(pool: Pool, n: number, body = '{"inputs":[1,2,3]}') {
  const statuses: number[] = [];
  const served: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await pool.request({ path: '/v1/models/m:predict', method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const text = await r.body.text();
    statuses.push(r.statusCode);
    served.push(`${r.headers['x-rollgate-version']}:${text}`);
  }
  return { statuses, served };
}

t.test('with retryOnStable, a candidate that starts failing is rolled back and no client sees an error', async (t) => {
  let candidateMode: 'ok' | 'fail' = 'ok';
  const stable = await versions('v1', () => 'ok');
  const candidate = await versions('v2', () => candidateMode);
  const gw = await startGateway(
    config([
      {
        name: 'm',
        match: { pathPrefix: '/v1/models/m' },
        stable: { version: 'v1', url: stable.up.url },
        candidate: { version: 'v2', url: candidate.up.url, weight: 30 },
        retryOnStable: true,
      },
    ]),
    { rng: seededRng(21) },
  );
  const pool = new Pool(gw.url, { connections: 2 });
  t.teardown(closeAll(pool, gw, stable.up, candidate.up));

  const before = await run(pool, 100);
  candidateMode = 'fail';
  const during = await run(pool, 300);
  const all = [...before.statuses, ...during.statuses];
  t.ok(all.every((s) => s === 200), `all ${all.length} clients got 200`);
  t.equal(gw.rollouts.route('m')!.phase, 'rolled_back', 'the candidate was still rolled back: replayed failures count against it');
  const replayed = gw.outcomes.filter((o) => o.role === 'candidate' && o.replayed);
  t.ok(replayed.length >= 1 && replayed.length <= 5, `${replayed.length} candidate failures were replayed on stable`);
  t.ok(replayed.every((o) => o.failure === 'status' && o.status === 503), 'each recorded as the candidate failure it was');
  t.ok(during.served.every((s) => s.startsWith('v1:') || s.startsWith('v2:{"model":"v2"}')), 'a replayed answer comes from stable, labelled v1');
  // Stable received the replays with the same body.
  const lastStableBodies = stable.bodies.slice(-during.statuses.length);
  t.ok(lastStableBodies.every((b) => b === '{"inputs":[1,2,3]}'), 'stable got the same body');
});

t.test('retryOnStable covers connection refused and timeouts too', async (t) => {
  const stable = await versions('v1', () => 'ok');
  const hanging = await versions('v3', () => 'hang');
  const closed = await freePort();
  const gw = await startGateway(
    config([
      {
        name: 'refused',
        match: { pathPrefix: '/v1/models/m' },
        stable: { version: 'v1', url: stable.up.url },
        candidate: { version: 'v2', url: `http://127.0.0.1:${closed}`, weight: 100 },
        retryOnStable: true,
      },
      {
        name: 'slow',
        match: { pathPrefix: '/v2/models/m' },
        stable: { version: 'v1', url: stable.up.url },
        candidate: { version: 'v3', url: hanging.up.url, weight: 100 },
        retryOnStable: true,
        timeouts: { connect: '1s', response: '100ms' },
      },
    ]),
  );
  const pool = new Pool(gw.url, { connections: 1 });
  t.teardown(closeAll(pool, gw, stable.up, hanging.up));
  const refused = await run(pool, 10);
  t.same(refused.statuses, Array(10).fill(200), 'connection refused: every client got 200 from stable');
  t.equal(gw.rollouts.route('refused')!.phase, 'rolled_back');
  const r = await pool.request({ path: '/v2/models/m:predict', method: 'POST', body: '{}' });
  t.equal(r.statusCode, 200, 'a timed-out candidate request is answered by stable');
  t.equal(r.headers['x-rollgate-version'], 'v1');
  await r.body.dump();
  t.match(gw.outcomes.find((o) => o.route === 'slow' && o.role === 'candidate'), { failure: 'timeout', replayed: true });
});

t.test('without retryOnStable the client sees the candidate failure', async (t) => {
  const stable = await versions('v1', () => 'ok');
  const candidate = await versions('v2', () => 'fail');
  const gw = await startGateway(
    config([
      { name: 'm', match: { pathPrefix: '/v1/models/m' }, stable: { version: 'v1', url: stable.up.url }, candidate: { version: 'v2', url: candidate.up.url, weight: 100 } },
    ]),
  );
  const pool = new Pool(gw.url, { connections: 1 });
  t.teardown(closeAll(pool, gw, stable.up, candidate.up));
  const r = await run(pool, 3);
  t.equal(r.statuses[0], 503, 'the first failure reaches the client');
});

t.test('a replayed request carries the same Idempotency-Key and request id to both tries', async (t) => {
  const seen: { version: string; path: unknown; key: unknown; id: unknown; body: string }[] = [];
  const model = (version: string, status: number) =>
    startUpstream((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ version, path: req.url, key: req.headers['idempotency-key'], id: req.headers['x-request-id'], body });
        res.writeHead(status, { 'content-type': 'application/json' }).end(`{"model":"${version}"}`);
      });
    });
  const stable = await model('v1', 200);
  const candidate = await model('v2', 503);
  const gw = await startGateway(
    // Each version's URL has its own path: the replay goes to stable's, not the candidate's.
    config([{ name: 'm', match: { pathPrefix: '/v1/models/m' }, stable: { version: 'v1', url: `${stable.url}/stable` }, candidate: { version: 'v2', url: `${candidate.url}/next`, weight: 0 }, allowOverride: true, retryOnStable: true, rollback: { consecutiveFailures: 100 } }]),
  );
  t.teardown(closeAll(gw, stable, candidate));
  const pool = new Pool(gw.url);
  t.teardown(() => pool.close());
  const r = await pool.request({
    path: '/v1/models/m:predict',
    method: 'POST',
    body: '{"inputs":[7]}',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'order-7f3a', 'x-rollgate-version': 'candidate', 'x-request-id': 'req-42' },
  });
  t.equal(r.statusCode, 200, "the client gets stable's answer");
  t.equal(await r.body.text(), '{"model":"v1"}');
  t.same(seen, [
    { version: 'v2', path: '/next/v1/models/m:predict', key: 'order-7f3a', id: 'req-42', body: '{"inputs":[7]}' },
    { version: 'v1', path: '/stable/v1/models/m:predict', key: 'order-7f3a', id: 'req-42', body: '{"inputs":[7]}' },
  ], "the candidate, then stable under its own URL's path, each with the key, the id and the body unchanged");
});

t.test('replayMethods: a failure the candidate received is replayed only for the listed methods; one it never received, always', async (t) => {
  const seen: string[] = [];
  // The candidate fails each request its own way, named by the path's last segment.
  const candidate = await startUpstream((req, res) => {
    seen.push(`v2 ${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      if (req.url?.endsWith('/reset')) res.socket?.destroy();
      else res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"v2 down"}');
    });
  });
  const stable = await startUpstream((req, res) => {
    seen.push(`v1 ${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"model":"v1"}'));
  });
  const closed = await freePort();
  const route = (name: string, url: string, extra: Record<string, unknown>) => ({
    name,
    match: { pathPrefix: `/${name}` },
    stable: { version: 'v1', url: stable.url },
    candidate: { version: 'v2', url, weight: 0 },
    allowOverride: true,
    retryOnStable: true,
    rollback: { consecutiveFailures: 1000 },
    ...extra,
  });
  const gw = await startGateway(
    config([
      route('listed', candidate.url, { replayMethods: ['GET', 'put'] }),
      route('refused', `http://127.0.0.1:${closed}`, { replayMethods: [] }),
      route('default', candidate.url, {}),
    ]),
  );
  const pool = new Pool(gw.url);
  t.teardown(closeAll(pool, gw, stable, candidate));
  const call = async (method: string, path: string) => {
    const r = await pool.request({ path, method, body: method === 'GET' ? null : '{"inputs":[1]}', headers: { 'x-rollgate-version': 'candidate' } });
    return `${r.statusCode} ${String(r.headers['x-rollgate-version'])} ${await r.body.text()}`;
  };

  seen.length = 0;
  t.equal(await call('POST', '/listed/status'), '503 v2 {"error":"v2 down"}', 'POST not listed: the candidate 503 reaches the client');
  t.same(seen, ['v2 POST /listed/status'], 'and stable never got it');
  seen.length = 0;
  t.match(await call('POST', '/listed/reset'), /^502 v2 .*"ROLLGATE_UPSTREAM_UNAVAILABLE"/, 'POST not listed: a reset after the candidate read it is a 502');
  t.same(seen, ['v2 POST /listed/reset'], 'and stable never got it');
  seen.length = 0;
  t.equal(await call('GET', '/listed/status'), '200 v1 {"model":"v1"}', 'GET listed: replayed on stable');
  t.equal(await call('PUT', '/listed/reset'), '200 v1 {"model":"v1"}', 'PUT listed (written put): replayed on stable');
  t.same(seen, ['v2 GET /listed/status', 'v1 GET /listed/status', 'v2 PUT /listed/reset', 'v1 PUT /listed/reset']);

  seen.length = 0;
  t.equal(await call('POST', '/refused/x'), '200 v1 {"model":"v1"}', 'connection refused: replayed whatever the method, even with replayMethods []');
  t.equal(await call('DELETE', '/refused/x'), '200 v1 {"model":"v1"}');
  t.same(seen, ['v1 POST /refused/x', 'v1 DELETE /refused/x']);

  seen.length = 0;
  t.equal(await call('POST', '/default/status'), '200 v1 {"model":"v1"}', 'default: every method is replayed');
  t.equal(await call('PATCH', '/default/reset'), '200 v1 {"model":"v1"}');
  t.same(seen, ['v2 POST /default/status', 'v1 POST /default/status', 'v2 PATCH /default/reset', 'v1 PATCH /default/reset']);

  const failures = gw.outcomes.filter((o) => o.route === 'listed' && o.role === 'candidate').map((o) => `${o.failure}:${o.replayed}`);
  t.same(failures, ['status:false', 'reset:false', 'status:true', 'reset:true'], 'each candidate failure counts against it, replayed or not');
});

t.test('a chunked request body that came whole is replayed on stable too', async (t) => {
  const seen: string[] = [];
  const model = (version: string, status: number) =>
    startUpstream((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(`${version} ${body}`);
        res.writeHead(status, { 'content-type': 'application/json' }).end(`{"model":"${version}"}`);
      });
    });
  const stable = await model('v1', 200);
  const candidate = await model('v2', 503);
  const gw = await startGateway(
    // Each version's URL has its own path: the replay goes to stable's, not the candidate's.
    config([{ name: 'm', match: { pathPrefix: '/v1/models/m' }, stable: { version: 'v1', url: `${stable.url}/stable` }, candidate: { version: 'v2', url: `${candidate.url}/next`, weight: 0 }, allowOverride: true, retryOnStable: true, rollback: { consecutiveFailures: 100 } }]),
  );
  t.teardown(closeAll(gw, stable, candidate));
  const answer = await rawExchange(
    gw.port,
    'POST /v1/models/m:predict HTTP/1.1\r\nhost: 127.0.0.1\r\nx-rollgate-version: candidate\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n6\r\n{"in":\r\n4\r\n[1]}\r\n0\r\n\r\n',
    5_000,
  );
  t.match(answer, /^HTTP\/1\.1 200 [\s\S]*x-rollgate-version: v1\r\n[\s\S]*\{"model":"v1"\}/, "the client gets stable's answer");
  t.same(seen, ['v2 {"in":[1]}', 'v1 {"in":[1]}'], 'the candidate, then stable, each with the whole body');
});
