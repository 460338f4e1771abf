import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const HOST = '127.0.0.1';

const ROUTE = `
  - name: sentiment
    match: { pathPrefix: /v1/models/sentiment }
    stable: { version: v1, url: "http://127.0.0.1:9001" }`;

interface Case {
  name: string;
  /** Everything after the listen and admin keys. */
  body: string;
  /** What stderr must contain; `FILE` stands for the config's path. */
  expect: string;
  sameAdminPort?: boolean;
}

const cases: Case[] = [
  { name: 'bad URL scheme', body: `routes:\n  - name: a\n    match: { pathPrefix: /a }\n    stable: { version: v1, url: "ftp://h" }`, expect: 'routes[0].stable.url: must be an http(s) URL' },
  { name: 'weight 101', body: `routes:${ROUTE}\n    candidate: { version: v2, url: "http://127.0.0.1:9002", weight: 101 }`, expect: 'routes[0].candidate.weight: ' },
  { name: 'bare number duration', body: `routes:${ROUTE}\n    timeouts: { response: 30 }`, expect: 'routes[0].timeouts.response: must be a duration' },
  { name: 'misspelt route key', body: `routes:${ROUTE}\n    stabel: { version: v1, url: "http://h" }`, expect: 'routes[0].stabel: unknown key' },
  { name: 'duplicate route name', body: `routes:${ROUTE}${ROUTE.replace('/v1/models/sentiment', '/v2/models/sentiment')}`, expect: 'routes[1].name: duplicates routes[0].name' },
  { name: 'empty routes', body: 'routes: []', expect: 'routes: must be a non-empty list' },
  { name: 'alpha 0.9', body: `routes:${ROUTE}\n    rollback: { alpha: 0.9 }`, expect: 'routes[0].rollback.alpha: ' },
  { name: 'admin on the listen port', body: `routes:${ROUTE}`, expect: 'admin.port: collides with listen', sameAdminPort: true },
  { name: 'redis store without url', body: `store: { kind: redis }\nroutes:${ROUTE}`, expect: 'store.url: is required' },
  { name: 'healthCheck without path', body: `routes:${ROUTE}\n    healthCheck: { interval: 2s }`, expect: 'routes[0].healthCheck.path: is required' },
  { name: 'notify URL not http(s)', body: `notify: [ { kind: webhook, url: "ftp://h/hook" } ]\nroutes:${ROUTE}`, expect: 'notify[0].url: must be an http(s) URL' },
  { name: 'pathPrefix without /', body: `routes:\n  - name: a\n    match: { pathPrefix: a }\n    stable: { version: v1, url: "http://h" }`, expect: 'routes[0].match.pathPrefix: must start with /' },
  { name: 'sticky header and cookie', body: `routes:${ROUTE}\n    sticky: { header: x-user, cookie: uid }`, expect: 'routes[0].sticky: must set exactly one' },
  { name: 'invalid JSON Schema', body: `routes:${ROUTE}\n    checks: { json: { schema: { type: strng } } }`, expect: 'routes[0].checks.json.schema: is not a valid JSON Schema' },
  { name: 'JSON Schema file missing', body: `routes:${ROUTE}\n    checks: { json: { schema: ./no-such-schema.json } }`, expect: 'routes[0].checks.json.schema: cannot read ' },
  { name: 'unknown LLM format', body: `routes:${ROUTE}\n    checks: { llm: { format: anthropic } }`, expect: 'routes[0].checks.llm.format: must be one of openai' },
  { name: 'bad agreement pointer', body: `routes:${ROUTE}\n    agreement: { pointer: predictions/0 }`, expect: 'routes[0].agreement.pointer: must be a JSON Pointer' },
  { name: 'maxDisagreement 1', body: `routes:${ROUTE}\n    agreement: { pointer: /label, maxDisagreement: 1 }`, expect: 'routes[0].agreement.maxDisagreement: must be a number above 0 and below 1' },
  { name: 'maxDisagreement 0', body: `routes:${ROUTE}\n    agreement: { pointer: /label, maxDisagreement: 0 }`, expect: 'routes[0].agreement.maxDisagreement: must be a number above 0 and below 1' },
  { name: 'exec hook without its command', body: `routes:${ROUTE}\n    hooks: { afterRollback: [ { kind: exec, timeout: 1m } ] }`, expect: 'routes[0].hooks.afterRollback[0].command: is required when kind is exec' },
  { name: 'hook of an unknown kind', body: `routes:${ROUTE}\n    hooks: { beforeTraffic: [ { kind: shell, command: [x] } ] }`, expect: 'routes[0].hooks.beforeTraffic[0].kind: must be one of exec, http' },
  { name: 'bad data snapshot id', body: `routes:\n  - name: a\n    match: { pathPrefix: /a }\n    stable: { version: v1, url: "http://h", data: { snapshot: "a b" } }`, expect: 'routes[0].stable.data.snapshot: must be 1-128 letters' },
  { name: 'YAML syntax error', body: `routes:${ROUTE}\n    timeouts: { connect: 1s`, expect: 'FILE:' },
];

/** Distinct free ports: every server stays open until all are picked. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, HOST, resolve));
    servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Outcome {
  code: number | null;
  stderr: string;
  accepted: boolean;
}

/** Runs `rollgate serve` and keeps knocking on the data plane port until the process ends. */
async function serve(file: string, port: number): Promise<Outcome> {
  // Run the CLI as a user would: without the test runner's preloads in NODE_OPTIONS.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', file], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // Generous: the cases start together and may share a small, busy machine.
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  let accepted = false;
  while (!done) {
    // A gateway that started will not exit on its own: stop it and fail at once.
    if (await accepts(port)) {
      accepted = true;
      child.kill('SIGKILL');
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  clearTimeout(killer);
  if (await accepts(port)) accepted = true;
  return { code: await exited, stderr, accepted };
}

t.test('an invalid config exits 2, names the key path and starts nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-cli-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ports = await freePorts(cases.length * 2);
  const outcomes = await Promise.all(
    cases.map((c, i) => {
      const port = ports[2 * i]!;
      const adminPort = c.sameAdminPort ? port : ports[2 * i + 1]!;
      const file = join(dir, `case-${i}.yaml`);
      const head = `listen: { host: ${HOST}, port: ${port} }\nadmin: { host: ${HOST}, port: ${adminPort} }\n`;
      writeFileSync(file, head + c.body + '\n');
      return serve(file, port).then((o) => ({ ...o, c, file, port }));
    }),
  );
  for (const { c, file, port, code, stderr, accepted } of outcomes) {
    t.test(c.name, async (t) => {
      t.equal(code, 2, 'exit code 2');
      const expected = c.expect.replace('FILE', file);
      const lines = stderr.split('\n');
      t.ok(lines.some((l) => l.startsWith(expected)), `a stderr line starts with ${expected}\n${stderr}`);
      t.notOk(accepted, `nothing accepted a connection on ${HOST}:${port}`);
    });
  }
});
