// `listen.memory`: how `rollgate serve` sets V8 for a sidecar (lean, the default) or leaves it
// to V8 (fast). Real processes and a real upstream; what the test reads is the gateway's own
// /metrics (the process metrics prom-client takes from V8).
import http from 'node:http';
import t, { type Test } from 'tap';
import { runCli, waitForPort, writeConfig, type Running } from './helpers/cli.js';
import { freePort, startLabelled } from './helpers/servers.js';

const TOKEN = 'memory-token';
const NEW_SPACE = 'rollgate_nodejs_heap_space_size_total_bytes{space="new"}';
/** Two semi-spaces of 4 MB: lean's cap. V8's own default grows to two of 16 MB. */
const LEAN_NEW_SPACE_BYTES = 8 * 2 ** 20;

async function gateway(t: Test, upstream: string, memory: string | null): Promise<{ port: number; admin: number; run: Running }> {
  const [port, admin] = [await freePort(), await freePort()];
  const cfg = writeConfig(
    `listen: { host: 127.0.0.1, port: ${port}${memory === null ? '' : `, memory: ${memory}`} }
admin: { host: 127.0.0.1, port: ${admin} }
log: { level: warn }
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: ${upstream} }
    candidate: { version: v2, url: ${upstream}, weight: 10 }
`,
  );
  const run = runCli(['serve', '--config', cfg], { ROLLGATE_ADMIN_TOKEN: TOKEN });
  t.teardown(() => void run.child.kill('SIGKILL'));
  await waitForPort(admin, 20_000);
  return { port, admin, run };
}

/** n requests, 20 at a time on keep-alive connections; how many were answered 200. */
async function load(port: number, n: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  let ok = 0;
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/m/predict', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.end('{"inputs":[1,2,3]}');
    });
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (sent++ < n) await one();
    }),
  );
  agent.destroy();
  return ok;
}

async function newSpaceBytes(admin: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${NEW_SPACE} `));
  return line === undefined ? NaN : Number(line.slice(NEW_SPACE.length + 1));
}

t.test('listen.memory: a bad value is refused naming the key, and nothing starts', async (t) => {
  const bad = runCli(['serve', '--config', writeConfig(`listen: { port: 0, memory: tiny }\nroutes: [ { name: m, match: { pathPrefix: /m }, stable: { version: v1, url: http://127.0.0.1:1 } } ]\n`)]);
  const exit = await bad.exited;
  t.equal(exit.code, 2);
  t.match(bad.stderr(), /listen\.memory: must be one of lean, fast/);
});

t.test('lean (the default) holds the young generation at 2 x 4 MB through load; fast leaves it to V8', async (t) => {
  const upstream = await startLabelled('v1');
  t.teardown(() => upstream.close());
  const lean = await gateway(t, upstream.url, null);
  const fast = await gateway(t, upstream.url, 'fast');
  const idleLean = await newSpaceBytes(lean.admin);
  const idleFast = await newSpaceBytes(fast.admin);
  t.ok(idleLean > 0 && idleLean <= LEAN_NEW_SPACE_BYTES, `lean, started: young generation ${(idleLean / 2 ** 20).toFixed(1)} MiB`);
  t.equal(await load(lean.port, 3_000), 3_000, 'lean: every request answered');
  t.equal(await load(fast.port, 3_000), 3_000, 'fast: every request answered');
  const loadedLean = await newSpaceBytes(lean.admin);
  const loadedFast = await newSpaceBytes(fast.admin);
  t.ok(loadedLean <= LEAN_NEW_SPACE_BYTES, `lean, after 3,000 requests: young generation ${(loadedLean / 2 ** 20).toFixed(1)} MiB, at most 8`);
  t.ok(Math.max(idleFast, loadedFast) > LEAN_NEW_SPACE_BYTES, `fast: V8 grows it past 8 MiB (${(idleFast / 2 ** 20).toFixed(1)} MiB started, ${(loadedFast / 2 ** 20).toFixed(1)} after the load)`);
});
