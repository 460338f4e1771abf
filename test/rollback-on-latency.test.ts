import t from 'tap';
import { Pool } from 'undici';
import { config, eventually, seededRng, startGateway, startUpstream } from './helpers/servers.js';

t.test('a candidate that hangs is rolled back by the latency test while its requests are still in flight', async (t) => {
  let hang = false;
  const stable = await startUpstream((req, res) => {
    req.resume();
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"model":"v1"}'), 3);
  });
  const candidate = await startUpstream((req, res) => {
    req.resume();
    if (hang) return;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"model":"v2"}'), 3);
  });
  const gw = await startGateway(
    config([
      {
        name: 'm',
        match: { pathPrefix: '/v1/models/m' },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: candidate.url, weight: 20 },
        timeouts: { connect: '1s', response: '30s' },
      },
    ]),
    { rng: seededRng(17) },
  );
  const pool = new Pool(gw.url, { connections: 200 });
  t.teardown(async () => {
    await pool.destroy();
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const controller = gw.rollouts.route('m')!;
  const fire = (): Promise<number> =>
    pool.request({ path: '/v1/models/m:predict', method: 'POST', body: '{}' }).then(
      async (r) => {
        await r.body.dump();
        return r.statusCode;
      },
      () => 0,
    );

  // Healthy: enough candidate answers for the warm-up and for stable's quantiles.
  for (let i = 0; i < 600; i += 20) await Promise.all(Array.from({ length: 20 }, fire));
  t.equal(controller.phase, 'progressing');

  hang = true;
  const hungAt = performance.now();
  const pending: Promise<number>[] = [];
  for (let i = 0; i < 400 && controller.phase !== 'rolled_back'; i++) {
    pending.push(fire());
    await new Promise((r) => setTimeout(r, 5));
  }
  t.ok(await eventually(() => controller.phase === 'rolled_back', 3_000), 'rolled back');
  const tookMs = performance.now() - hungAt;
  const state = controller.state();
  t.equal(state.lastDecision?.reason, 'latency', 'on the latency test');
  t.ok(tookMs < 10_000, `within ${tookMs.toFixed(0)} ms of the candidate hanging, long before its 30 s timeout`);
  t.equal(state.lastDecision?.evidence?.candidate.failures, 0, 'no candidate request had even failed yet');
  t.match(state.lastDecision?.message, /credibly slower than stable v1/);
  // The stuck requests are cut when the test ends; none was answered by the candidate.
  const after = await Promise.all(Array.from({ length: 50 }, fire));
  t.ok(after.every((s) => s === 200), 'after the trip every new request is answered (by stable)');
  void pending;
});
