import t from 'tap';
import { Pool } from 'undici';
import { config, seededRng, startGateway, startLabelled } from './helpers/servers.js';

/** Sends `n` requests over `conns` keep-alive connections; returns how many each version served. */
async function countVersions(base: string, path: string, n: number, conns = 16): Promise<Map<string, number>> {
  const pool = new Pool(base, { connections: conns });
  const counts = new Map<string, number>();
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < n) {
      sent++;
      const r = await pool.request({ path, method: 'POST', body: '{"inputs":[1]}', headers: { 'content-type': 'application/json' } });
      await r.body.dump();
      const v = String(r.headers['x-rollgate-version']);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: conns }, worker));
  await pool.close();
  return counts;
}

t.test('weights split live traffic between stable and candidate', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const route = (name: string, weight: number) => ({
    name,
    match: { pathPrefix: `/${name}` },
    stable: { version: 'v1', url: stable.url },
    candidate: { version: 'v2', url: candidate.url, weight },
    // Two identical upstreams: a latency trip would only come from the machine's own load, and
    // would end the split this test measures.
    rollback: { latency: { minDelta: '10s' } },
  });
  const gw = await startGateway(config([route('ten', 10), route('zero', 0), route('all', 100)]), { rng: seededRng(42) });
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });

  const ten = await countVersions(gw.url, '/ten/predict', 20_000);
  const share = (ten.get('v2') ?? 0) / 20_000;
  t.ok(Math.abs(share - 0.1) <= 0.0065, `weight 10 sends ${(share * 100).toFixed(2)}% to the candidate (10% ± 0.65%)`);
  t.equal((ten.get('v1') ?? 0) + (ten.get('v2') ?? 0), 20_000, 'every request was served by one of the two versions');
  t.not(gw.rollouts.route('ten')?.phase, 'rolled_back', `the candidate was never rolled back (${gw.rollouts.route('ten')?.phase})`);

  const zero = await countVersions(gw.url, '/zero/predict', 2_000);
  t.same([...zero.keys()], ['v1'], 'weight 0 sends nothing to the candidate');
  const all = await countVersions(gw.url, '/all/predict', 2_000);
  t.same([...all.keys()], ['v2'], 'weight 100 sends everything to the candidate');

  // The upstreams agree with the response headers.
  const servedByCandidate = candidate.seen.filter((r) => r.url?.startsWith('/ten')).length;
  t.equal(servedByCandidate, ten.get('v2'), 'the candidate upstream received exactly the requests labelled v2');
});

t.test('a weight change is seen by the next request', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const gw = await startGateway(
    config([{ name: 'r', match: { pathPrefix: '/' }, stable: { version: 'v1', url: stable.url }, candidate: { version: 'v2', url: candidate.url, weight: 0 } }]),
  );
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  t.same([...(await countVersions(gw.url, '/x', 200, 4)).keys()], ['v1']);
  gw.gateway.routes.get('r')?.setWeight(100);
  t.same([...(await countVersions(gw.url, '/x', 200, 4)).keys()], ['v2']);
  gw.gateway.routes.get('r')?.setWeight(0);
  t.same([...(await countVersions(gw.url, '/x', 200, 4)).keys()], ['v1']);
});
