import t, { type Test } from 'tap';
import { Pool } from 'undici';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { config, eventually, startGateway, startUpstream, type TestUpstream } from './helpers/servers.js';

// Active health checks (SPEC §3 `healthCheck`) against real model servers.

interface ModelServer extends TestUpstream {
  /** Live (non-health) requests it answered. */
  live: () => number;
  checks: () => number;
}

/** A model server whose health answer is `health(checkNumber)`: a status, or 'hang'. */
async function modelServer(label: string, health: (n: number) => number | 'hang'): Promise<ModelServer> {
  let live = 0;
  let checks = 0;
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.url === '/health') {
      const answer = health(++checks);
      if (answer === 'hang') return;
      res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer === 200 ? 'ok' : 'not ready');
      return;
    }
    live++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served: label }));
  });
  return Object.assign(up, { live: () => live, checks: () => checks });
}

const HEALTH = { path: '/health', interval: '50ms', timeout: '40ms', unhealthyAfter: 3 };

async function gatewayFor(t: Test, stable: ModelServer, candidate: ModelServer, extra: Record<string, unknown> = {}, notify: unknown[] = []) {
  const gw = await startGateway(
    config(
      [
        {
          name: 'm',
          match: { pathPrefix: '/m' },
          stable: { version: 'v1', url: stable.url },
          candidate: { version: 'v2', url: candidate.url, weight: 50 },
          healthCheck: HEALTH,
          // Health checks are under test here, not the latency judge.
          rollback: { latency: { minDelta: '10s' } },
          ...extra,
        },
      ],
      { notify },
    ),
  );
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(async () => {
    await pool.close();
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const send = async (n: number): Promise<string[]> => {
    const versions: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}' });
      await r.body.dump();
      versions.push(String(r.headers['x-rollgate-version']));
    }
    return versions;
  };
  return { gw, controller: gw.rollouts.route('m')!, send };
}

t.test('a candidate whose check fails gets no live request and is rolled back with reason health_check', async (t) => {
  const stable = await modelServer('v1', () => 200);
  const candidate = await modelServer('v2', () => 503);
  const { controller, send } = await gatewayFor(t, stable, candidate);
  t.match(controller.state(), { phase: 'progressing', weight: 50, candidate: { version: 'v2', healthy: false } }, 'its configured weight, not healthy yet');
  const versions: string[] = [];
  while (controller.phase !== 'rolled_back' && versions.length < 5_000) versions.push(...(await send(10)));
  t.equal(controller.phase, 'rolled_back', 'rolled back');
  t.ok(versions.length > 0, `${versions.length} requests while it was checked`);
  t.notOk(versions.includes('v2'), 'none of them went to the candidate');
  t.equal(candidate.live(), 0, 'the candidate saw health checks only');
  // On a loaded machine a check can time out (40 ms) before the server has read it: the gateway's
  // count of failed checks is in the decision's message below; the server saw at least one.
  t.ok(candidate.checks() >= 1, `${candidate.checks()} checks reached it`);
  t.match(controller.state().lastDecision, { reason: 'health_check', message: /candidate v2 failed 3 health checks in a row \(last: HTTP 503 from \/health\)/ });
  t.match(controller.events[0], { type: 'rollback', cause: 'health_check' });
  const checksAtRollback = candidate.checks();
  await new Promise((r) => setTimeout(r, 200));
  t.ok(candidate.checks() <= checksAtRollback + 1, 'a rolled-back candidate is no longer checked');
});

t.test('a check that does not answer within its timeout fails', async (t) => {
  const stable = await modelServer('v1', () => 200);
  const candidate = await modelServer('v2', () => 'hang');
  const { controller } = await gatewayFor(t, stable, candidate);
  t.ok(await eventually(() => controller.phase === 'rolled_back', 5_000), 'rolled back');
  t.match(controller.state().lastDecision, { reason: 'health_check', message: /no answer from \/health within 40 ms/ });
});

t.test('the candidate takes traffic from its first passing check on', async (t) => {
  // Fails (fewer times than unhealthyAfter) until the test has sent its first requests, then passes.
  const stable = await modelServer('v1', () => 200);
  let ready = false;
  const candidate = await modelServer('v2', () => (ready ? 200 : 503));
  const { controller, send } = await gatewayFor(t, stable, candidate, { healthCheck: { ...HEALTH, unhealthyAfter: 1000 } });
  t.ok(await eventually(() => candidate.checks() >= 2, 5_000), 'two checks failed');
  const before = await send(20);
  t.notOk(before.includes('v2'), 'nothing before the first pass');
  ready = true;
  t.ok(await eventually(() => controller.state().candidate?.healthy === true, 5_000), 'healthy after its first passing check');
  t.match(controller.events.find((e) => e.type === 'health'), { cause: 'health_check', message: /candidate v2 passed its health check/ });
  const after = await send(200);
  const share = after.filter((v) => v === 'v2').length / after.length;
  t.ok(share > 0.35 && share < 0.65, `then its weight: ${(share * 100).toFixed(0)}% of 200`);
  t.equal(controller.phase, 'progressing');
});

t.test('a step schedule starts its first bake when the candidate becomes healthy', async (t) => {
  const stable = await modelServer('v1', () => 200);
  let ready = false;
  const candidate = await modelServer('v2', () => (ready ? 200 : 404));
  const { controller } = await gatewayFor(t, stable, candidate, { steps: [{ weight: 10, bake: '1m' }], healthCheck: { ...HEALTH, unhealthyAfter: 1000 } });
  await new Promise((r) => setTimeout(r, 150));
  t.match(controller.state(), { weight: 10, step: { index: 0, bakeEndsAt: null }, bake: null, candidate: { healthy: false } }, 'no clock runs before the first pass');
  ready = true;
  t.ok(await eventually(() => controller.state().bake !== null, 5_000));
  const left = controller.state().bake!.remainingMs;
  t.ok(left > 59_000 && left <= 60_000, `the whole bake is ahead (${left} ms)`);
});

t.test('an unhealthy stable is logged and notified once, and again when it recovers', async (t) => {
  const bodies: any[] = [];
  const hook = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  t.teardown(() => hook.close());
  let stableUp = false;
  const stable = await modelServer('v1', (n) => (stableUp && n > 4 ? 200 : 500));
  const candidate = await modelServer('v2', () => 200);
  const { controller } = await gatewayFor(t, stable, candidate, {}, [{ kind: 'webhook', url: hook.url }]);
  t.ok(await eventually(() => bodies.some((b) => b.type === 'health' && /stable v1 is unhealthy/.test(b.text)), 5_000), 'the webhook hears of it');
  const unhealthy = bodies.find((b) => b.type === 'health' && /unhealthy/.test(b.text));
  t.match(unhealthy, { route: 'm', reason: 'health_check', text: /^rollgate: route m: stable v1 is unhealthy: 3 health checks failed in a row \(last: HTTP 500/ });
  t.equal(controller.state().stable.healthy, false, 'the route state says so');
  t.equal(controller.phase, 'progressing', 'nothing is rolled back: there is nothing to roll back to');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(bodies.filter((b) => b.type === 'health' && /unhealthy/.test(b.text)).length, 1, 'once, not per check');
  stableUp = true;
  t.ok(await eventually(() => bodies.some((b) => /stable v1 is healthy again/.test(b.text)), 5_000), 'and the recovery');
  t.equal(controller.state().stable.healthy, true);
});
