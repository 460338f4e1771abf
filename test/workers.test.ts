// `listen.workers`: `rollgate serve` with two data-plane processes on one port, one admin plane
// and one store in the primary. Real processes, real upstreams, real signals.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import t from 'tap';
import { adminApi } from './helpers/admin-api.js';
import { runCli, waitForPort, writeConfig, type Running } from './helpers/cli.js';
import { eventually, freePort, startFailingOnHeader, startLabelled } from './helpers/servers.js';

const TOKEN = 'workers-token';

/** One request on a connection of its own (so that node:cluster hands each to the next worker). */
function send(port: number, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/m/x', agent: false, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
      // Cut before its end: a failure (a promise keeps the first answer it was given).
      res.on('close', () => resolve({ status: 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    // A connection node:cluster handed to a worker that was killed at that moment is never
    // answered: it counts as failed.
    req.setTimeout(5_000, () => req.destroy());
  });
}

async function sendMany(port: number, n: number, headers: Record<string, string> = {}): Promise<{ status: number; body: string }[]> {
  const out: { status: number; body: string }[] = [];
  for (let i = 0; i < n; i += 10) out.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => send(port, headers)))));
  return out;
}

/** CPU ticks a process has used (user + system), from /proc. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** The JSON log lines the primary and its workers printed. */
function logLines(run: Running): Record<string, any>[] {
  return run
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

async function scrape(adminPort: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  return r.text();
}

t.test('two workers: one state, one set of hooks, one /metrics, and a worker killed under load is replaced', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startFailingOnHeader();
  t.teardown(() => Promise.all([stable.close(), candidate.close()]));
  const [port, adminPort] = [await freePort(), await freePort()];
  const cfgPath = writeConfig('');
  const hookLog = join(dirname(cfgPath), 'hooks.log');
  const hookScript = join(dirname(cfgPath), 'after-rollback.sh');
  writeFileSync(hookScript, `#!/bin/sh\necho "$ROLLGATE_EVENT $ROLLGATE_REASON $ROLLGATE_VERSION" >> ${hookLog}\n`, { mode: 0o755 });
  writeFileSync(
    cfgPath,
    `listen: { host: 127.0.0.1, port: ${port}, workers: 2 }
admin: { host: 127.0.0.1, port: ${adminPort} }
store: { kind: file, path: ${join(dirname(cfgPath), 'state.json')} }
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: ${stable.url} }
    candidate: { version: v2, url: ${candidate.url}, weight: 50 }
    rollback: { latency: { minDelta: 10s } }
    hooks:
      afterRollback: [ { kind: exec, command: [${hookScript}], timeout: 10s } ]
`,
  );
  const run = runCli(['serve', '--config', cfgPath], { ROLLGATE_ADMIN_TOKEN: TOKEN });
  t.teardown(() => void run.child.kill('SIGKILL'));
  await waitForPort(adminPort, 20_000);
  const api = adminApi(adminPort, TOKEN);
  const started = logLines(run).find((l) => Array.isArray(l.pids));
  t.ok(started, 'the primary says where the data plane listens and which processes serve it');
  const pids = started!.pids as number[];
  t.equal(pids.length, 2, 'two workers');
  t.equal(started!.workers, 2);
  t.match(started!.msg, new RegExp(`data plane listening on 127\\.0\\.0\\.1:${port} \\(2 workers\\)`));

  // Both workers serve: each uses CPU for its share of 400 connections.
  const before = pids.map(cpuTicks);
  const first = await sendMany(port, 400);
  const used = pids.map((p, i) => cpuTicks(p) - (before[i] as number));
  t.same(first.filter((r) => r.status !== 200), [], 'every request answered');
  t.ok(used.every((ticks) => ticks > 0), `both workers served (CPU ticks ${used.join(', ')})`);
  const v2Share = first.filter((r) => r.body.includes('"v2"')).length / first.length;
  t.ok(v2Share > 0.35 && v2Share < 0.65, `weight 50 over both workers: ${(v2Share * 100).toFixed(1)}% to v2`);
  let metrics = await scrape(adminPort);
  const counted = metricValue(metrics, 'rollgate_requests_total{route="m",version="v1",outcome="ok"}') + metricValue(metrics, 'rollgate_requests_total{route="m",version="v2",outcome="ok"}');
  t.equal(counted, 400, "the fleet's /metrics counts every worker's requests, once");
  // The admin view's windows are both workers', merged.
  const windowCount = async (): Promise<number> => {
    const w = (await api('GET', '/api/routes/m')).body.windows;
    return (w.stable?.count ?? 0) + (w.candidate?.count ?? 0);
  };
  t.ok(await eventually(async () => (await windowCount()) === 400, 5_000), `the route's windows hold every worker's requests (${await windowCount()} of 400)`);

  // A weight set through the admin plane is the weight every worker routes by.
  t.equal((await api('PUT', '/api/routes/m/weight', { weight: 0 })).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  t.same((await sendMany(port, 60)).filter((r) => !r.body.includes('"v1"')), [], 'weight 0: every worker sends everything to v1');
  t.equal((await api('PUT', '/api/routes/m/weight', { weight: 100 })).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  t.same((await sendMany(port, 60)).filter((r) => !r.body.includes('"v2"')), [], 'weight 100: every worker sends everything to v2');

  // A trip in one worker stops candidate traffic in every worker.
  await sendMany(port, 30, { 'x-fail': '1' });
  t.ok(await eventually(async () => (await api('GET', '/api/routes/m')).body.phase === 'rolled_back', 5_000), 'the primary holds the rollback');
  const candidateSeen = candidate.seen.length;
  const after = await sendMany(port, 100, { 'x-fail': '1' });
  t.same(after.filter((r) => !r.body.includes('"v1"')), [], 'after the trip, every worker sends everything to v1');
  t.equal(candidate.seen.length, candidateSeen, 'the rolled-back candidate gets nothing more');
  metrics = await scrape(adminPort);
  t.equal(metricValue(metrics, 'rollgate_rollbacks_total{route="m",reason="consecutive_failures"}'), 1, 'the rollback is counted once, with its reason');
  t.equal(metricValue(metrics, 'rollgate_rollbacks_total{route="m",reason="peer"}'), 0, 'the other processes do not count it again');
  t.equal(metricValue(metrics, 'rollgate_candidate_weight{route="m"}'), 0);
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
  if (promtool.error !== undefined) t.fail('promtool is not on PATH: apt-get install prometheus (CI installs it)');
  else t.equal(promtool.status, 0, `promtool check metrics: ${promtool.stdout}${promtool.stderr}`);
  t.ok(await eventually(() => existsSync(hookLog) && readFileSync(hookLog, 'utf8').trim() !== '', 10_000), 'the afterRollback hook ran');
  await new Promise((r) => setTimeout(r, 500));
  t.same(readFileSync(hookLog, 'utf8').trim().split('\n'), ['afterRollback consecutive_failures v1'], 'once, in the primary, with the deciding worker\'s reason');

  // A worker killed with SIGKILL under load: 20 keep-alive connections keep sending.
  const requestsBefore = metricValue(await scrape(adminPort), 'rollgate_requests_total{route="m",version="v1",outcome="ok"}');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  let running = true;
  const tally = { ok: 0, failed: 0, candidate: 0 };
  const loop = async (): Promise<void> => {
    while (running) {
      await new Promise<void>((resolve) => {
        // Each request ends once: answered whole, or failed (an error, or no answer in 5 s).
        let settled = false;
        const settle = (ok: boolean, body = ''): void => {
          if (settled) return;
          settled = true;
          if (ok) tally.ok++;
          else tally.failed++;
          if (body.includes('"v2"')) tally.candidate++;
          resolve();
        };
        const req = http.get({ host: '127.0.0.1', port, path: '/m/x', agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => settle(res.statusCode === 200, body));
          res.on('error', () => settle(false));
          res.on('close', () => settle(false, body));
        });
        req.on('error', () => settle(false));
        req.on('close', () => setImmediate(() => settle(false)));
        req.setTimeout(5_000, () => req.destroy());
      });
    }
  };
  const loops = Array.from({ length: 20 }, () => loop());
  await eventually(() => tally.ok > 500, 10_000);
  const victim = pids[0] as number;
  process.kill(victim, 'SIGKILL');
  t.ok(await eventually(() => logLines(run).some((l) => typeof l.msg === 'string' && /worker \d+ listening with the current route state/.test(l.msg)), 15_000), 'the killed worker is replaced');
  const replacement = logLines(run).find((l) => typeof l.msg === 'string' && /worker \d+ listening/.test(l.msg))!.pid as number;
  t.not(replacement, victim);
  const okAtRestart = tally.ok;
  await eventually(() => tally.ok > okAtRestart + 500, 10_000);
  // Fresh connections reach the new worker too.
  const newBefore = cpuTicks(replacement);
  const fresh = await sendMany(port, 200);
  running = false;
  await Promise.all(loops);
  agent.destroy();
  t.comment(`SIGKILL under load: ${tally.failed} of ${tally.ok + tally.failed} requests failed (20 connections, at most one request in flight on each)`);
  t.ok(tally.failed <= 20, `only requests on the killed worker's connections failed (${tally.failed})`);
  t.same(fresh.filter((r) => r.status !== 200 || !r.body.includes('"v1"')), [], 'after the restart, every answer is from v1');
  t.ok(cpuTicks(replacement) - newBefore > 0, 'the new worker serves');
  t.equal(tally.candidate, 0, 'no request went to the rolled-back candidate');
  t.equal(candidate.seen.length, candidateSeen, 'the candidate saw nothing from the new worker');
  const requestsAfter = metricValue(await scrape(adminPort), 'rollgate_requests_total{route="m",version="v1",outcome="ok"}');
  t.ok(requestsAfter >= requestsBefore, `the fleet's counters do not go back when a worker is replaced (${requestsBefore} -> ${requestsAfter})`);

  // SIGTERM: the workers drain and every process ends.
  run.child.kill('SIGTERM');
  const exit = await run.exited;
  t.equal(exit.code, 0, 'exit 0 after SIGTERM');
  const alive = [...pids, replacement].filter((p) => existsSync(`/proc/${p}`) && !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z '));
  t.same(alive, [], 'no worker outlives the primary');
  const saved = JSON.parse(readFileSync(join(dirname(cfgPath), 'state.json'), 'utf8')) as { routes: Record<string, { phase: string }> };
  t.equal(saved.routes.m?.phase, 'rolled_back', 'the primary saved the state the workers decided');
});

t.test('the workers count: a bad value is refused naming listen.workers, a port in use is refused once', async (t) => {
  const bad = runCli(['serve', '--config', writeConfig(`listen: { port: 0, workers: many }\nroutes: [ { name: m, match: { pathPrefix: /m }, stable: { version: v1, url: http://127.0.0.1:1 } } ]\n`)]);
  const badExit = await bad.exited;
  t.equal(badExit.code, 2);
  t.match(bad.stderr(), /listen\.workers: must be an integer between 1 and 64, or auto \(one per core\)/);

  const holder = http.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const taken = (holder.address() as { port: number }).port;
  const run = runCli(['serve', '--config', writeConfig(`listen: { host: 127.0.0.1, port: ${taken}, workers: 2 }\nadmin: { host: 127.0.0.1, port: ${await freePort()} }\nroutes: [ { name: m, match: { pathPrefix: /m }, stable: { version: v1, url: http://127.0.0.1:1 } } ]\n`)], { ROLLGATE_ADMIN_TOKEN: TOKEN });
  t.teardown(() => void run.child.kill('SIGKILL'));
  const exit = await run.exited;
  t.equal(exit.code, 1, 'exit 1: the data plane cannot listen');
  t.match(run.stderr(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}: EADDRINUSE`));
});
