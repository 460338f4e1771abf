import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuMicros, freePorts, hasCommand, median, oneRouteConfig, parseSeconds, parseWrk, pinnedTo, pinning, Procs, round3, rssMiB, smallPostScript } from './lib.js';

/**
 * `npm run bench:memory`: what `rollgate serve` holds, with one route and a candidate, idle and
 * under load, beside bare Node in the same run, for each set of V8 flags given (`--variants`):
 *
 *   node dist/bench/memory.js [--variants "default;--max-semi-space-size=1"] [--duration 8s] [--rounds 3]
 *
 * Per variant: RSS once the admin plane answers and after 3 s idle; then `--rounds` rounds of
 * wrk at 50 connections against the instant stand-in model (rounds interleaved over the
 * variants), with requests/s, p99, CPU microseconds per request and the peak RSS (VmHWM); then
 * RSS idle again. One JSON line per variant and a summary line.
 */
const { values } = parseArgs({
  options: {
    variants: { type: 'string', default: 'default;--max-semi-space-size=1;--max-semi-space-size=4' },
    duration: { type: 'string', default: '8s' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
  },
});
const variants = values.variants.split(';').map((v) => v.trim()).filter((v) => v !== '');
const seconds = parseSeconds(values.duration);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const UPSTREAM = join(ROOT, 'dist/bench/upstream.js');
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
    writeFileSync(cfg, oneRouteConfig(port, admin, upPort!));
    const flags = variant === 'default' ? [] : variant.split(/\s+/);
    const child = procs.start(`rollgate ${variant}`, ...pinned(0, process.execPath, [...flags, CLI, 'serve', '--config', cfg]), { env: { ...process.env, ROLLGATE_ADMIN_TOKEN: 'bench' } });
    const rss: { started: number | null; idle: number | null } = { started: null, idle: null };
    return { variant, port, admin, child, rounds: [] as { rps: number; p99: number; cpuUs: number }[], rss };
  });
  for (const g of gateways) {
    await ready(`http://127.0.0.1:${g.admin}/healthz`);
    g.rss.started = rssMiB(g.child.pid);
  }
  await sleep(3_000);
  for (const g of gateways) g.rss.idle = rssMiB(g.child.pid);
  const url = (g: (typeof gateways)[number]): string => `http://127.0.0.1:${g.port}/v1/models/sentiment:predict`;
  for (const g of gateways) await procs.run(...pinned(1, 'wrk', ['-t1', `-c${connections}`, '-d5s', '-s', lua, url(g)]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? gateways : [...gateways].reverse();
    for (const g of order) {
      const before = cpuMicros(g.child.pid) ?? 0;
      const out = await procs.run(...pinned(1, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', lua, url(g)]));
      const w = parseWrk(out.stdout);
      g.rounds.push({ rps: w.rps, p99: w.p99_ms, cpuUs: ((cpuMicros(g.child.pid) ?? 0) - before) / Math.max(1, w.requests) });
    }
  }
  await sleep(3_000);
  // Paired within each round against the first variant, then the median: drift cancels out.
  const base = gateways[0]!;
  const paired = (g: (typeof gateways)[number], f: (x: { rps: number; p99: number; cpuUs: number }) => number): number =>
    round3(median(g.rounds.map((x, r) => f(x) / f(base.rounds[r]!))));
  const lines = gateways.map((g) => ({
    variant: g.variant,
    rss_mib_started: g.rss.started,
    rss_mib_idle: g.rss.idle,
    rss_mib_peak: hwmMiB(g.child.pid),
    rss_mib_idle_after_load: rssMiB(g.child.pid),
    rps: round3(median(g.rounds.map((x) => x.rps))),
    p99_ms: round3(median(g.rounds.map((x) => x.p99))),
    cpu_us_per_req: round3(median(g.rounds.map((x) => x.cpuUs))),
    rps_vs_first: paired(g, (x) => x.rps),
    cpu_per_req_vs_first: paired(g, (x) => x.cpuUs),
    p99_vs_first: paired(g, (x) => x.p99),
  }));
  for (const l of lines) console.log(JSON.stringify(l));
  console.log(JSON.stringify({ summary: true, bare_node_rss_mib: rssMiB(bare.pid), connections, rounds, seconds, pinning: pin }));
}

main().then(
  () => procs.killAll(),
  (err: unknown) => {
    procs.killAll();
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
