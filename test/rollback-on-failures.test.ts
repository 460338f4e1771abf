import t from 'tap';
import { Pool } from 'undici';
import { closeAll, config, seededRng, startGateway, startUpstream, type TestUpstream } from './helpers/servers.js';

type Mode = 'ok' | 'fail' | 'notfound' | 'hang';

async function switchable(label: string): Promise<{ up: TestUpstream; set(mode: Mode): void; served(): number }> {
  let mode: Mode = 'ok';
  let served = 0;
  const up = await startUpstream((req, res) => {
    req.resume();
    served++;
    if (mode === 'hang') return;
    const status = mode === 'fail' ? 500 : mode === 'notfound' ? 404 : 200;
    res.writeHead(status, { 'content-type': 'application/json' }).end(`{"model":"${label}"}`);
  });
  return { up, set: (m) => (mode = m), served: () => served };
}

async function send(pool: Pool, n: number): Promise<{ versions: string[]; statuses: number[] }> {
  const versions: string[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await pool.request({ path: '/v1/models/m:predict', method: 'POST', body: '{"x":1}', headers: { 'content-length': '7' } });
    await r.body.dump();
    versions.push(String(r.headers['x-rollgate-version']));
    statuses.push(r.statusCode);
  }
  return { versions, statuses };
}

function route(stableUrl: string, candidateUrl: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'm',
    match: { pathPrefix: '/v1/models/m' },
    stable: { version: 'v1', url: stableUrl },
    candidate: { version: 'v2', url: candidateUrl, weight: 50 },
    ...extra,
  };
}

t.test('a candidate that starts answering 500 is rolled back within consecutiveFailures failures', async (t) => {
  const stable = await switchable('v1');
  const candidate = await switchable('v2');
  const gw = await startGateway(config([route(stable.up.url, candidate.up.url)]), { rng: seededRng(3) });
  const pool = new Pool(gw.url, { connections: 1 });
  t.teardown(closeAll(pool, gw, stable.up, candidate.up));
  const controller = gw.rollouts.route('m')!;

  const healthy = await send(pool, 300);
  t.ok(healthy.versions.includes('v2'), 'the candidate takes traffic while healthy');
  t.equal(controller.phase, 'progressing', 'no rollback while both versions answer alike');

  candidate.set('fail');
  let candidateErrors = 0;
  for (let i = 0; i < 200 && controller.phase !== 'rolled_back'; i++) {
    const r = await send(pool, 1);
    if (r.versions[0] === 'v2' && r.statuses[0] === 500) candidateErrors++;
  }
  t.equal(controller.phase, 'rolled_back', 'the route is rolled back');
  t.ok(candidateErrors >= 1 && candidateErrors <= 5, `rolled back after ${candidateErrors} candidate failures (consecutiveFailures 5)`);
  const state = controller.state();
  t.equal(state.weight, 0, 'weight 0');
  t.ok(['consecutive_failures', 'error_rate'].includes(String(state.lastDecision?.reason)), `reason ${state.lastDecision?.reason}`);
  t.match(state.lastDecision?.message, /candidate v2/, 'the decision reads as a sentence naming the candidate');
  t.ok((state.lastDecision?.evidence?.candidate.failures ?? 0) >= 1, 'the evidence carries the candidate window');

  const servedBefore = candidate.served();
  const after = await send(pool, 200);
  t.notOk(after.versions.includes('v2'), 'after the trip no response comes from the candidate');
  t.equal(candidate.served(), servedBefore, 'and the candidate upstream receives nothing');
  t.ok(after.statuses.every((s) => s === 200), 'stable serves everything');
});

t.test('a candidate answering 4xx is never counted against it', async (t) => {
  const stable = await switchable('v1');
  const candidate = await switchable('v2');
  const gw = await startGateway(config([route(stable.up.url, candidate.up.url)]), { rng: seededRng(5) });
  const pool = new Pool(gw.url, { connections: 1 });
  t.teardown(closeAll(pool, gw, stable.up, candidate.up));
  candidate.set('notfound');
  const r = await send(pool, 400);
  t.ok(r.statuses.filter((s) => s === 404).length > 100, 'the candidate answered 404 many times');
  t.equal(gw.rollouts.route('m')!.phase, 'progressing', 'and was not rolled back');
});

t.test('a candidate that hangs is rolled back on timeouts', async (t) => {
  const stable = await switchable('v1');
  const candidate = await switchable('v2');
  const gw = await startGateway(
    config([route(stable.up.url, candidate.up.url, { timeouts: { connect: '1s', response: '100ms' } })]),
    { rng: seededRng(9) },
  );
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(closeAll(pool, gw, stable.up, candidate.up));
  await send(pool, 100);
  candidate.set('hang');
  const controller = gw.rollouts.route('m')!;
  const timeouts: number[] = [];
  for (let i = 0; i < 100 && controller.phase !== 'rolled_back'; i++) {
    const r = await send(pool, 1);
    if (r.statuses[0] === 504) timeouts.push(i);
  }
  t.equal(controller.phase, 'rolled_back', 'rolled back');
  t.ok(timeouts.length <= 5, `after ${timeouts.length} timeouts`);
  t.match(controller.state().lastDecision?.evidence?.candidate.failuresByKind, { timeout: timeouts.length });
  const after = await send(pool, 50);
  t.notOk(after.versions.includes('v2'), 'no request goes to the candidate after the trip');
});
