import t from 'tap';
import { Pool } from 'undici';
import { controllerOnFakeClock } from './helpers/controller.js';
import { config, eventually, seededRng, startGateway, startUpstream } from './helpers/servers.js';

// Blue-green (SPEC §3 `blueGreen`): 100% on the candidate once healthy, the old stable the
// rollback target for the bake, judged against stable's window from before the switch.

/** A route serving v1 for a while (2,000 requests, 1 in 200 failing, 10 ms), then v2 deployed blue-green. */
function switched(extra: Record<string, unknown> = {}) {
  const s = controllerOnFakeClock({ strategy: 'blueGreen', blueGreen: { bake: '5m' }, ...extra });
  for (let i = 1; i <= 2_000; i++) {
    s.clock.advance(10);
    s.outcome('stable', i % 200 === 0, 10);
  }
  s.c.deploy('v2', 'http://127.0.0.1:9002', 0, 'manual');
  return s;
}

t.test('the candidate takes 100% at once; a clean bake promotes it', async (t) => {
  const { c, picker, clock, outcome } = switched();
  t.match(c.state(), { phase: 'progressing', strategy: 'blueGreen', weight: 100, candidate: { version: 'v2', weight: 100 }, bake: { stage: 'blueGreen', remainingMs: 300_000 } });
  t.equal(picker.state.weightBp, 10_000, 'the data plane sends everything to v2');
  t.match(c.events[0], { type: 'deploy', message: /blue-green/ });
  for (let i = 1; i <= 3_000; i++) {
    clock.advance(99);
    outcome('candidate', i % 200 === 0, 10);
  }
  t.equal(c.phase, 'progressing', 'a candidate as good as stable was not rolled back');
  clock.advance(300_000 - 297_000);
  t.match(c.state(), { phase: 'stable', stable: { version: 'v2' }, candidate: null });
  t.match(c.events[0], { type: 'promote', cause: 'schedule' });
});

t.test('without autoPromote it waits at 100% after the bake', async (t) => {
  const { c, clock } = switched({ autoPromote: false });
  clock.advance(300_000);
  t.match(c.state(), { phase: 'progressing', weight: 100, bake: null });
  t.match(c.events[0], { type: 'step', message: /passed its blue-green bake at 100%; waiting for a promote/ });
});

t.test('a manual rollback in the bake puts all traffic back on the old stable at once', async (t) => {
  const { c, picker, clock } = switched();
  clock.advance(60_000);
  c.rollback('manual');
  t.equal(picker.state.weightBp, 0);
  t.equal(picker.state.candidateRoutable, false);
  t.match(c.state(), { phase: 'rolled_back', weight: 0, stable: { version: 'v1' }, bake: null });
  t.equal(clock.pending, 0);
});

t.test('failing 4% of requests, against stable 0.5% before the switch, trips error_rate on the baseline', async (t) => {
  const { c, picker, clock, outcome } = switched();
  let n = 0;
  while (c.phase !== 'rolled_back' && n < 5_000) {
    clock.advance(10);
    outcome('candidate', ++n % 25 === 0, 10);
  }
  t.equal(c.phase, 'rolled_back', `rolled back after ${n} candidate requests`);
  t.ok(n < 2_000, 'well before 2,000 requests');
  t.equal(picker.state.weightBp, 0, 'all traffic on the old stable');
  t.match(c.state().lastDecision, { reason: 'error_rate', evidence: { test: 'baseline', stableRequests: 2_000 }, message: /fails credibly more than 1\.25x as often as stable v1 did before the switch/ });
});

t.test('answering in 25 ms where stable answered in 10 ms trips latency on the baseline', async (t) => {
  const { c, clock, outcome } = switched();
  let n = 0;
  while (c.phase !== 'rolled_back' && n < 5_000) {
    clock.advance(10);
    n++;
    outcome('candidate', false, 25);
  }
  t.equal(c.phase, 'rolled_back', `rolled back after ${n} candidate requests`);
  t.match(c.state().lastDecision, { reason: 'latency', evidence: { test: 'baseline' }, message: /credibly slower than stable v1 was before the switch/ });
});

t.test('a candidate as good as stable is not rolled back (20,000 requests, seeded noise)', async (t) => {
  const rng = seededRng(7);
  const s = controllerOnFakeClock({ strategy: 'blueGreen', blueGreen: { bake: '1h' } });
  for (let i = 0; i < 5_000; i++) {
    s.clock.advance(10);
    s.outcome('stable', rng() < 0.01, 8 + rng() * 6);
  }
  s.c.deploy('v2', 'http://127.0.0.1:9002', 0, 'manual');
  for (let i = 0; i < 20_000; i++) {
    s.clock.advance(10);
    s.outcome('candidate', rng() < 0.01, 8 + rng() * 6);
  }
  t.equal(s.c.phase, 'progressing', 'still on the candidate');
});

t.test('live: 100% on the candidate once healthy; all back on stable from the request after the trip', async (t) => {
  let failing = false;
  let ready = false;
  const server = (label: string, isCandidate: boolean) =>
    startUpstream((req, res) => {
      req.resume();
      if (req.url === '/health') return void res.writeHead(isCandidate && !ready ? 503 : 200).end();
      res.writeHead(isCandidate && failing ? 500 : 200, { 'content-type': 'application/json' }).end(JSON.stringify({ served: label }));
    });
  const stable = await server('v1', false);
  const candidate = await server('v2', true);
  const gw = await startGateway(
    config([
      {
        name: 'm',
        match: { pathPrefix: '/m' },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: candidate.url },
        strategy: 'blueGreen',
        healthCheck: { path: '/health', interval: '50ms', timeout: '40ms', unhealthyAfter: 1000 },
      },
    ]),
  );
  const pool = new Pool(gw.url, { connections: 1 });
  t.teardown(async () => {
    await pool.close();
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const send = async () => {
    const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}' });
    await r.body.dump();
    return { version: String(r.headers['x-rollgate-version']), status: r.statusCode };
  };
  const controller = gw.rollouts.route('m')!;
  for (let i = 0; i < 20; i++) t.equal((await send()).version, 'v1', `before the candidate is healthy: v1 (${i})`);
  ready = true;
  t.ok(await eventually(() => gw.gateway.routes.get('m')!.traffic.weightBp === 10_000, 5_000), 'healthy: the switch');
  const after = await Promise.all(Array.from({ length: 50 }, () => send()));
  t.same(new Set(after.map((a) => a.version)), new Set(['v2']), 'every request on v2');
  failing = true;
  const seq: string[] = [];
  while (controller.phase !== 'rolled_back' && seq.length < 100) seq.push((await send()).version);
  t.equal(controller.phase, 'rolled_back', `tripped after ${seq.length} failing requests`);
  const next = await Promise.all(Array.from({ length: 20 }, () => send()));
  t.same(new Set(next.map((a) => a.version)), new Set(['v1']), 'the next request and all after it on v1');
  t.equal(controller.state().weight, 0);
});
