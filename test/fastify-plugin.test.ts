import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import t from 'tap';
import { hashing, host, route, send, TOKEN } from './helpers/fastify-host.js';
import { config, eventually, startLabelled } from './helpers/servers.js';

/** Handles of each kind beyond the count in `before`. */
function excess(now: string[], before: string[]): Record<string, number> {
  const count = (xs: string[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
  const [n, b] = [count(now), count(before)];
  return Object.fromEntries(Object.entries(n).filter(([k, v]) => v > (b[k] ?? 0)));
}

const noMoreThan = (now: string[], before: string[]): boolean => Object.keys(excess(now, before)).length === 0;

function* chunks(b: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

t.test('requests under the prefix are split by weight and labelled; the host keeps its own routes and hooks', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const h = await host(config([route(stable.url, candidate.url)]));
  t.teardown(async () => {
    await h.pool.close();
    await h.app.close();
    await stable.close();
    await candidate.close();
  });

  const hello = await h.pool.request({ path: '/hello', method: 'GET' });
  t.equal(hello.statusCode, 200);
  t.same(await hello.body.json(), { hello: 'from the host' }, "the host's own route answers");

  const counts = { v1: 0, v2: 0 };
  const wrong = { route: 0, version: 0, hook: 0, path: 0 };
  for (let i = 0; i < 400; i++) {
    const r = await h.pool.request({ path: `/v1/models/m/infer?i=${i}`, method: 'GET' });
    const body = (await r.body.json()) as { served: 'v1' | 'v2'; path: string };
    if (r.headers['x-rollgate-route'] !== 'm') wrong.route++;
    if (r.headers['x-rollgate-version'] !== body.served) wrong.version++;
    if (r.headers['x-host-hook'] !== 'ran') wrong.hook++;
    if (body.path !== `/v1/models/m/infer?i=${i}`) wrong.path++;
    counts[body.served]++;
  }
  t.equal(wrong.route, 0, 'every answer carries x-rollgate-route');
  t.equal(wrong.version, 0, 'x-rollgate-version names the version that answered');
  t.equal(wrong.hook, 0, "a header set by the host's onRequest hook reaches the client");
  t.equal(wrong.path, 0, 'the upstream gets the path as the client sent it');
  t.ok(counts.v2 > 400 * 0.2 && counts.v2 < 400 * 0.4, `about 30% on the candidate (${counts.v2} of 400)`);
  t.same(h.app.rollgate.rollouts.route('m')!.state().windows.candidate?.count, counts.v2, "the judge's window counts what the candidate served");
  t.equal(h.responses.length, 401, "the host's onResponse hook ran for every request, proxied ones included");

  const other = await h.pool.request({ path: '/v1/models/mx', method: 'GET' });
  t.equal(other.statusCode, 404, "a path that only shares the prefix's characters is the host's 404");
  await other.body.dump();
  const verb = await send(h.pool, 1, '/v1/models/m:predict');
  t.same(verb.statuses, [200], 'a `prefix:verb` path is proxied too');
});

t.test('a POST body streams through byte for byte, small, large and chunked, whatever its content-type', async (t) => {
  const stable = await hashing('v1');
  const candidate = await hashing('v2');
  const h = await host(config([route(stable.url, candidate.url)]));
  t.teardown(async () => {
    await h.pool.close();
    await h.app.close();
    await stable.close();
    await candidate.close();
  });
  const cases: { name: string; body: Buffer; headers: Record<string, string>; chunked?: boolean }[] = [
    { name: 'small JSON', body: Buffer.from('{"inputs":[1,2,3]}'), headers: { 'content-type': 'application/json' } },
    { name: '3 MiB of bytes', body: randomBytes(3 * 1024 * 1024), headers: { 'content-type': 'application/octet-stream' } },
    { name: 'no content-type', body: randomBytes(70_000), headers: {} },
    { name: 'chunked JSON-typed bytes', body: randomBytes(200_000), headers: { 'content-type': 'application/json' }, chunked: true },
  ];
  for (const c of cases) {
    const body = c.chunked ? Readable.from(chunks(c.body, 16_384)) : c.body;
    const r = await h.pool.request({ path: '/v1/models/m/infer', method: 'POST', body, headers: c.headers });
    const got = (await r.body.json()) as { bytes: number; sha: string };
    t.equal(r.statusCode, 200, c.name);
    t.same(got, { ...got, bytes: c.body.length, sha: createHash('sha256').update(c.body).digest('hex') }, `${c.name}: the upstream got the exact bytes`);
  }
});

t.test('a candidate answering 500s is rolled back by the judge, as in the standalone server', async (t) => {
  const stable = await hashing('v1');
  const candidate = await hashing('v2');
  const h = await host(config([route(stable.url, candidate.url)]), 3);
  t.teardown(async () => {
    await h.pool.close();
    await h.app.close();
    await stable.close();
    await candidate.close();
  });
  const controller = h.app.rollgate.rollouts.route('m')!;
  t.ok((await send(h.pool, 100)).versions.includes('v2'), 'the candidate takes traffic while healthy');
  t.equal(controller.phase, 'progressing');

  candidate.set(500);
  for (let i = 0; i < 300 && controller.phase !== 'rolled_back'; i++) await send(h.pool, 1);
  t.equal(controller.phase, 'rolled_back', 'the route is rolled back');
  t.equal(controller.state().weight, 0, "the candidate's weight is 0");
  t.match(controller.state().lastDecision, { reason: 'consecutive_failures' });
  const after = await send(h.pool, 100);
  t.same(new Set(after.versions), new Set(['v1']), 'every later request goes to stable');
  t.same(new Set(after.statuses), new Set([200]));

  const r = await h.pool.request({ path: '/rollgate/api/routes/m', method: 'GET', headers: { authorization: `Bearer ${TOKEN}` } });
  t.match(await r.body.json(), { phase: 'rolled_back', weight: 0 }, 'the admin plugin shows the same state');
});

t.test('the admin plugin under a prefix: the token, the API, the status page', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const h = await host(config([route(stable.url, candidate.url)]));
  t.teardown(async () => {
    await h.pool.close();
    await h.app.close();
    await stable.close();
    await candidate.close();
  });
  const get = async (path: string, auth = true) => {
    const r = await h.pool.request({ path, method: 'GET', headers: auth ? { authorization: `Bearer ${TOKEN}` } : {} });
    return { status: r.statusCode, text: await r.body.text() };
  };
  const list = await get('/rollgate/api/routes');
  t.equal(list.status, 200);
  t.same(JSON.parse(list.text).routes.map((r: { name: string }) => r.name), ['m']);
  const none = await get('/rollgate/api/routes', false);
  t.equal(none.status, 401, 'no token: 401');
  t.match(JSON.parse(none.text), { error: { code: 'ROLLGATE_UNAUTHORIZED' } });
  t.match(JSON.parse((await get('/rollgate/api/nope')).text), { error: { code: 'ROLLGATE_NOT_FOUND' } }, "rollgate's 404 under its prefix");
  t.equal((await get('/rollgate/healthz', false)).status, 200);
  t.equal((await get('/rollgate/readyz', false)).status, 200);
  t.match((await get('/rollgate/metrics', false)).text, /rollgate_/, 'metrics under the prefix');
  const page = await get('/rollgate/', false);
  t.equal(page.status, 200);
  t.match(page.text, /location\.pathname/, 'the status page finds the API under its own path');

  const put = await h.pool.request({
    path: '/rollgate/api/routes/m/weight',
    method: 'PUT',
    body: '{"weight": 100}',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
  });
  t.equal(put.statusCode, 200);
  await put.body.dump();
  t.same(new Set((await send(h.pool, 20)).versions), new Set(['v2']), 'a weight set through the admin plugin moves the live split');
  const host404 = await h.pool.request({ path: '/api/routes', method: 'GET' });
  t.equal(host404.statusCode, 404, 'nothing of the admin plane outside its prefix');
  await host404.body.dump();
});

t.test('closing the host app closes the gateway: no connection, server or timer left', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  t.teardown(async () => {
    await stable.close();
    await candidate.close();
  });
  const before = process.getActiveResourcesInfo();
  const h = await host(config([route(stable.url, candidate.url, { healthCheck: { path: '/health', interval: '100ms', timeout: '50ms' } })]));
  await send(h.pool, 50);
  t.ok(stable.openSockets() + candidate.openSockets() > 0, "the gateway's pools hold connections to the upstreams");
  await h.pool.close();
  await h.app.close();
  t.ok(await eventually(() => stable.openSockets() + candidate.openSockets() === 0), 'no connection left to either upstream');
  // Earlier tests' servers may still be closing when `before` is taken: nothing more than then.
  t.ok(await eventually(() => noMoreThan(process.getActiveResourcesInfo(), before)), 'no more active handles of any kind than before the host app started');
  t.same(excess(process.getActiveResourcesInfo(), before), {}, 'nothing left over');
});
