import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Pool, request } from 'undici';
import { startAdmin } from '../src/admin/server.js';
import { ConfigError, parseConfig } from '../src/config/index.js';
import { runCli } from './helpers/cli.js';
import { config, eventually, seededRng, startGateway, startUpstream, type TestUpstream } from './helpers/servers.js';
import { adminApi } from './helpers/admin-api.js';

// Restore hooks (SPEC §9): after every rollback the afterRollback hooks run, never before the
// weights moved; beforeTraffic hooks run before a candidate gets any request or copy; each run
// is a job with attempts, retried with backoff, visible in the route state, history and metrics.

const S1 = 'features-2026-11-30';
const S2 = 'features-2026-12-01';
const TOKEN = 'hooks-token';

/** An executable hook script that appends its ROLLGATE_* environment to `log`, then runs `then`. */
function script(dir: string, name: string, log: string, then = 'exit 0'): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!/bin/sh\nprintf '%s|%s|%s|%s|%s|%s|%s|%s\\n' "$ROLLGATE_EVENT" "$ROLLGATE_ROUTE" "$ROLLGATE_REVISION" "$ROLLGATE_VERSION" "$ROLLGATE_DATA_SNAPSHOT" "$ROLLGATE_FROM_VERSION" "$ROLLGATE_FROM_DATA_SNAPSHOT" "$ROLLGATE_REASON" >> '${log}'\n${then}\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

const lines = (log: string): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

async function hookedRoute(t: Test, hooks: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const seen: { label: string; at: number }[] = [];
  const server = (label: string, failing: boolean): Promise<TestUpstream> =>
    startUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push({ label, at: Date.now() });
        res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' }).end(`{"served":"${label}"}`);
      });
    });
  const v1 = await server('v1', false);
  const v2 = await server('v2', true);
  const notified: { type: string; hook?: { state: string } }[] = [];
  const receiver = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      notified.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  const cfg = config(
    [
      {
        name: 'm',
        match: { pathPrefix: '/m' },
        stable: { version: 'v1', url: v1.url, data: { snapshot: S1 } },
        candidate: { version: 'v2', url: v2.url, weight: 30, data: { snapshot: S2 } },
        rollback: { latency: { minDelta: '10s' } },
        hooks,
        ...extra,
      },
    ],
    { notify: [{ kind: 'webhook', url: `${receiver.url}/hook` }] },
  );
  const gw = await startGateway(cfg, { rng: seededRng(5), hookBackoffMs: () => 20 });
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token: TOKEN, ready: () => true, metrics: gw.metrics });
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(async () => {
    await pool.close();
    await admin.app.close();
    await gw.close();
    for (const u of [v1, v2, receiver]) await u.close();
  });
  const send = async () => {
    const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}' });
    await r.body.dump();
    return r.statusCode;
  };
  const api = adminApi(admin.address.port, TOKEN);
  const metric = async (re: RegExp): Promise<number> => {
    const text = await (await request(`http://127.0.0.1:${admin.address.port}/metrics`)).body.text();
    return Number(re.exec(text)?.[1] ?? Number.NaN);
  };
  const env = { ROLLGATE_ADMIN_URL: `http://127.0.0.1:${admin.address.port}`, ROLLGATE_ADMIN_TOKEN: TOKEN };
  return { seen, send, api, metric, notified, env, gw, v1, controller: gw.rollouts.route('m')! };
}

t.test('a trip runs afterRollback after the weights moved, with the facts of both versions; the route says restore done', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-hooks-'));
  const log = join(dir, 'restore.log');
  const { seen, send, api, metric, controller } = await hookedRoute(t, { afterRollback: [{ kind: 'exec', command: [script(dir, 'restore.sh', log)], timeout: '10s' }] });
  t.equal(await metric(/rollgate_hook_runs_total\{route="m",event="afterRollback",outcome="done"\} (\d+)/), 0, 'the runs counter is there at 0 before any run');
  for (let i = 0; i < 400 && controller.phase !== 'rolled_back'; i++) await send();
  t.equal(controller.phase, 'rolled_back', 'the failing candidate was rolled back by the judge');
  const tripAt = Date.now();
  t.ok(await eventually(() => controller.state().data.restore?.state === 'done', 5_000), 'the restore is done');
  const afterTrip = seen.filter((s) => s.at > tripAt && s.label === 'v2');
  t.equal(afterTrip.length, 0, 'no request reached the candidate after the trip');
  const [line] = lines(log);
  t.match(line, new RegExp(`^afterRollback\\|m\\|1\\|v1\\|${S1}\\|v2\\|${S2}\\|(consecutive_failures|error_rate)$`), 'the hook saw the event, the version now serving and its data, the one rolled back and its data, and the reason');
  const history = (await api('GET', '/api/routes/m/history')).body.events as { type: string; message: string }[];
  const trip = history.findIndex((e) => e.type === 'rollback');
  const started = history.findIndex((e) => e.type === 'hook' && /afterRollback hook .* attempt 1 started/.test(e.message));
  t.ok(trip > started && started >= 0, 'the trip comes before the hook’s start in the history (newest first)');
  const state = (await api('GET', '/api/routes/m')).body;
  t.match(state.data, { snapshot: S1, restore: { state: 'done', attempts: 1, lastError: null } }, 'the route state: restore done');
  t.equal(await metric(/rollgate_hook_runs_total\{route="m",event="afterRollback",outcome="done"\} (\d+)/), 1);
  t.ok(await metric(/rollgate_hook_duration_seconds_count\{route="m",event="afterRollback"\} (\d+)/) === 1, 'its duration observed once');
});

t.test('a hook that keeps failing is retried, then failed: route state, CLI, one notification, the metric; traffic unaffected', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-hooks-'));
  const log = join(dir, 'restore.log');
  const { send, api, metric, notified, env, controller } = await hookedRoute(t, {
    afterRollback: [{ kind: 'exec', command: [script(dir, 'restore.sh', log, 'echo "table locked" >&2; exit 3')], maxAttempts: 3 }],
  });
  t.equal((await api('POST', '/api/routes/m/rollback')).status, 200, 'a manual rollback');
  t.ok(await eventually(() => controller.state().data.restore?.state === 'failed', 5_000), 'the restore failed in the end');
  t.equal(lines(log).length, 3, 'the hook ran three times (maxAttempts)');
  const codes = [];
  for (let i = 0; i < 50; i++) codes.push(await send());
  t.same([...new Set(codes)], [200], 'traffic went on, on stable');
  const state = (await api('GET', '/api/routes/m')).body;
  t.match(state.data.restore, { state: 'failed', attempts: 3, lastError: /restore\.sh exited with code 3/ });
  const status = runCli(['status', 'm'], env);
  await status.exited;
  t.match(status.stdout(), /data restore:\s+failed after 3 attempts \(last error: .*exited with code 3\)/, 'rollgate status shows it');
  t.ok(await eventually(() => notified.some((n) => n.type === 'hook')), 'notified');
  t.equal(notified.filter((n) => n.type === 'hook').length, 1, 'once, for the failure');
  t.equal(await metric(/rollgate_hook_runs_total\{route="m",event="afterRollback",outcome="failed"\} (\d+)/), 1);
  t.equal(await metric(/rollgate_hook_runs_total\{route="m",event="afterRollback",outcome="retry"\} (\d+)/), 2);
});

t.test('a hook command that does not exist fails its job with a clear message', async (t) => {
  const { api, controller } = await hookedRoute(t, { afterRollback: [{ kind: 'exec', command: ['/no/such/restore-command'], maxAttempts: 1 }] });
  await api('POST', '/api/routes/m/rollback');
  t.ok(await eventually(() => controller.state().data.restore?.state === 'failed', 5_000));
  t.equal(controller.state().data.restore?.lastError, 'command not found: /no/such/restore-command');
});

t.test('beforeTraffic: the candidate gets nothing until the hook is done; a failing one leaves it with no request and rolls it back (hook_failed)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-hooks-'));
  const log = join(dir, 'snapshot.log');
  const ok = await hookedRoute(t, { beforeTraffic: [{ kind: 'exec', command: [script(dir, 'snapshot.sh', log, 'sleep 0.4')] }] }, { candidate: { version: 'v2', url: 'http://127.0.0.1:9', weight: 100, data: { snapshot: S2 } } });
  const third = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      ok.seen.push({ label: 'v3', at: Date.now() });
      res.writeHead(200).end('{"served":"v3"}');
    });
  });
  t.teardown(() => third.close());
  ok.seen.length = 0;
  t.equal((await ok.api('PUT', '/api/routes/m/candidate', { version: 'v3', url: third.url, weight: 100, data: { snapshot: 'features-v3' } })).status, 200);
  const during = [];
  for (let i = 0; i < 10; i++) during.push(await ok.send());
  t.same(ok.seen.map((s) => s.label), Array.from({ length: 10 }, () => 'v1'), 'while the snapshot hook runs, stable serves everything');
  t.ok(
    await eventually(async () => {
      await ok.send();
      return ok.seen.at(-1)?.label === 'v3';
    }, 5_000),
    'then the candidate takes its weight',
  );
  t.match(lines(log).at(-1), /^beforeTraffic\|m\|\d+\|v3\|features-v3\|v1\|features-2026-11-30\|manual$/, 'the hook saw the candidate and its data');

  const failing = await hookedRoute(t, { beforeTraffic: [{ kind: 'exec', command: [script(dir, 'fails.sh', join(dir, 'fails.log'), 'exit 1')], maxAttempts: 2 }] }, { strategy: 'shadow', shadow: { mirrorPercent: 100, bake: '1h' } });
  t.ok(await eventually(() => failing.controller.phase === 'rolled_back', 5_000), 'the candidate declared in the config is rolled back');
  for (let i = 0; i < 20; i++) await failing.send();
  t.equal(failing.seen.filter((s) => s.label === 'v2').length, 0, '0 requests and 0 copies reached it');
  t.match(failing.controller.state().lastDecision, { reason: 'hook_failed', message: /beforeTraffic hook failed after 2 attempts/ }, 'the deployment is marked failed with the reason');
});

t.test('an http hook gets the event as JSON; rollback --version 1 hands it revision 1’s data', async (t) => {
  const bodies: Record<string, unknown>[] = [];
  const hook = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(body));
      res.writeHead(200).end('restored');
    });
  });
  t.teardown(() => hook.close());
  const { api, controller, v1 } = await hookedRoute(t, { afterRollback: [{ kind: 'http', url: `${hook.url}/restore`, timeout: '2s' }] });
  await api('PUT', '/api/routes/m/candidate', { version: 'v3', url: v1.url, weight: 0, data: { snapshot: 'features-v3' } });
  await api('POST', '/api/routes/m/promote');
  t.equal((await api('POST', '/api/routes/m/rollback', { version: 1 })).status, 200);
  t.ok(await eventually(() => controller.state().data.restore?.state === 'done', 5_000));
  t.same(bodies.at(-1), { event: 'afterRollback', route: 'm', revision: 1, version: 'v1', dataSnapshot: S1, fromVersion: 'v3', fromDataSnapshot: 'features-v3', reason: 'manual', evidence: null });
});

t.test('hook config errors name their key path', async (t) => {
  const problems = (hooks: unknown): string[] => {
    try {
      parseConfig({ routes: [{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: 'http://127.0.0.1:9001' }, hooks }] });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };
  t.match(problems({ afterRollback: [{ kind: 'exec' }] }), [/^routes\[0\]\.hooks\.afterRollback\[0\]\.command: is required when kind is exec/]);
  t.match(problems({ beforeTraffic: [{ kind: 'http', url: 'ftp://x' }] }), [/^routes\[0\]\.hooks\.beforeTraffic\[0\]\.url: must be an http\(s\) URL/]);
  t.match(problems({ afterPromote: [{ kind: 'shell', command: ['x'] }] }), [/^routes\[0\]\.hooks\.afterPromote\[0\]\.kind: must be one of exec, http/]);
  t.match(problems({ afterRollback: [{ kind: 'exec', command: ['x'], maxAttempts: 0 }] }), [/^routes\[0\]\.hooks\.afterRollback\[0\]\.maxAttempts/]);
  t.match(problems({ onFire: [] }), [/^routes\[0\]\.hooks\.onFire/]);
});
