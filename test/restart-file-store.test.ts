import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { eventually, freePort, startUpstream } from './helpers/servers.js';
import { runCli, waitForPort, writeConfig, type Running } from './helpers/cli.js';

const TOKEN = 'restart-token';

async function versions() {
  let candidateFails = false;
  const stable = await startUpstream((req, res) => {
    req.resume();
    res.end('v1');
  });
  const candidate = await startUpstream((req, res) => {
    req.resume();
    res.writeHead(candidateFails ? 500 : 200).end('v2');
  });
  return { stable, candidate, fail: () => (candidateFails = true) };
}

async function gateway(t: { teardown(fn: () => unknown): void }, stableUrl: string, candidateUrl: string) {
  const [port, adminPort] = [await freePort(), await freePort()];
  const cfgPath = writeConfig(`listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
store: { kind: file, path: STATE }
log: { level: warn }
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: ${stableUrl} }
    candidate: { version: v2, url: ${candidateUrl}, weight: 50 }
`);
  const statePath = join(dirname(cfgPath), 'state', 'rollgate-state.json');
  writeFileSync(cfgPath, readFileSync(cfgPath, 'utf8').replace('STATE', statePath));
  let run: Running | null = null;
  const start = async (): Promise<Running> => {
    run = runCli(['serve', '--config', cfgPath], { ROLLGATE_ADMIN_TOKEN: TOKEN });
    await waitForPort(port);
    await waitForPort(adminPort);
    return run;
  };
  t.teardown(() => run?.child.kill('SIGKILL'));
  const api = async (method: 'GET' | 'POST', path: string) => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: r.statusCode, json: (await r.body.json()) as Record<string, any> };
  };
  const served = async (n: number): Promise<string[]> => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await request(`http://127.0.0.1:${port}/m/x`);
      seen.add(String(r.headers['x-rollgate-version']));
      await r.body.dump();
    }
    return [...seen].sort();
  };
  const saved = (): string => {
    try {
      return readFileSync(statePath, 'utf8');
    } catch {
      return '';
    }
  };
  return { start, api, served, saved, statePath, cfgPath };
}

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  t.test(`a manual rollback survives ${signal} and a restart`, async (t) => {
    const v = await versions();
    t.teardown(async () => {
      await v.stable.close();
      await v.candidate.close();
    });
    const g = await gateway(t, v.stable.url, v.candidate.url);
    let run = await g.start();
    t.same(await g.served(60), ['v1', 'v2'], 'both versions serve at weight 50');
    t.equal((await g.api('POST', '/api/routes/m/rollback')).status, 200);
    t.ok(await eventually(() => g.saved().includes('"rolled_back"')), 'the rollback reached the state file');
    run.child.kill(signal);
    await run.exited;
    run = await g.start();
    const state = (await g.api('GET', '/api/routes/m')).json;
    t.match(state, { phase: 'rolled_back', weight: 0, candidate: { version: 'v2' }, lastDecision: { reason: 'manual' } });
    t.same(await g.served(40), ['v1'], 'after the restart the candidate gets nothing');
  });
}

t.test('a trip survives kill -9', async (t) => {
  const v = await versions();
  t.teardown(async () => {
    await v.stable.close();
    await v.candidate.close();
  });
  const g = await gateway(t, v.stable.url, v.candidate.url);
  let run = await g.start();
  await g.served(40);
  v.fail();
  for (let i = 0; i < 100 && !g.saved().includes('"rolled_back"'); i++) await g.served(5);
  t.ok(g.saved().includes('"rolled_back"'), 'the judge tripped and the state file says so');
  run.child.kill('SIGKILL');
  await run.exited;
  run = await g.start();
  const tripped = (await g.api('GET', '/api/routes/m')).json;
  t.equal(tripped.phase, 'rolled_back', 'still rolled back after kill -9');
  t.ok(['consecutive_failures', 'error_rate'].includes(tripped.lastDecision.reason), `with the judge's reason (${tripped.lastDecision.reason})`);
  t.same(await g.served(30), ['v1']);
  run.child.kill('SIGTERM');
  await run.exited;
});

t.test('a promote and the revision history survive kill -TERM', async (t) => {
  const v = await versions();
  t.teardown(async () => {
    await v.stable.close();
    await v.candidate.close();
  });
  const g = await gateway(t, v.stable.url, v.candidate.url);
  let run = await g.start();
  t.equal((await g.api('POST', '/api/routes/m/promote')).status, 200);
  t.ok(await eventually(() => g.saved().includes('"promote"')), 'the promotion reached the state file');
  run.child.kill('SIGTERM');
  await run.exited;
  run = await g.start();
  t.match((await g.api('GET', '/api/routes/m')).json, { phase: 'stable', stable: { version: 'v2', revision: 2 }, candidate: null });
  const history = (await g.api('GET', '/api/routes/m/history')).json;
  t.same(history.revisions.map((r: { revision: number; status: string }) => [r.revision, r.status]), [[2, 'stable'], [1, 'retired']]);
  t.same(await g.served(30), ['v2'], 'the promoted version serves everything after the restart');
  run.child.kill('SIGTERM');
  await run.exited;
});

t.test('a corrupt state file stops the start with a message naming the file', async (t) => {
  const v = await versions();
  t.teardown(async () => {
    await v.stable.close();
    await v.candidate.close();
  });
  const g = await gateway(t, v.stable.url, v.candidate.url);
  const run = await g.start();
  t.ok(await eventually(() => g.saved() !== ''), 'a state file was written');
  run.child.kill('SIGTERM');
  await run.exited;
  writeFileSync(g.statePath, '{"format": 1, "routes": {"m": ');
  const again = runCli(['serve', '--config', g.cfgPath], { ROLLGATE_ADMIN_TOKEN: TOKEN });
  const { code } = await again.exited;
  t.equal(code, 1, 'exit 1: nothing started');
  t.match(again.stderr(), new RegExp(`state file ${g.statePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is corrupt`));
});
