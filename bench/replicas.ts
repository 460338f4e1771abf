import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { Procs, freePorts, hasCommand, round3 } from './lib.js';

/**
 * Three `rollgate serve` processes sharing state through one Redis (a private redis-server).
 * Each trial deploys a new candidate through replica A, sets a weight through A, then makes the
 * candidate fail on A's traffic only, so that A's judge trips. The figures are how long the
 * other two take to show each change, measured on the bench's clock from the server-sent events
 * of all three admin planes (the delivery delay of the stream is in every one of them alike).
 */

const TOKEN = 'replicas-bench';
const here = path.dirname(fileURLToPath(import.meta.url));
const ROLLGATE_MAIN = path.resolve(here, '../src/cli/main.js');
const procs = new Procs();
const node = process.execPath;
const now = () => performance.timeOrigin + performance.now();
const emit = (line: object) => console.log(JSON.stringify(line));

interface Seen {
  at: number;
  type: string;
  cause: string;
  weight: number;
  candidate: string | null;
  phase: string;
}

/** Follows one admin plane's event stream, keeping every event with the time it arrived. */
async function follow(adminPort: number, into: Seen[]): Promise<() => void> {
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${adminPort}/api/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: controller.signal });
  if (!res.ok || res.body === null) throw new Error(`events on ${adminPort}: HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    let buf = '';
    for (;;) {
      const chunk = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (chunk.done) return;
      const at = now();
      buf += chunk.value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data === undefined) continue;
        const { event, state } = JSON.parse(data.slice(6)) as { event: { type: string; cause: string }; state: { weight: number; phase: string; candidate: { version: string } | null } };
        into.push({ at, type: event.type, cause: event.cause, weight: state.weight, candidate: state.candidate?.version ?? null, phase: state.phase });
      }
    }
  })();
  return () => controller.abort();
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};
const dist = (xs: number[]) => ({ n: xs.length, p50_ms: round3(quantile(xs, 0.5)), p90_ms: round3(quantile(xs, 0.9)), p99_ms: round3(quantile(xs, 0.99)), max_ms: round3(Math.max(...xs)) });

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { trials: { type: 'string', default: '100' } } });
  const trials = Number(values.trials);
  if (!hasCommand('redis-server', ['--version'])) throw new Error('redis-server not found: apt-get install redis-server');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'rollgate-bench-'));
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const [redisPort, stablePort, candidatePort, ...rest] = await freePorts(9);
  const gwPorts = rest.slice(0, 3);
  const adminPorts = rest.slice(3, 6);
  procs.start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await procs.waitForPort('redis', redisPort as number);
  procs.start('stable', node, [path.join(here, 'upstream.js'), '--port', String(stablePort)]);
  procs.start('candidate', node, [path.join(here, 'upstream.js'), '--port', String(candidatePort), '--fail-header', 'x-fail']);
  await procs.waitForPort('stable', stablePort as number);
  await procs.waitForPort('candidate', candidatePort as number);
  process.env.ROLLGATE_ADMIN_TOKEN = TOKEN;
  for (let i = 0; i < 3; i++) {
    const config = path.join(tmp, `replica-${i}.yaml`);
    writeFileSync(
      config,
      `listen: { host: 127.0.0.1, port: ${gwPorts[i]} }
admin: { host: 127.0.0.1, port: ${adminPorts[i]} }
log: { level: warn }
store: { kind: redis, url: redis://127.0.0.1:${redisPort}, prefix: bench }
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: http://127.0.0.1:${stablePort} }
`,
    );
    procs.start(`replica ${'ABC'[i]}`, node, [ROLLGATE_MAIN, 'serve', '--config', config]);
    await procs.waitForPort(`replica ${'ABC'[i]}`, gwPorts[i] as number);
    await procs.waitForPort(`replica ${'ABC'[i]} admin`, adminPorts[i] as number);
  }
  const seen: Seen[][] = [[], [], []];
  const stops = await Promise.all(adminPorts.map((p, i) => follow(p, seen[i] as Seen[])));
  const admin = (i: number, method: string, p: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${adminPorts[i]}${p}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const gwA = new Pool(`http://127.0.0.1:${gwPorts[0]}`, { connections: 4 });
  const weightMs: number[] = [];
  const deployMs: number[] = [];
  const tripMs: number[] = [];
  let tripRequests = 0;
  try {
    for (let n = 0; n < trials; n++) {
      procs.assertAlive();
      const version = `c${n}`;
      const mark = seen.map((s) => s.length);
      const after = (i: number) => (seen[i] as Seen[]).slice(mark[i]);
      // Deploy through A; B and C take it from Redis.
      let t0 = now();
      let r = await admin(0, 'PUT', '/api/routes/m/candidate', { version, url: `http://127.0.0.1:${candidatePort}`, weight: 10 });
      if (!r.ok) throw new Error(`deploy: HTTP ${r.status} ${await r.text()}`);
      await until(() => [1, 2].every((i) => after(i).some((e) => e.candidate === version && e.cause === 'peer')), 5_000, `the deploy of ${version} on B and C`);
      deployMs.push(Math.max(...[1, 2].map((i) => after(i).find((e) => e.candidate === version && e.cause === 'peer')!.at)) - t0);
      // A weight through A.
      t0 = now();
      r = await admin(0, 'PUT', '/api/routes/m/weight', { weight: 50 });
      if (!r.ok) throw new Error(`weight: HTTP ${r.status}`);
      await until(() => [1, 2].every((i) => after(i).some((e) => e.weight === 50 && e.cause === 'peer')), 5_000, 'the weight on B and C');
      weightMs.push(Math.max(...[1, 2].map((i) => after(i).find((e) => e.weight === 50 && e.cause === 'peer')!.at)) - t0);
      // The candidate fails A's traffic only: A's judge trips; B and C follow.
      while (!after(0).some((e) => e.type === 'rollback')) {
        const res = await gwA.request({ path: '/m/predict', method: 'POST', body: '{}', headers: { 'x-fail': '1' } });
        await res.body.dump();
        tripRequests++;
        if (tripRequests > (n + 1) * 500) throw new Error('A did not trip');
      }
      await until(() => [1, 2].every((i) => after(i).some((e) => e.type === 'rollback' && e.cause === 'peer')), 5_000, 'the rollback on B and C');
      const tA = after(0).find((e) => e.type === 'rollback')!.at;
      tripMs.push(Math.max(...[1, 2].map((i) => after(i).find((e) => e.type === 'rollback' && e.cause === 'peer')!.at)) - tA);
    }
    const trip = dist(tripMs);
    const weight = dist(weightMs);
    emit({ bench: 'replicas', replicas: 3, trials, weight_set_on_A_to_seen_on_all: weight, deploy_on_A_to_seen_on_all: dist(deployMs), trip_on_A_to_zero_on_others: trip, requests_to_trip: round3(tripRequests / trials) });
    emit({ bench: 'replicas', targets: { weight_max_ms: 50, trip_p99_ms: 20 }, weight_within_target: weight.max_ms <= 50, trip_within_target: trip.p99_ms <= 20 });
  } finally {
    for (const s of stops) s();
    await gwA.close();
    procs.killAll();
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  procs.killAll();
  process.exit(1);
});
