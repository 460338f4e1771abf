import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { runCli, waitForPort, writeConfig } from './helpers/cli.js';
import { startRedis } from './helpers/redis.js';
import { freePort, startLabelled, startUpstream } from './helpers/servers.js';

// The rollgate process ends because nothing it opened is left open, never because it forces an
// exit: after SIGTERM, with every feature that holds a handle in use (a health checker, a webhook,
// an open admin event stream, keep-alive connections, the state store or Redis), it exits 0 on its own.

const TOKEN = 'process-exit-token';
/** Far longer than a clean shutdown takes; a leaked handle keeps the process alive past it. */
const EXIT_WITHIN_MS = 15_000;

async function serveWithEverything(t: Test, store: string) {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const hook = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  t.teardown(async () => {
    await stable.close();
    await candidate.close();
    await hook.close();
  });
  const [port, adminPort] = [await freePort(), await freePort()];
  const run = runCli(
    [
      'serve',
      '--config',
      writeConfig(`listen: { host: 127.0.0.1, port: ${port}, drainTimeout: 2s }
admin: { host: 127.0.0.1, port: ${adminPort} }
store: ${store}
notify: [ { kind: webhook, url: ${hook.url}/hook } ]
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: ${stable.url} }
    candidate: { version: v2, url: ${candidate.url}, weight: 50 }
    healthCheck: { path: /health, interval: 200ms, timeout: 100ms }
    rollback: { latency: { minDelta: 10s } }
`),
    ],
    { ROLLGATE_ADMIN_TOKEN: TOKEN },
  );
  t.teardown(() => void run.child.kill('SIGKILL'));
  await waitForPort(port);
  await waitForPort(adminPort);
  const admin = `http://127.0.0.1:${adminPort}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (let i = 0; i < 20; i++) await (await request(`http://127.0.0.1:${port}/m/predict`, { method: 'POST', body: '{}' })).body.dump();
  await (await request(`${admin}/metrics`)).body.dump();
  // A state change: persisted, notified, logged.
  const rolled = await request(`${admin}/api/routes/m/rollback`, { method: 'POST', headers: auth });
  t.equal(rolled.statusCode, 200, 'a rollback through the admin API');
  await rolled.body.dump();
  // An event stream left open by its client.
  const stream = await request(`${admin}/api/events`, { headers: auth });
  t.equal(stream.statusCode, 200, 'an admin event stream is open');
  stream.body.on('data', () => {}).on('error', () => {});
  return run;
}

async function exitsOnItsOwn(t: Test, run: ReturnType<typeof runCli>): Promise<void> {
  const started = Date.now();
  run.child.kill('SIGTERM');
  const timeout = new Promise<'still running'>((r) => setTimeout(() => r('still running'), EXIT_WITHIN_MS).unref());
  const ended = await Promise.race([run.exited, timeout]);
  t.not(ended, 'still running', `the process ended on its own after SIGTERM (${Date.now() - started} ms)`);
  t.same(ended, { code: 0, signal: null }, 'exit 0');
  t.match(run.stdout(), /"msg":"stopped"/, 'it logged that it stopped');
}

t.test('rollgate serve with a file store leaves no handle open', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-exit-'));
  const run = await serveWithEverything(t, `{ kind: file, path: ${join(dir, 'state.json')} }`);
  await exitsOnItsOwn(t, run);
});

t.test('rollgate serve on Redis leaves no handle open', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const run = await serveWithEverything(t, `{ kind: redis, url: ${redis.url}, prefix: exit${Date.now()} }`);
  await exitsOnItsOwn(t, run);
});
