import t from 'tap';
import { request } from 'undici';
import { eventually, freePort, startUpstream } from './helpers/servers.js';
import { canConnect, runCli, waitForPort, writeConfig } from './helpers/cli.js';

async function slowUpstream(holdMs: number | null) {
  let arrived: () => void = () => {};
  const first = new Promise<void>((r) => (arrived = r));
  const up = await startUpstream((req, res) => {
    req.resume();
    arrived();
    if (holdMs === null) return;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}'), holdMs);
  });
  return { up, first };
}

function yaml(port: number, adminPort: number, upstream: string, drain = '5s'): string {
  return `listen: { host: 127.0.0.1, port: ${port}, drainTimeout: ${drain} }
admin: { host: 127.0.0.1, port: ${adminPort} }
routes:
  - name: sentiment
    match: { pathPrefix: /v1/models/sentiment }
    stable: { version: v1, url: ${upstream} }
`;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: stops accepting, lets the in-flight request finish, exits 0`, async (t) => {
    const { up, first } = await slowUpstream(400);
    t.teardown(() => up.close());
    const port = await freePort();
    const run = runCli(['serve', '--config', writeConfig(yaml(port, await freePort(), up.url))]);
    t.teardown(() => run.child.kill('SIGKILL'));
    await waitForPort(port);
    t.ok(await eventually(() => run.stdout().includes('data plane listening')), 'logs that it listens');

    const inFlight = request(`http://127.0.0.1:${port}/v1/models/sentiment:predict`, { method: 'POST', body: '{}' });
    await first;
    run.child.kill(signal);
    const r = await inFlight;
    t.equal(r.statusCode, 200, 'the in-flight request got its answer');
    t.same(await r.body.json(), { done: true });
    t.equal(r.headers.connection, 'close', 'and was told the connection closes');
    const { code } = await run.exited;
    t.equal(code, 0, 'exit code 0');
    t.equal(await canConnect(port), false, 'nothing listens any more');
    t.match(run.stdout(), /shutting down/);
  });
}

t.test('in-flight requests are cut at the drain deadline and the process still exits 0', async (t) => {
  const { up, first } = await slowUpstream(null);
  t.teardown(() => up.close());
  const port = await freePort();
  const run = runCli(['serve', '--config', writeConfig(yaml(port, await freePort(), up.url, '300ms'))]);
  t.teardown(() => run.child.kill('SIGKILL'));
  await waitForPort(port);
  const inFlight = request(`http://127.0.0.1:${port}/v1/models/sentiment`).then(
    (r) => r.statusCode,
    (e: Error) => e,
  );
  await first;
  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  t.equal(code, 0, 'exit code 0 after the deadline');
  t.type(await inFlight, Error, 'the hanging request was cut');
});

t.test('usage errors exit 2, a port in use exits 1', async (t) => {
  const busy = await startUpstream(() => {});
  t.teardown(() => busy.close());
  const busyConfig = writeConfig(yaml(busy.port, await freePort(), 'http://127.0.0.1:1'));
  const [noConfig, unknown, missing, inUse, help] = [
    runCli(['serve']),
    runCli(['frobnicate']),
    runCli(['serve', '--config', '/nonexistent/rollgate.yaml']),
    runCli(['serve', '--config', busyConfig]),
    runCli(['help']),
  ];
  t.equal((await noConfig.exited).code, 2);
  t.match(noConfig.stderr(), /serve needs --config FILE/);
  t.equal((await unknown.exited).code, 2);
  t.match(unknown.stderr(), /unknown command 'frobnicate'/);
  t.equal((await missing.exited).code, 2, 'an unreadable config file is a usage error');
  t.match(missing.stderr(), /\/nonexistent\/rollgate.yaml/);
  t.equal((await inUse.exited).code, 1);
  t.match(inUse.stderr(), new RegExp(`cannot listen on 127.0.0.1:${busy.port}: EADDRINUSE`));
  t.equal((await help.exited).code, 0);
  t.match(help.stdout(), /serve --config FILE/);
});

t.test('without the token variable, a random admin token is printed once on stderr and never logged', async (t) => {
  const up = await startUpstream((req, res) => res.end('ok'));
  t.teardown(() => up.close());
  const [port, adminPort] = [await freePort(), await freePort()];
  const env = { ROLLGATE_ADMIN_TOKEN: '' };
  const run = runCli(['serve', '--config', writeConfig(yaml(port, adminPort, up.url))], env);
  t.teardown(() => run.child.kill('SIGKILL'));
  await waitForPort(adminPort);
  t.ok(await eventually(() => /admin token: \S+/.test(run.stderr())), 'stderr shows the token');
  const token = /admin token: (\S+)/.exec(run.stderr())?.[1] ?? '';
  t.equal(run.stderr().split(token).length - 1, 1, 'printed once');
  t.notOk(run.stdout().includes(token), 'never in the JSON log');
  const denied = await request(`http://127.0.0.1:${adminPort}/api/routes`);
  await denied.body.dump();
  t.equal(denied.statusCode, 401, 'the admin API is not open');
  const allowed = await request(`http://127.0.0.1:${adminPort}/api/routes`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(allowed.statusCode, 200, 'the printed token works');
  t.match(await allowed.body.json(), { routes: [{ name: 'sentiment', phase: 'stable' }] });
  run.child.kill('SIGTERM');
  t.equal((await run.exited).code, 0);
});
