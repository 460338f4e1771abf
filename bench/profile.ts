import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts, hasCommand, oneRouteConfig, parseSeconds, parseWrk, pinnedTo, pinning, Procs, round3, smallPostScript } from './lib.js';

/**
 * `npm run bench:profile`: where one proxied request's CPU goes. `rollgate serve` (one route,
 * 90/10 over the instant stand-in model, the judge on) runs under `node --cpu-prof` while wrk
 * drives it at 50 connections; only the samples taken during the measured load count. Each
 * sample is put in one bucket by the code it was taken in (rollgate's own modules, undici, the
 * other packages, node's JS, GC, native and idle), and each bucket is given in CPU microseconds
 * per request. rollgate's own share is the part the project fully controls.
 *
 *   node dist/bench/profile.js [--duration 10s] [--warmup 10s] [--connections 50] [--top 15]
 */
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10s' },
    warmup: { type: 'string', default: '10s' },
    connections: { type: 'string', default: '50' },
    top: { type: 'string', default: '15' },
  },
});
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const procs = new Procs();
const pin = pinning();
const pinned = pinnedTo(pin);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The bucket a sample's frame belongs to. */
function bucket(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (url.includes('/dist/src/')) return 'rollgate';
  if (url.includes('/node_modules/undici/')) return 'undici';
  if (url.includes('/node_modules/')) return 'other packages';
  if (url.startsWith('node:')) return 'node (JS)';
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(idle)') return 'idle';
  return 'native and runtime';
}

async function main(): Promise<void> {
  if (!hasCommand('wrk', ['--version'])) throw new Error('wrk not found: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-bench-profile-'));
  const lua = smallPostScript(dir);
  const [upPort, port, admin] = await freePorts(3);
  procs.start('upstream', ...pinned(0, process.execPath, [join(ROOT, 'dist/bench/upstream.js'), '--port', String(upPort)]));
  await procs.waitForPort('upstream', upPort!);
  const cfg = join(dir, 'rollgate.yaml');
  writeFileSync(cfg, oneRouteConfig(port!, admin!, upPort!));
  const profDir = join(dir, 'prof');
  const rg = procs.start('rollgate', ...pinned(0, process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, join(ROOT, 'dist/src/cli/main.js'), 'serve', '--config', cfg]), { env: { ...process.env, ROLLGATE_ADMIN_TOKEN: 'bench' } });
  await procs.waitForPort('rollgate', port!);
  const url = `http://127.0.0.1:${port}/v1/models/sentiment:predict`;
  const c = `-c${values.connections}`;
  await procs.run(...pinned(1, 'wrk', ['-t1', c, `-d${parseSeconds(values.warmup)}s`, '-s', lua, url]));
  // The profile's clock is the monotonic one every process on the machine reads.
  const from = Number(process.hrtime.bigint() / 1000n);
  const out = await procs.run(...pinned(1, 'wrk', ['-t1', c, `-d${parseSeconds(values.duration)}s`, '--latency', '-s', lua, url]));
  const to = Number(process.hrtime.bigint() / 1000n);
  const w = parseWrk(out.stdout);
  await procs.stop(rg, 10_000);
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error('rollgate wrote no CPU profile');
  const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const buckets = new Map<string, number>();
  const own = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < from || t > to) continue;
    const frame = byId.get(profile.samples[i]!)!.callFrame;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const b = bucket(frame);
    buckets.set(b, (buckets.get(b) ?? 0) + dt);
    if (b === 'rollgate') {
      const name = `${frame.functionName || '(anonymous)'} ${frame.url.slice(frame.url.indexOf('/dist/src/') + 10)}:${frame.lineNumber + 1}`;
      own.set(name, (own.get(name) ?? 0) + dt);
    }
  }
  const perReq = (us: number): number => round3(us / Math.max(1, w.requests));
  const busy = [...buckets].filter(([k]) => k !== 'idle').reduce((a, [, v]) => a + v, 0);
  console.log(JSON.stringify({ bench: 'profile', requests: w.requests, rps: w.rps, p99_ms: w.p99_ms, busy_cpu_us_per_req: perReq(busy), buckets_us_per_req: Object.fromEntries([...buckets].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, perReq(v)])) }));
  const top = [...own].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
  console.log(JSON.stringify({ bench: 'profile', rollgate_self_us_per_req: Object.fromEntries(top.map(([k, v]) => [k, perReq(v)])) }));
  console.log(JSON.stringify({ bench: 'profile', summary: true, rollgate_own_us_per_req: perReq(buckets.get('rollgate') ?? 0), target_us: 10, profile: join(profDir, file), pinning: pin }));
}

main().then(
  () => procs.killAll(),
  (err: unknown) => {
    procs.killAll();
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
