import t, { type Test } from 'tap';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { config, eventually, seededRng, startGateway, startLabelled, startUpstream, type TestUpstream } from './helpers/servers.js';

// Shadow (SPEC §3 `shadow`): copies of live requests judged on the candidate; clients always
// get stable's answer.

interface Candidate extends TestUpstream {
  bodies: string[];
  shadowHeaders: (string | undefined)[];
  /** The most copies it held open at once. */
  peakOpen(): number;
}

/** A candidate that records each copy's body, then answers `status` (or never, with 'hang'). */
async function candidateServer(answer: () => number | 'hang'): Promise<Candidate> {
  const bodies: string[] = [];
  const shadowHeaders: (string | undefined)[] = [];
  let open = 0;
  let peak = 0;
  const up = await startUpstream((req: IncomingMessage, res) => {
    open++;
    peak = Math.max(peak, open);
    res.on('close', () => open--);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      shadowHeaders.push(req.headers['x-rollgate-shadow'] as string | undefined);
      const a = answer();
      if (a === 'hang') return;
      res.writeHead(a, { 'content-type': 'application/json' }).end('{"served":"v2"}');
    });
  });
  return Object.assign(up, { bodies, shadowHeaders, peakOpen: () => peak });
}

async function shadowRoute(t: Test, candidate: Candidate, extra: Record<string, unknown> = {}) {
  const stable = await startLabelled('v1');
  const gw = await startGateway(
    config([
      {
        name: 'm',
        match: { pathPrefix: '/m' },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: candidate.url },
        strategy: 'shadow',
        shadow: { mirrorPercent: 100, bake: '1h' },
        // Latency is judged only where a test says so (a loaded test machine has stalls of its own).
        rollback: { latency: { minDelta: '10s' } },
        ...extra,
      },
    ]),
    { rng: seededRng(3) },
  );
  const pool = new Pool(gw.url, { connections: 8 });
  t.teardown(async () => {
    await pool.close();
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const send = async (body: string, headers: Record<string, string> = {}) => {
    const r = await pool.request({ path: '/m/predict', method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    const text = await r.body.text();
    return { status: r.statusCode, version: String(r.headers['x-rollgate-version']), body: text };
  };
  return { gw, pool, controller: gw.rollouts.route('m')!, route: gw.gateway.routes.get('m')!, send };
}

t.test('1,000 requests: each reaches the candidate as a copy with the same body; every answer comes from stable', async (t) => {
  const candidate = await candidateServer(() => 200);
  const { controller, send } = await shadowRoute(t, candidate);
  t.match(controller.state(), { phase: 'shadowing', strategy: 'shadow', weight: 0, mirrorPercent: 100, bake: { stage: 'shadow' } });
  const bodies = Array.from({ length: 1_000 }, (_, i) => JSON.stringify({ inputs: [`request ${i}`] }));
  const answers = [];
  for (let i = 0; i < bodies.length; i += 50) answers.push(...(await Promise.all(bodies.slice(i, i + 50).map((b) => send(b)))));
  t.equal(answers.filter((a) => a.status === 200 && a.version === 'v1' && JSON.parse(a.body).served === 'v1').length, 1_000, 'all 1,000 answers from stable');
  t.ok(await eventually(() => candidate.bodies.length === 1_000, 5_000), 'the candidate got 1,000 copies');
  t.same([...candidate.bodies].sort(), [...bodies].sort(), 'with the same bodies');
  t.ok(candidate.shadowHeaders.every((h) => h === '1'), 'each marked x-rollgate-shadow: 1');
  t.ok(await eventually(() => controller.state().windows.candidate?.count === 1_000), 'and judged: 1,000 in the candidate window');
  t.equal(controller.phase, 'shadowing');
});

t.test('a candidate failing every copy is rolled back, with no client error', async (t) => {
  const candidate = await candidateServer(() => 500);
  const { controller, send } = await shadowRoute(t, candidate);
  const answers = [];
  for (let i = 0; i < 200 && controller.phase !== 'rolled_back'; i++) answers.push(await send(`{"i":${i}}`));
  t.equal(controller.phase, 'rolled_back', `rolled back after ${answers.length} requests`);
  t.match(controller.state().lastDecision, { reason: /consecutive_failures|error_rate/ });
  t.ok(answers.every((a) => a.status === 200 && a.version === 'v1'), 'every client answer a 200 from stable');
  const copies = candidate.bodies.length;
  for (let i = 0; i < 50; i++) t.equal((await send('{}')).version, 'v1');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(candidate.bodies.length, copies, 'no copy after the rollback');
});

t.test('a hanging candidate: clients unaffected, copies in flight capped and the excess dropped, memory bounded, rolled back on its timeouts', async (t) => {
  const candidate = await candidateServer(() => 'hang');
  const { controller, route, send } = await shadowRoute(t, candidate, {
    shadow: { mirrorPercent: 100, bake: '1h', maxInFlight: 20 },
    timeouts: { connect: '1s', response: '1500ms' },
  });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const answers = [];
  for (let i = 0; i < 2_000; i += 50) answers.push(...(await Promise.all(Array.from({ length: 50 }, (_, j) => send(`{"i":${i + j}}`)))));
  t.equal(answers.filter((a) => a.status === 200 && a.version === 'v1').length, 2_000, 'every client answered by stable');
  t.ok(route.mirror.inFlight <= 20, `copies in flight capped (${route.mirror.inFlight})`);
  // Copies time out after 1.5 s and free their places, and the timeouts roll the candidate back,
  // after which nothing is copied: how many were dropped depends on how fast the 2,000 went. That
  // no more than 20 were ever open, and that the first 50 sent at once lost 30, does not.
  t.ok(candidate.peakOpen() <= 20, `the candidate never held more than 20 copies open (${candidate.peakOpen()})`);
  t.ok(route.mirror.dropped.concurrency >= 30, `the rest dropped and counted (${route.mirror.dropped.concurrency})`);
  global.gc?.();
  const grown = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  t.ok(grown < 20, `heap grew ${grown.toFixed(1)} MB over 2,000 requests`);
  t.ok(await eventually(() => controller.phase === 'rolled_back', 10_000), 'rolled back once the copies time out');
  t.match(controller.state().lastDecision, { reason: /consecutive_failures|error_rate/, message: /candidate v2 fail/ });
  t.ok(await eventually(() => route.mirror.inFlight === 0, 5_000), 'no copy left in flight');
});

t.test('copies are dropped, never the client request, when the body is too large or of unknown length', async (t) => {
  const candidate = await candidateServer(() => 200);
  const { gw, pool, route, send } = await shadowRoute(t, candidate, { shadow: { mirrorPercent: 100, bake: '1h', maxBodyBytes: 1024 } });
  const big = await send(JSON.stringify({ pad: 'x'.repeat(4096) }));
  t.match(big, { status: 200, version: 'v1' }, 'the client is answered');
  t.equal(route.mirror.dropped.body, 1, 'the copy is dropped and counted');
  const chunked = await pool.request({ path: '/m/predict', method: 'POST', body: Readable.from([Buffer.from('{"chunked":'), Buffer.from('true}')]) });
  t.equal(chunked.statusCode, 200, 'a chunked body reaches stable');
  t.match(await chunked.body.json(), { served: 'v1' });
  t.equal(route.mirror.dropped.body, 2, 'its copy is dropped: its length is unknown');
  const small = await send('{"small":true}');
  t.match(small, { status: 200, version: 'v1' });
  t.ok(await eventually(() => candidate.bodies.includes('{"small":true}')), 'a small body is copied');
  t.equal(candidate.bodies.length, 1, 'and only that one');
  const text = await gw.metrics.registry.metrics();
  t.match(text, /rollgate_shadow_dropped_total\{route="m",reason="body"\} 2\n/, 'the drop is in the metrics');
  t.match(text, /rollgate_shadow_copies_total\{route="m"\} 1\n/, 'and the copy');
});

t.test('mirrorPercent copies that share of requests', async (t) => {
  const candidate = await candidateServer(() => 200);
  const { route, send } = await shadowRoute(t, candidate, { shadow: { mirrorPercent: 30, bake: '1h' } });
  for (let i = 0; i < 1_000; i++) await send('{}');
  t.ok(await eventually(() => candidate.bodies.length === route.mirror.sent));
  const share = route.mirror.sent / 1_000;
  t.ok(share > 0.25 && share < 0.35, `${(share * 100).toFixed(1)}% copied`);
});

t.test('after a clean shadow bake the route goes on with its canary steps', async (t) => {
  const candidate = await candidateServer(() => 200);
  const { controller, send } = await shadowRoute(t, candidate, { shadow: { mirrorPercent: 100, bake: '300ms' }, steps: [{ weight: 40, bake: '1h' }] });
  for (let i = 0; i < 20; i++) await send('{}');
  t.ok(await eventually(() => controller.phase === 'progressing', 5_000), 'progressing');
  t.match(controller.state(), { strategy: 'canary', weight: 40, mirrorPercent: 0, step: { index: 0 } });
  const copies = candidate.bodies.length;
  const versions = [];
  for (let i = 0; i < 200; i++) versions.push((await send('{}')).version);
  const share = versions.filter((v) => v === 'v2').length / 200;
  t.ok(share > 0.25 && share < 0.55, `live traffic at the first step (${(share * 100).toFixed(0)}%)`);
  t.equal(candidate.bodies.length - copies, versions.filter((v) => v === 'v2').length, 'no more copies: the candidate sees only its live share');
});

t.test('without steps the route waits in shadowing after its bake; a weight makes it a canary', async (t) => {
  const candidate = await candidateServer(() => 200);
  const { controller, send } = await shadowRoute(t, candidate, { shadow: { mirrorPercent: 100, bake: '200ms' } });
  await send('{}');
  t.ok(await eventually(() => controller.events.some((e) => e.type === 'step' && /waiting in shadowing/.test(e.message)), 5_000));
  t.match(controller.state(), { phase: 'shadowing', weight: 0, mirrorPercent: 100, bake: null });
  controller.setWeight(100, 'manual');
  t.match(controller.state(), { phase: 'progressing', strategy: 'canary', weight: 100, mirrorPercent: 0 });
  t.equal((await send('{}')).version, 'v2');
});

t.test('a candidate slower than stable on the same requests is rolled back for latency, with no client touched', async (t) => {
  const slow = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"served":"v2"}'), 40));
  });
  const candidate = Object.assign(slow, { bodies: [] as string[], shadowHeaders: [] as (string | undefined)[], peakOpen: () => 0 });
  const { controller, send } = await shadowRoute(t, candidate, { rollback: { latency: { minDelta: '5ms' } } });
  const answers = [];
  for (let i = 0; i < 3_000 && controller.phase !== 'rolled_back'; i += 10) answers.push(...(await Promise.all(Array.from({ length: 10 }, () => send('{}')))));
  t.equal(controller.phase, 'rolled_back', `rolled back after ${answers.length} requests`);
  t.match(controller.state().lastDecision, { reason: 'latency', evidence: { test: 'paired' } });
  t.ok(answers.every((a) => a.status === 200 && a.version === 'v1'), 'every client answered by stable');
});
