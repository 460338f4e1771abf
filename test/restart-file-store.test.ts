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
  const api = async (method: 'GET' | 'POST', path: string, body?: string) => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body }),
    });
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

type Gateway = Awaited<ReturnType<typeof gateway>>;

interface Scenario {
  name: string;
  /** Does the change through the running gateway; resolves once the state file has it. */
  act(g: Gateway, fail: () => void): Promise<void>;
  expected: Record<string, unknown>;
  serves: string[];
  /**
   * How the gateway is stopped. kill -9 shows the change was saved when it was made; a graceful
   * stop (its last save) is shown once, on the change that comes from the request path.
   */
  signals: ('SIGTERM' | 'SIGKILL')[];
}

const SCENARIOS: Scenario[] = [
  {
    name: 'a trip',
    async act(g, fail) {
      fail();
      for (let i = 0; i < 100 && !g.saved().includes('"rolled_back"'); i++) await g.served(5);
    },
    expected: { phase: 'rolled_back', weight: 0, candidate: { version: 'v2' } },
    serves: ['v1'],
    signals: ['SIGTERM', 'SIGKILL'],
  },
  {
    name: 'a manual rollback',
    async act(g) {
      await g.api('POST', '/api/routes/m/rollback');
      await eventually(() => g.saved().includes('"rolled_back"'));
    },
    expected: { phase: 'rolled_back', weight: 0, candidate: { version: 'v2' }, lastDecision: { reason: 'manual' } },
    serves: ['v1'],
    signals: ['SIGKILL'],
  },
  {
    name: 'a promote',
    async act(g) {
      await g.api('POST', '/api/routes/m/promote');
      await eventually(() => g.saved().includes('"promote"'));
    },
    expected: { phase: 'stable', stable: { version: 'v2', revision: 2 }, candidate: null },
    serves: ['v2'],
    signals: ['SIGKILL'],
  },
  {
    name: 'a rollback to revision 1',
    async act(g) {
      await g.api('POST', '/api/routes/m/promote');
      await g.api('POST', '/api/routes/m/rollback', '{"version": 1}');
      await eventually(() => g.saved().includes('to v1 (revision 1)'));
    },
    expected: { phase: 'stable', stable: { version: 'v1', revision: 1 }, candidate: null },
    serves: ['v1'],
    signals: ['SIGKILL'],
  },
];

for (const scenario of SCENARIOS) {
  for (const signal of scenario.signals) {
    t.test(`${scenario.name} survives ${signal === 'SIGKILL' ? 'kill -9' : 'kill -TERM'} and a restart`, async (t) => {
      const v = await versions();
      t.teardown(async () => {
        await v.stable.close();
        await v.candidate.close();
      });
      const g = await gateway(t, v.stable.url, v.candidate.url);
      let run = await g.start();
      t.same(await g.served(40), ['v1', 'v2'], 'both versions serve at weight 50');
      await scenario.act(g, v.fail);
      run.child.kill(signal);
      await run.exited;
      run = await g.start();
      t.match((await g.api('GET', '/api/routes/m')).json, scenario.expected, 'the state after the restart');
      t.same(await g.served(30), scenario.serves, `${scenario.serves.join()} serves everything`);
      run.child.kill('SIGTERM');
      await run.exited;
    });
  }
}

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
