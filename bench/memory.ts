import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import type { MemorySample } from './memory-probe.js';
import { cpuMicros, freePorts, hasCommand, median, oneRouteConfig, parseSeconds, parseWrk, pinnedTo, pinning, Procs, round3, rssMiB, smallPostScript } from './lib.js';

/**
 * `npm run bench:memory`: what `rollgate serve` holds, with one route and a candidate, idle and
 * under load, beside bare Node in the same run, for each variant given (`--variants`):
 *
 *   node dist/bench/memory.js [--variants "default;memory=fast;--max-semi-space-size=1"] [--duration 8s] [--rounds 3] [--idle 45s]
 *
 * A variant is `default` (rollgate serve as shipped: `listen.memory: lean`), or words that are
 * either `memory=lean|fast` (the config's `listen.memory`) or flags given to node.
 *
 * Per variant: RSS once the admin plane answers, then each second while it idles for `--idle`
 * (V8's memory reducer gives memory back some seconds after the start's last full collection:
 * `rss_mib_idle` is what it holds at the end, `rss_mib_idle_by_s` the way there); then `--rounds`
 * rounds of wrk at 50 connections against the instant stand-in model (rounds interleaved over
 * the variants), with requests/s, p99, CPU microseconds per request and the peak RSS (VmHWM);
 * then RSS idle again for `--idle`. Each gateway runs with memory-probe.ts preloaded, which
 * tells its V8 heap (idle, after the load, at its largest) and, per request of each round, the
 * bytes allocated on the heap, the scavenges and the GC pause. The default variant's line says
 * whether it meets the issue's targets (idle_le_75_mib, peak_le_100_mib). One JSON line per
 * variant and a summary line.
 */
const { values } = parseArgs({
  options: {
    variants: { type: 'string', default: 'default;memory=fast' },
    idle: { type: 'string', default: '45s' },
    duration: { type: 'string', default: '8s' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
  },
});
const variants = values.variants.split(';').map((v) => v.trim()).filter((v) => v !== '');
const seconds = parseSeconds(values.duration);
const idleSeconds = parseSeconds(values.idle);
/** When the idle RSS is read (seconds after the admin plane answers, or after the load). */
const IDLE_MARKS = [3, 10, 20, 30, 45, 60, 90].filter((s) => s < idleSeconds).concat(idleSeconds);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const UPSTREAM = join(ROOT, 'dist/bench/upstream.js');
const PROBE = new URL('./memory-probe.js', import.meta.url).href;
/** The targets for the default variant (issue 16). */
const TARGET_IDLE_MIB = 75;
const TARGET_PEAK_MIB = 100;
const procs = new Procs();
const pin = pinning();
const pinned = pinnedTo(pin);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function hwmMiB(pid: number | undefined): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Asks a gateway's probe (memory-probe.ts) for a sample over its IPC channel. */
function probe(child: ChildProcess): Promise<MemorySample> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: MemorySample): void => {
      if (m?.op !== 'memory-sample') return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m);
    };
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error('a gateway did not answer a memory sample within 10 s'));
    }, 10_000);
    child.on('message', onMessage);
    child.send({ op: 'memory-sample' });
  });
}

const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

async function ready(url: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    procs.assertAlive();
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error(`${url} never answered`);
}

interface Round {
  rps: number;
  p99: number;
  cpuUs: number;
  /** V8 heap bytes allocated per request, scavenges per 1000 requests, GC pause per request. */
  allocBytes: number;
  scavengesPer1k: number;
  gcUs: number;
}

/** Idles for --idle, reading each gateway's RSS at each of IDLE_MARKS into its record. */
async function idle(into: [number | undefined, Record<number, number | null>][]): Promise<void> {
  const t0 = Date.now();
  for (const mark of IDLE_MARKS) {
    await sleep(Math.max(0, t0 + mark * 1000 - Date.now()));
    for (const [pid, record] of into) record[mark] = rssMiB(pid);
  }
}

async function main(): Promise<void> {
  if (!hasCommand('wrk', ['--version'])) throw new Error('wrk not found: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-bench-memory-'));
  const lua = smallPostScript(dir);
  const [upPort, ...ports] = await freePorts(1 + 2 * variants.length);
  procs.start('upstream', ...pinned(0, process.execPath, [UPSTREAM, '--port', String(upPort)]));
  await procs.waitForPort('upstream', upPort!);
  const bare = procs.start('bare node', process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  const gateways = variants.map((variant, i) => {
    const [port, admin] = [ports[2 * i]!, ports[2 * i + 1]!];
    const cfg = join(dir, `v${i}.yaml`);
    const words = variant === 'default' ? [] : variant.split(/\s+/);
    const profile = words.find((w) => w.startsWith('memory='))?.slice('memory='.length);
    const flags = words.filter((w) => !w.startsWith('memory='));
    const yaml = oneRouteConfig(port, admin, upPort!);
    writeFileSync(cfg, profile === undefined ? yaml : yaml.replace(`port: ${port} }`, `port: ${port}, memory: ${profile} }`));
    const child = procs.start(`rollgate ${variant}`, ...pinned(0, process.execPath, [...flags, '--import', PROBE, CLI, 'serve', '--config', cfg]), {
      ipc: true,
      env: { ...process.env, ROLLGATE_ADMIN_TOKEN: 'bench' },
    });
    const rss = { started: null as number | null, idle: {} as Record<number, number | null>, afterLoad: {} as Record<number, number | null> };
    return { variant, port, admin, child, rounds: [] as Round[], rss, idleHeap: null as MemorySample | null, afterHeap: null as MemorySample | null };
  });
  for (const g of gateways) {
    await ready(`http://127.0.0.1:${g.admin}/healthz`);
    g.rss.started = rssMiB(g.child.pid);
  }
  await idle(gateways.map((g) => [g.child.pid, g.rss.idle]));
  for (const g of gateways) g.idleHeap = await probe(g.child);
  const url = (g: (typeof gateways)[number]): string => `http://127.0.0.1:${g.port}/v1/models/sentiment:predict`;
  for (const g of gateways) await procs.run(...pinned(1, 'wrk', ['-t1', `-c${connections}`, '-d5s', '-s', lua, url(g)]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? gateways : [...gateways].reverse();
    for (const g of order) {
      const before = cpuMicros(g.child.pid) ?? 0;
      const heapBefore = await probe(g.child);
      const out = await procs.run(...pinned(1, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', lua, url(g)]));
      const heapAfter = await probe(g.child);
      const w = parseWrk(out.stdout);
      const n = Math.max(1, w.requests);
      g.rounds.push({
        rps: w.rps,
        p99: w.p99_ms,
        cpuUs: ((cpuMicros(g.child.pid) ?? 0) - before) / n,
        allocBytes: (heapAfter.allocatedBytes - heapBefore.allocatedBytes) / n,
        scavengesPer1k: ((heapAfter.scavenges - heapBefore.scavenges) * 1000) / n,
        gcUs: ((heapAfter.scavengeMs + heapAfter.fullGcMs - heapBefore.scavengeMs - heapBefore.fullGcMs) * 1000) / n,
      });
    }
  }
  await idle(gateways.map((g) => [g.child.pid, g.rss.afterLoad]));
  for (const g of gateways) g.afterHeap = await probe(g.child);
  // Paired within each round against the first variant, then the median: drift cancels out.
  const base = gateways[0]!;
  const paired = (g: (typeof gateways)[number], f: (x: Round) => number): number => round3(median(g.rounds.map((x, r) => f(x) / f(base.rounds[r]!))));
  const med = (g: (typeof gateways)[number], f: (x: Round) => number): number => round3(median(g.rounds.map(f)));
  const lines = gateways.map((g) => {
    const peak = hwmMiB(g.child.pid);
    const idleHeap = g.idleHeap!;
    const idleRss = g.rss.idle[idleSeconds] ?? null;
    return {
    variant: g.variant,
    rss_mib_started: g.rss.started,
    rss_mib_idle: idleRss,
    rss_mib_idle_by_s: g.rss.idle,
    rss_mib_peak: peak,
    rss_mib_idle_after_load: g.rss.afterLoad[idleSeconds] ?? null,
    rss_mib_idle_after_load_by_s: g.rss.afterLoad,
    ...(g.variant === 'default' ? { idle_le_75_mib: (idleRss ?? Infinity) <= TARGET_IDLE_MIB, peak_le_100_mib: (peak ?? Infinity) <= TARGET_PEAK_MIB } : {}),
    heap_mib_idle: { total: mib(idleHeap.heapTotalBytes), used: mib(idleHeap.heapUsedBytes), new_space: mib(idleHeap.newSpaceBytes) },
    heap_mib_after_load: { total: mib(g.afterHeap!.heapTotalBytes), used: mib(g.afterHeap!.heapUsedBytes), new_space: mib(g.afterHeap!.newSpaceBytes) },
    heap_mib_peak: mib(g.afterHeap!.peakHeapTotalBytes),
    alloc_bytes_per_req: Math.round(median(g.rounds.map((x) => x.allocBytes))),
    scavenges_per_1k_req: med(g, (x) => x.scavengesPer1k),
    gc_pause_us_per_req: med(g, (x) => x.gcUs),
    rps: round3(median(g.rounds.map((x) => x.rps))),
    p99_ms: round3(median(g.rounds.map((x) => x.p99))),
    cpu_us_per_req: round3(median(g.rounds.map((x) => x.cpuUs))),
    rps_vs_first: paired(g, (x) => x.rps),
    cpu_per_req_vs_first: paired(g, (x) => x.cpuUs),
    p99_vs_first: paired(g, (x) => x.p99),
    };
  });
  for (const l of lines) console.log(JSON.stringify(l));
  console.log(JSON.stringify({ summary: true, bare_node_rss_mib: rssMiB(bare.pid), connections, rounds, seconds, idle_seconds: idleSeconds, pinning: pin }));
}

main().then(
  () => procs.killAll(),
  (err: unknown) => {
    procs.killAll();
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
