import { spawn, type ChildProcess } from 'node:child_process';
import t from 'tap';
import { Pool } from 'undici';
import { startAdmin } from '../src/admin/server.js';
import { config, eventually, freePort, startGateway } from './helpers/servers.js';
import { waitForPort } from './helpers/cli.js';
import { adminApi } from './helpers/admin-api.js';
import { CHECKSUM, featuresDatabase, PG_EXAMPLE, type TestDatabase } from './helpers/postgres.js';

// The Postgres example (examples/postgres-snapshots) end to end, on the local PostgreSQL: a
// candidate's beforeTraffic hook snapshots `features`, its rollout changes the table, the judge
// rolls the candidate back, and the afterRollback hook puts the table back as it was.

const TOKEN = 'postgres-token';

async function modelServer(label: string, db: TestDatabase, fail: boolean): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [`${PG_EXAMPLE}model-server.mjs`, String(port)], {
    env: { ...process.env, ...db.env, MODEL_LABEL: label, MODEL_FAIL: fail ? '1' : '0' },
    stdio: 'ignore',
  });
  await waitForPort(port);
  return { url: `http://127.0.0.1:${port}`, child };
}

t.test('snapshot before traffic, the rollout changes the table, a trip, the restore: the table is back', async (t) => {
  const db = featuresDatabase(t);
  const original = db.psql(CHECKSUM);
  // The hooks reach the database through the PG* environment they inherit.
  Object.assign(process.env, db.env);

  const v1 = await modelServer('v1', db, false);
  const v2 = await modelServer('v2', db, true);
  t.teardown(() => {
    v1.child.kill();
    v2.child.kill();
  });
  const cfg = config([
    {
      name: 'ranker',
      match: { pathPrefix: '/v1/models/ranker' },
      stable: { version: 'v1', url: v1.url, data: { snapshot: 'features-v1' } },
      rollback: { latency: { minDelta: '10s' } },
      hooks: {
        beforeTraffic: [{ kind: 'exec', command: [`${PG_EXAMPLE}snapshot.sh`], timeout: '30s' }],
        afterRollback: [{ kind: 'exec', command: [`${PG_EXAMPLE}restore.sh`], timeout: '30s' }],
      },
    },
  ]);
  const gw = await startGateway(cfg);
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token: TOKEN, ready: () => true });
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(async () => {
    await pool.close();
    await admin.app.close();
    await gw.close();
  });
  const call = adminApi(admin.address.port, TOKEN);
  const api = async (method: 'GET' | 'PUT', path: string, body?: unknown) => (await call(method, path, body)).body;
  const send = async (): Promise<string> => {
    const r = await pool.request({ path: '/v1/models/ranker:predict', method: 'POST', body: '{}' });
    await r.body.dump();
    return String(r.headers['x-rollgate-version']);
  };

  await api('PUT', '/api/routes/ranker/candidate', { version: 'v2', url: v2.url, weight: 30, data: { snapshot: 'features-v2' } });
  const controller = gw.rollouts.route('ranker')!;
  t.ok(await eventually(() => controller.awaitingData === null, 15_000), 'the beforeTraffic snapshot is done');
  t.equal(db.psql("SELECT count(*) FROM feature_snapshots WHERE snapshot = 'features-v1'"), '100', 'features saved under stable’s snapshot id');

  // The candidate's rollout migrates the table in place.
  db.psql("UPDATE features SET value = value || '-v2'; DELETE FROM features WHERE id > 90");
  t.not(db.psql(CHECKSUM), original, 'the rollout changed the table');

  const served: string[] = [];
  for (let i = 0; i < 400 && controller.phase !== 'rolled_back'; i++) served.push(await send());
  t.equal(controller.phase, 'rolled_back', 'the judge rolled the failing candidate back');
  const afterTrip: string[] = [];
  for (let i = 0; i < 30; i++) afterTrip.push(await send());
  t.same([...new Set(afterTrip)], ['v1'], 'no request reached the candidate after the trip');

  t.ok(await eventually(() => controller.state().data.restore?.state === 'done', 15_000), 'the restore is done');
  t.equal(db.psql(CHECKSUM), original, 'the table’s checksum equals the snapshot’s');
  const state = await api('GET', '/api/routes/ranker');
  t.match(state.data, { snapshot: 'features-v1', restore: { state: 'done', attempts: 1 } }, 'the route state says restore done');
  const events = (await api('GET', '/api/routes/ranker/history')).events as { type: string; cause: string; message: string }[];
  const trip = events.findIndex((e) => e.type === 'rollback');
  const restoreStarted = events.findIndex((e) => e.type === 'hook' && /afterRollback hook .* attempt 1 started/.test(e.message));
  t.ok(restoreStarted >= 0 && restoreStarted < trip, 'the trip event precedes the restore’s start (history is newest first)');
});
