import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { startRedis } from './helpers/redis.js';
import { eventually, startLabelled, startUpstream } from './helpers/servers.js';
import { serveReplica } from './helpers/serve-replica.js';
import { adminApi } from './helpers/admin-api.js';

// Two `rollgate serve` replicas on one Redis share the hook jobs: exactly one of them runs each
// restore, and when it dies mid-run the other takes the job over once its lease lapses.

const TOKEN = 'hook-replicas-token';

t.test('one restore run per trip across two replicas; a killed runner’s job is completed by the other', async (t) => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-hook-replicas-'));
  const log = join(dir, 'restore.log');
  const hook = join(dir, 'restore.sh');
  // Each replica names itself in REPLICA, which its hooks inherit.
  writeFileSync(hook, `#!/bin/sh\necho "start $REPLICA $ROLLGATE_VERSION" >> '${log}'\nsleep 1.5\necho "end $REPLICA" >> '${log}'\n`);
  chmodSync(hook, 0o755);
  const stable = await startLabelled('v1');
  const failing = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(500).end('{"error":"v2"}'));
  });
  t.teardown(async () => {
    await redis.stop();
    await stable.close();
    await failing.close();
  });
  const lines = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  const prefix = `hooks${Date.now()}`;
  const a = await replica(t, 'A', redis.url, prefix, stable.url, failing.url, hook);
  const b = await replica(t, 'B', redis.url, prefix, stable.url, failing.url, hook);

  // A judge's trip on A (only A sees the failing traffic); B applies it as a peer.
  for (let i = 0; i < 200 && (await a.api('GET', '/api/routes/m')).phase !== 'rolled_back'; i++) {
    const r = await request(`http://127.0.0.1:${a.port}/m/x`, { method: 'POST', body: '{}' });
    await r.body.dump();
  }
  t.ok(await eventually(async () => (await b.api('GET', '/api/routes/m')).phase === 'rolled_back', 5_000), 'the trip reached both replicas');
  t.ok(await eventually(() => lines().includes('end A'), 10_000), 'the restore ran');
  await new Promise((r) => setTimeout(r, 2_500));
  t.same(lines(), ['start A v1', 'end A'], 'exactly one restore run, on the replica that decided');

  // A new candidate and a manual rollback through A; A dies in the middle of the restore.
  t.match(await a.api('PUT', '/api/routes/m/candidate', { version: 'v3', url: stable.url, weight: 0 }), { candidate: { version: 'v3' } }, 'a new candidate');
  await a.api('POST', '/api/routes/m/rollback');
  t.ok(await eventually(() => lines().length === 3, 5_000), 'the second restore started on A');
  a.run.child.kill('SIGKILL');
  await a.run.exited;
  t.ok(await eventually(() => lines().includes('end B'), 15_000), 'B took the job over once A’s lease lapsed, and completed it');
  t.equal(lines().filter((l) => l === 'start B v1').length, 1, 'B ran it once');
  t.ok(await eventually(async () => (await b.api('GET', '/api/routes/m')).data?.restore?.state === 'done', 5_000), 'B’s route state: restore done');
});

async function replica(t: Test, name: string, redisUrl: string, prefix: string, stableUrl: string, candidateUrl: string, hook: string) {
  const { run, port, adminPort } = await serveReplica(t, {
    redisUrl,
    prefix,
    stableUrl,
    candidateUrl,
    weight: 50,
    token: TOKEN,
    routeYaml: `    hooks:\n      afterRollback: [ { kind: exec, command: [${hook}], timeout: 30s } ]\n`,
    env: { REPLICA: name },
  });
  const call = adminApi(adminPort, TOKEN);
  const api = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown) => (await call(method, path, body)).body;
  return { run, api, port };
}
