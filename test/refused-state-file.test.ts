import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { canConnect, runCli, waitForPort, writeConfig } from './helpers/cli.js';
import { eventually, freePort, startLabelled } from './helpers/servers.js';

// A state file that cannot be read back as rollgate wrote it stops `rollgate serve` before it
// listens: the message names the file and the bad key, and the file is left as it was.

const TOKEN = 'refused-state-token';
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

type Saved = { routes: { m: Record<string, any> } } & Record<string, any>;

const CASES: { name: string; damage: (saved: Saved, text: string) => string; names: (path: string) => RegExp }[] = [
  {
    name: 'invalid JSON',
    damage: (_, text) => text.slice(0, Math.floor(text.length / 2)),
    names: (path) => new RegExp(`state file ${escape(path)} is corrupt`),
  },
  {
    name: 'a phase that does not exist',
    damage: (saved) => JSON.stringify({ ...saved, routes: { m: { ...saved.routes.m, phase: 'exploded' } } }),
    names: (path) => new RegExp(`state file ${escape(path)}: routes\\.m\\.phase: must be one of "stable", "shadowing", "progressing", "paused" or "rolled_back" \\(got "exploded"\\)`),
  },
  {
    name: 'a revision number written as a string',
    damage: (saved) => {
      const m = saved.routes.m;
      return JSON.stringify({ ...saved, routes: { m: { ...m, revisions: [{ ...m.revisions[0], revision: '1' }, ...m.revisions.slice(1)] } } });
    },
    names: (path) => new RegExp(`state file ${escape(path)}: routes\\.m\\.revisions\\[0\\]\\.revision: must be an integer \\(got "1"\\)`),
  },
  {
    name: 'a candidate without its URL',
    damage: (saved) => {
      const { url: _, ...candidate } = saved.routes.m.candidate;
      return JSON.stringify({ ...saved, routes: { m: { ...saved.routes.m, candidate } } });
    },
    names: (path) => new RegExp(`state file ${escape(path)}: routes\\.m\\.candidate\\.url: is required`),
  },
];

t.test('a corrupt or schema-invalid state file stops the start: exit 1, the file and the key named, nothing listening', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  t.teardown(async () => {
    await stable.close();
    await candidate.close();
  });
  const [port, adminPort] = [await freePort(), await freePort()];
  const cfgPath = writeConfig('');
  const statePath = join(dirname(cfgPath), 'state', 'rollgate-state.json');
  writeFileSync(
    cfgPath,
    `listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
store: { kind: file, path: ${statePath} }
log: { level: warn }
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: ${stable.url} }
    candidate: { version: v2, url: ${candidate.url}, weight: 50 }
`,
  );
  const serve = () => runCli(['serve', '--config', cfgPath], { ROLLGATE_ADMIN_TOKEN: TOKEN });

  // A state file as the gateway writes it.
  const first = serve();
  t.teardown(() => void first.child.kill('SIGKILL'));
  await waitForPort(port);
  const read = () => {
    try {
      return readFileSync(statePath, 'utf8');
    } catch {
      return '';
    }
  };
  t.ok(await eventually(() => read().includes('"routes"')), 'a state file was written');
  first.child.kill('SIGTERM');
  await first.exited;
  const good = read();

  for (const c of CASES) {
    const damaged = c.damage(JSON.parse(good) as Saved, good);
    writeFileSync(statePath, damaged);
    const run = serve();
    t.teardown(() => void run.child.kill('SIGKILL'));
    // A gateway that starts on the file does not exit: give up on it after a while.
    const exit = await Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    if (exit === null) run.child.kill('SIGKILL');
    t.equal(exit?.code, 1, `${c.name}: exit 1`);
    t.match(run.stderr(), c.names(statePath), `${c.name}: stderr names the file and the key`);
    t.match(run.stderr(), `the previous good copy is ${statePath}.prev`, `${c.name}: and where the previous copy is`);
    t.same([await canConnect(port), await canConnect(adminPort)], [false, false], `${c.name}: nothing listens`);
    t.equal(read(), damaged, `${c.name}: the file is left as it was`);
  }

  // The same file undamaged starts.
  writeFileSync(statePath, good);
  const again = serve();
  t.teardown(() => void again.child.kill('SIGKILL'));
  await waitForPort(port);
  await waitForPort(adminPort);
  t.pass('the good file starts the gateway');
  again.child.kill('SIGTERM');
  t.equal((await again.exited).code, 0);
});
