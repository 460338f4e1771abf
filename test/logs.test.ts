import t, { type Test as TapTest } from 'tap';
import { request } from 'undici';
import { freePort, startLabelled, startUpstream } from './helpers/servers.js';
import { runCli, waitForPort, writeConfig } from './helpers/cli.js';
import { eventually } from './helpers/servers.js';

// What `rollgate serve` writes on stdout: pino JSON, one line per state change with its
// evidence; one line per request only at debug.

const TOKEN = 'logs-test-token';

async function serveWith(t: TapTest, level: string) {
  const stable = await startLabelled('v1');
  const candidate = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"broken"}'));
  });
  const spare = await startLabelled('v3');
  const port = await freePort();
  const adminPort = await freePort();
  const run = runCli(
    [
      'serve',
      '--config',
      writeConfig(`listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
log: { level: ${level} }
routes:
  - name: sentiment
    match: { pathPrefix: /v1/models/sentiment }
    stable: { version: v1, url: ${stable.url} }
    candidate: { version: v2, url: ${candidate.url}, weight: 100 }
`),
    ],
    { ROLLGATE_ADMIN_TOKEN: TOKEN },
  );
  t.teardown(async () => {
    run.child.kill('SIGKILL');
    await Promise.all([stable.close(), candidate.close(), spare.close()]);
  });
  await waitForPort(port);
  await waitForPort(adminPort);
  const lines = (): Record<string, any>[] =>
    run
      .stdout()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, any>);
  const admin = async (method: 'PUT' | 'POST', path: string, body?: unknown) => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
    t.equal(r.statusCode, 200, `${method} ${path}`);
    await r.body.dump();
  };
  const send = async (): Promise<string> => {
    const r = await request(`http://127.0.0.1:${port}/v1/models/sentiment:predict`, { method: 'POST', body: '{}' });
    await r.body.dump();
    return String(r.headers['x-request-id']);
  };
  return { lines, admin, send, spareUrl: spare.url, run };
}

t.test('at info: one JSON line per state change, none per request', async (t) => {
  const { lines, admin, send, spareUrl } = await serveWith(t, 'info');
  for (let i = 0; i < 10; i++) await send();
  t.ok(await eventually(() => lines().some((l) => l.event?.type === 'rollback')), 'the trip is logged');
  const trip = lines().find((l) => l.event?.type === 'rollback');
  t.match(trip, {
    level: 30,
    service: 'rollgate',
    msg: /^route sentiment rolled back \((consecutive_failures|error_rate)\): candidate v2 fail/,
    event: { route: 'sentiment', cause: /^(consecutive_failures|error_rate)$/, evidence: { statistic: Number, boundary: Number, candidate: { version: 'v2' }, stable: { version: 'v1' } } },
  });

  await admin('PUT', '/api/routes/sentiment/candidate', { version: 'v3', url: spareUrl, weight: 10 });
  await admin('PUT', '/api/routes/sentiment/weight', { weight: 20 });
  await admin('POST', '/api/routes/sentiment/promote');
  await admin('PUT', '/api/routes/sentiment/candidate', { version: 'v4', url: spareUrl, weight: 5 });
  await admin('POST', '/api/routes/sentiment/rollback');
  const want = [`rollback:${trip?.event.cause}`, 'deploy:manual', 'weight:manual', 'promote:manual', 'deploy:manual', 'rollback:manual'];
  t.ok(await eventually(() => lines().filter((l) => l.event !== undefined).length >= want.length), 'every change is logged');
  const changes = lines().filter((l) => l.event !== undefined);
  t.same(
    changes.map((l) => `${l.event.type}:${l.event.cause}`),
    want,
    'one line per change, in order',
  );
  for (const l of changes) t.equal(l.msg, l.event.message, `${l.event.type}: the sentence is the log message`);
  t.notOk(
    lines().some((l) => l.msg === 'request'),
    'no line per request at info',
  );
});

t.test('at debug: one line per request with its request id', async (t) => {
  const { lines, send } = await serveWith(t, 'debug');
  const ids = [await send(), await send(), await send()];
  t.ok(await eventually(() => lines().filter((l) => l.msg === 'request').length >= 3), 'three request lines');
  const requests = lines().filter((l) => l.msg === 'request');
  t.same(
    requests.map((l) => l.requestId),
    ids,
    'each names the x-request-id the client got',
  );
  t.match(requests[0], { level: 20, route: 'sentiment', version: 'v2', role: 'candidate', status: 500, failure: 'status', latencyMs: Number });
});
