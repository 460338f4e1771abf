import t, { type Test } from 'tap';
import { request } from 'undici';
import { startRedis } from './helpers/redis.js';
import { eventually, startLabelled } from './helpers/servers.js';
import { serveReplica as startReplica } from './helpers/serve-replica.js';

// `rollgate serve` with `store: { kind: redis }`, as processes: what the admin plane says about
// sharing, and a replica that starts while Redis is down.

const TOKEN = 'serve-redis-token';

/** A replica with an admin client that also reads whether its state is shared. */
async function serveReplica(t: Test, redisUrl: string, prefix: string, stableUrl: string, candidateUrl: string, weight: number) {
  const { run, port, adminPort } = await startReplica(t, { redisUrl, prefix, stableUrl, candidateUrl, weight, token: TOKEN });
  const api = async (method: 'GET' | 'PUT', path: string, body?: unknown) => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.statusCode, shared: r.headers['x-rollgate-state-shared'], json: (await r.body.json()) as any };
  };
  return { run, api, port };
}

t.test('replicas as processes: the admin plane says whether state is shared; changes made while Redis is down reach the others after', async (t) => {
  const redis = await startRedis();
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  t.teardown(async () => {
    await redis.stop();
    await stable.close();
    await candidate.close();
  });
  const start = () => serveReplica(t, redis.url, 'serve-test', stable.url, candidate.url, 10);
  const a = await start();
  const b = await start();
  t.match(await a.api('GET', '/readyz'), { status: 200, shared: 'true', json: { ready: true, stateShared: true } });

  // Two admin calls racing on two replicas: one state on both.
  const [ra, rb] = await Promise.all([a.api('PUT', '/api/routes/m/weight', { weight: 20 }), b.api('PUT', '/api/routes/m/weight', { weight: 30 })]);
  t.same([ra.status, rb.status], [200, 200]);
  const agree = async () => {
    const [x, y] = await Promise.all([a.api('GET', '/api/routes/m'), b.api('GET', '/api/routes/m')]);
    return x.json.weight === y.json.weight && [20, 30].includes(x.json.weight);
  };
  t.ok(await eventually(agree, 5_000), 'both replicas end on one weight');
  const [ga, gb] = await Promise.all([a.api('GET', '/api/routes/m'), b.api('GET', '/api/routes/m')]);
  t.equal(ga.json.weight, gb.json.weight, `${ga.json.weight}% on both`);

  await redis.kill();
  t.ok(await eventually(async () => (await a.api('GET', '/readyz')).json.stateShared === false, 5_000), 'with Redis down, /readyz says state is not shared');
  const set = await a.api('PUT', '/api/routes/m/weight', { weight: 40 });
  t.equal(set.status, 200, 'a change is accepted locally');
  t.equal(set.shared, 'false', 'and the answer says it is not shared yet');
  t.equal(set.json.weight, 40);
  t.not((await b.api('GET', '/api/routes/m')).json.weight, 40, 'the other replica cannot know yet');
  const served = await request(`http://127.0.0.1:${a.port}/m/x`);
  t.equal(served.statusCode, 200, 'the data plane serves on');
  await served.body.dump();

  await redis.restart();
  t.ok(await eventually(async () => (await b.api('GET', '/api/routes/m')).json.weight === 40, 10_000), 'once Redis is back, the other replica has the weight');
  t.ok(await eventually(async () => (await a.api('GET', '/readyz')).json.stateShared === true, 5_000), 'and state is shared again');
});

t.test('a replica that starts while Redis is down serves everything on stable until it knows the fleet state, then joins', async (t) => {
  const redis = await startRedis();
  await redis.kill();
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  t.teardown(async () => {
    await redis.stop();
    await stable.close();
    await candidate.close();
  });
  const { run, api, port } = await serveReplica(t, redis.url, 'down-at-start', stable.url, candidate.url, 50);
  t.match(run.stdout(), /redis unreachable at start: stable serves every route until the fleet state is known/);
  const versions = async (n: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await request(`http://127.0.0.1:${port}/m/x`);
      t.equal(r.statusCode, 200);
      seen.add(String(r.headers['x-rollgate-version']));
      await r.body.dump();
    }
    return [...seen].sort();
  };
  t.same(await versions(40), ['v1'], 'the candidate gets nothing: it might have been rolled back meanwhile');
  await redis.restart();
  t.ok(await eventually(async () => (await api('GET', '/readyz')).json.stateShared === true, 10_000), 'state shared once Redis is up');
  t.same(await versions(60), ['v1', 'v2'], 'then the candidate takes its weight');
});
