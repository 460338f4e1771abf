import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { runCli, waitForPort, writeConfig } from './helpers/cli.js';
import { eventually, freePort, startLabelled } from './helpers/servers.js';
import { adminApi } from './helpers/admin-api.js';
import { CHECKSUM, featuresDatabase, PG_EXAMPLE } from './helpers/postgres.js';

// Hooks are at-least-once: a gateway killed (kill -9) while a restore hook runs runs it again
// when it starts, from the job it saved before the hook began.

const TOKEN = 'hook-crash-token';

t.test('kill -9 during a 2 s restore hook: after restart the job runs again and completes; history shows both attempts; the table is restored', async (t) => {
  const db = featuresDatabase(t);
  const original = db.psql(CHECKSUM);
  // As the beforeTraffic hook left it: the table saved under stable's snapshot id; then the
  // candidate's rollout changed the table.
  execFileSync(`${PG_EXAMPLE}snapshot.sh`, { env: { ...process.env, ...db.env, ROLLGATE_FROM_DATA_SNAPSHOT: 'features-1' } });
  db.psql("UPDATE features SET value = value || '-v2'");
  t.not(db.psql(CHECKSUM), original, 'the rollout changed the table');
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-hook-crash-'));
  const log = join(dir, 'restore.log');
  const hook = join(dir, 'restore.sh');
  // The example's restore, 2 s into the hook.
  writeFileSync(hook, `#!/bin/sh\nset -e\necho "start $ROLLGATE_VERSION $ROLLGATE_DATA_SNAPSHOT" >> '${log}'\nsleep 2\n'${PG_EXAMPLE}restore.sh'\necho "end" >> '${log}'\n`);
  chmodSync(hook, 0o755);
  const v1 = await startLabelled('v1');
  const v2 = await startLabelled('v2');
  t.teardown(async () => {
    await v1.close();
    await v2.close();
  });
  const [port, adminPort] = [await freePort(), await freePort()];
  const configPath = writeConfig(`listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
store: { kind: file, path: ${join(dir, 'state.json')} }
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: ${v1.url}, data: { snapshot: features-1 } }
    candidate: { version: v2, url: ${v2.url}, weight: 10, data: { snapshot: features-2 } }
    hooks:
      afterRollback: [ { kind: exec, command: [${hook}], timeout: 30s } ]
`);
  const serve = async () => {
    const run = runCli(['serve', '--config', configPath], { ROLLGATE_ADMIN_TOKEN: TOKEN, ...db.env });
    t.teardown(() => void run.child.kill('SIGKILL'));
    await waitForPort(adminPort);
    return run;
  };
  const call = adminApi(adminPort, TOKEN);
  const api = async (method: 'GET' | 'POST', path: string) => (await call(method, path)).body;
  const lines = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  const first = await serve();
  await api('POST', '/api/routes/m/rollback');
  t.ok(await eventually(() => lines().length === 1, 5_000), 'the restore hook started');
  first.child.kill('SIGKILL');
  await first.exited;
  t.same(lines(), ['start v1 features-1'], 'killed mid-run: started, never ended');

  await serve();
  // The killed gateway's own hook process is not killed with it (nothing can end it on SIGKILL):
  // it may still finish. The restarted gateway runs the job again all the same.
  t.ok(await eventually(async () => (await api('GET', '/api/routes/m')).data.restore?.state === 'done', 10_000), 'after the restart the job ran again, to its end');
  const ran = lines();
  t.equal(ran.filter((l) => l === 'start v1 features-1').length, 2, 'started twice, with the data of the version now serving: at least once');
  t.ok(ran.lastIndexOf('end') > ran.lastIndexOf('start v1 features-1'), 'and the second run ended');
  const state = await api('GET', '/api/routes/m');
  t.match(state, { phase: 'rolled_back', data: { snapshot: 'features-1', restore: { state: 'done', attempts: 2, lastError: null } } }, 'the route state: restore done after 2 attempts');
  const history = (await api('GET', '/api/routes/m/history')).events as { type: string; message: string }[];
  const attempts = history.filter((e) => e.type === 'hook' && /attempt \d started/.test(e.message)).map((e) => /attempt (\d) started/.exec(e.message)?.[1]);
  t.same(attempts.sort(), ['1', '2'], 'the history shows both attempts');
  t.equal(db.psql(CHECKSUM), original, 'the table is restored');
});
