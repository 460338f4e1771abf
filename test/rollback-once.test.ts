import type { ServerResponse } from 'node:http';
import t from 'tap';
import { Pool, request } from 'undici';
import { startAdmin } from '../src/admin/server.js';
import { fleet, replica } from './helpers/replica-fleet.js';
import { closeAll, config, eventually, startGateway, startLabelled, startUpstream } from './helpers/servers.js';

// A candidate is rolled back once. When something other than this replica's own judge rolled it
// back (an operator, the fleet's tests on every replica's evidence), the candidate's requests
// still in flight finish afterwards; their failures go on filling the windows, but must not trip
// the route a second time: no second rollback event (and notification), and the route's last
// decision stays the one that rolled it back.

/** A candidate model server that holds every request until released, then answers them all. */
async function holdingCandidate() {
  const held: ServerResponse[] = [];
  const up = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => held.push(res));
  });
  const release = (status: number) => {
    for (const res of held.splice(0)) res.writeHead(status, { 'content-type': 'application/json' }).end('{"served":"v2"}');
  };
  return { up, held, release };
}

/** `n` requests at once through `pool`; resolves with their statuses once all are answered. */
function inFlight(pool: Pool, n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}' });
      await r.body.dump();
      return r.statusCode;
    }),
  );
}

t.test('rolled back by an operator, a candidate whose requests in flight then fail is not rolled back again by the judge', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await holdingCandidate();
  const cfg = config([
    { name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: stable.url }, candidate: { version: 'v2', url: candidate.up.url, weight: 100 } },
  ]);
  const gw = await startGateway(cfg);
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token: 'tok', ready: () => true, metrics: gw.metrics });
  const pool = new Pool(gw.url, { connections: 8 });
  t.teardown(async () => {
    candidate.release(200);
    await pool.close();
    await admin.app.close();
    await closeAll(gw, stable, candidate.up)();
  });
  const api = async (method: 'GET' | 'POST', path: string) => {
    const r = await request(`http://127.0.0.1:${admin.address.port}${path}`, { method, headers: { authorization: 'Bearer tok' } });
    return { status: r.statusCode, json: (await r.body.json()) as any };
  };

  const answered = inFlight(pool, 8);
  t.ok(await eventually(() => candidate.held.length === 8), 'eight requests are in flight on the candidate');
  const rolledBack = await api('POST', '/api/routes/m/rollback');
  t.match(rolledBack, { status: 200, json: { phase: 'rolled_back', weight: 0, lastDecision: { reason: 'manual' } } });

  // More failures in a row than consecutiveFailures (5): enough to trip a live candidate.
  candidate.release(500);
  t.same(await answered, Array(8).fill(500), 'the requests picked before the rollback fail as the candidate answered');
  const route = await api('GET', '/api/routes/m');
  t.match(route.json, { phase: 'rolled_back', weight: 0, lastDecision: { reason: 'manual' } }, 'the last decision is still the operator\'s');
  t.equal(route.json.windows.candidate.failures, 8, 'the failures were counted in the candidate\'s window');
  const history = await api('GET', '/api/routes/m/history');
  const rollbacks = history.json.events.filter((e: { type: string }) => e.type === 'rollback');
  t.same(rollbacks.map((e: { cause: string }) => e.cause), ['manual'], 'one rollback event');
});

t.test('rolled back by the fleet\'s tests, a candidate whose requests in flight then fail is not rolled back again by the replica\'s own judge', async (t) => {
  const f = await fleet(t);
  const candidate = await holdingCandidate();
  t.teardown(async () => {
    candidate.release(200);
    await candidate.up.close();
  });
  const a = await replica(t, { ...f, candidate: candidate.up }, { weight: 100, fleetEvidence: true });
  t.ok(await eventually(() => a.evidence.holding('m'), 5_000), 'the replica holds the fleet lease');

  const pool = new Pool(`http://127.0.0.1:${a.gw.port}`, { connections: 8 });
  t.teardown(() => pool.close());
  const answered = inFlight(pool, 8);
  t.ok(await eventually(() => candidate.held.length === 8), 'eight requests are in flight on the candidate');
  // Another replica's evidence: the candidate fails half its requests there. The fleet trips.
  const revision = a.controller.state().candidate!.revision;
  const delta = { stable: { requests: 1_000, failures: 0, slow: [0, 0] }, candidate: { requests: 200, failures: 100, slow: [0, 0] } };
  await f.raw.publish(`${f.prefix}:evidence`, JSON.stringify({ route: 'm', revision, by: 'other', delta }));
  t.ok(await eventually(() => a.controller.phase === 'rolled_back', 5_000), 'the fleet\'s tests roll the candidate back');
  const decision = a.controller.state().lastDecision;
  t.match(decision, { reason: 'error_rate', evidence: { test: 'fleet' } }, 'on the fleet\'s evidence');

  candidate.release(500);
  t.same(await answered, Array(8).fill(500), 'the requests picked before the trip fail as the candidate answered');
  t.same(a.controller.state().lastDecision, decision, 'the last decision is still the fleet\'s');
  t.equal(a.controller.state().windows.candidate?.failures, 8, 'the failures were counted in the candidate\'s window');
  const rollbacks = a.controller.events.filter((e) => e.type === 'rollback');
  t.same(rollbacks.map((e) => e.cause), ['error_rate'], 'one rollback event');
});
