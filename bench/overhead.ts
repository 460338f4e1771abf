import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  Procs,
  cpuMicros,
  hasCommand,
  median,
  parseSeconds,
  parseWrk,
  pinning,
  round3,
  rssMiB,
  type WrkResult,
} from './lib.js';
import { runGrpc, type GrpcOptions } from './overhead-grpc.js';
import { REGIMES, REQUEST_BODY, REQUEST_PATH, TARGETS, startServers, type Harness, type Regime, type Server, type Target } from './overhead-targets.js';

/**
 * Proxy overhead: direct to an upstream vs a bare Fastify proxy vs rollgate (90/10 split), and
 * rollgate as a Fastify plugin in a bare host app, interleaved in rounds within one run, so that
 * only ratios between targets are compared; then the gRPC row (bench/overhead-grpc.ts): unary
 * calls direct to a grpc-js server vs through rollgate over h2c.
 */

const USAGE = `usage: overhead.js [--duration 5s] [--warmup 10s] [--rounds 3]
  [--only throughput|latency2ms|grpc] [--targets direct,undici,fastify,rollgate,plugin,rollgate-json,rollgate-sse,rollgate-llm]
  [--grpc-duration 3s] [--grpc-warmup 5s] [--grpc-in-flight 50,10] [--quick]`;

interface Options {
  durationS: number;
  warmupS: number;
  rounds: number;
  regimes: Regime[];
  targets: Target[];
  /** The gRPC row's settings; null when `--only` names an HTTP regime. */
  grpc: GrpcOptions | null;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5s' },
      warmup: { type: 'string', default: '10s' },
      rounds: { type: 'string', default: '3' },
      only: { type: 'string' },
      targets: { type: 'string', default: TARGETS.join(',') },
      'grpc-duration': { type: 'string', default: '3s' },
      'grpc-warmup': { type: 'string', default: '5s' },
      'grpc-in-flight': { type: 'string', default: '50,10' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const grpc = values.only === undefined || values.only === 'grpc';
  const regimes = values.only === 'grpc' ? [] : values.only ? [values.only] : Object.keys(REGIMES);
  const targets = values.targets.split(',').map((t) => t.trim());
  const rounds = Number(values.rounds);
  const inFlight = values['grpc-in-flight'].split(',').map(Number);
  if (
    !regimes.every((r): r is Regime => r in REGIMES) ||
    !inFlight.every((n) => Number.isInteger(n) && n >= 1 && n <= 100) ||
    !targets.every((t): t is Target => (TARGETS as readonly string[]).includes(t)) ||
    targets.length === 0 ||
    !Number.isInteger(rounds) ||
    rounds < 1
  ) {
    throw new UsageError(USAGE);
  }
  return {
    durationS: values.quick ? 2 : parseSeconds(values.duration),
    warmupS: values.quick ? 3 : parseSeconds(values.warmup),
    rounds: values.quick ? 1 : rounds,
    regimes: regimes,
    targets: TARGETS.filter((t) => targets.includes(t)),
    grpc: grpc
      ? {
          inFlight,
          durationS: values.quick ? 2 : parseSeconds(values['grpc-duration']),
          warmupS: values.quick ? 3 : parseSeconds(values['grpc-warmup']),
          rounds: values.quick ? 1 : rounds,
        }
      : null,
  };
}

class UsageError extends Error {}

const pin = pinning();
const procs = new Procs();

/** Prefixes a command with taskset when pinning is on. */
function pinned(cpu: 0 | 1, cmd: string, args: string[]): [string, string[]] {
  return pin.enabled ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

const harness: Harness = { procs, pinned };

async function wrk(target: Target, server: Server, connections: number, seconds: number, lua: string): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', lua, server.url + (server.path ?? REQUEST_PATH)];
  const r = await procs.run(...pinned(1, 'wrk', args));
  procs.assertAlive();
  if (r.code !== 0) throw new Error(`wrk failed against ${target} (exit ${r.code}): ${r.stderr || r.stdout}`);
  const res = parseWrk(r.stdout);
  // A proxy that answers errors fast would look fast; above a trace the numbers mean nothing.
  if (res.requests === 0 || res.non2xx + res.socket_errors > res.requests * 0.001) {
    throw new Error(
      `${target}: ${res.non2xx} non-2xx answers and ${res.socket_errors} socket errors in ${res.requests} requests`,
    );
  }
  return res;
}

interface RoundResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  cpu_us_per_req: number | null;
}

async function measure(target: Target, server: Server, connections: number, seconds: number, lua: string): Promise<RoundResult> {
  const cpu0 = cpuMicros(server.child.pid);
  const r = await wrk(target, server, connections, seconds, lua);
  const cpu1 = cpuMicros(server.child.pid);
  return {
    rps: Math.round(r.rps),
    p50_ms: round3(r.p50_ms),
    p99_ms: round3(r.p99_ms),
    errors: r.non2xx + r.socket_errors,
    cpu_us_per_req: cpu0 !== null && cpu1 !== null ? Math.round((cpu1 - cpu0) / r.requests) : null,
  };
}

type Results = Map<Target, RoundResult[]>;

async function runRegime(regime: Regime, opts: Options, tmp: string, lua: string): Promise<Results> {
  const { connections } = REGIMES[regime];
  const children: ChildProcess[] = [];
  try {
    const servers = await startServers(harness, regime, opts.targets, tmp, children);
    // Direct warms too: the upstream is a Node process whose JIT state would otherwise favour
    // whichever target happened to run first.
    for (const t of opts.targets) await wrk(t, servers.get(t)!, connections, opts.warmupS, lua);
    const results: Results = new Map(opts.targets.map((t) => [t, []]));
    for (let round = 0; round < opts.rounds; round++) {
      // Rotate the order so no target always runs right after another's load.
      const order = opts.targets.map((_, i) => opts.targets[(i + round) % opts.targets.length]!);
      for (const t of order) results.get(t)!.push(await measure(t, servers.get(t)!, connections, opts.durationS, lua));
    }
    for (const t of opts.targets) {
      const rounds = results.get(t)!;
      const med = (k: 'rps' | 'p50_ms' | 'p99_ms') => round3(median(rounds.map((r) => r[k])));
      const cpus = rounds.map((r) => r.cpu_us_per_req).filter((c): c is number => c !== null);
      emit({
        bench: 'overhead',
        regime,
        target: t,
        connections,
        rps: Math.round(med('rps')),
        p50_ms: med('p50_ms'),
        p99_ms: med('p99_ms'),
        cpu_us_per_req: cpus.length ? median(cpus) : null,
        rss_mib: rssMiB(servers.get(t)!.child.pid),
        ...(t === 'rollgate' || t === 'plugin' ? { candidate_share: servers.get(t)!.candidateShare ?? null } : {}),
        rounds,
      });
    }
    emit({ bench: 'overhead', regime, connections, ...compare(results) });
    return results;
  } finally {
    for (const child of children) await procs.stop(child);
  }
}

/** Ratios and differences paired within each round (same conditions), then the median over rounds. */
function paired(results: Results, a: Target, b: Target, f: (x: RoundResult, y: RoundResult) => number): number | null {
  const xs = results.get(a);
  const ys = results.get(b);
  if (!xs || !ys) return null;
  return round3(median(xs.map((x, i) => f(x, ys[i]!))));
}

function compare(results: Results) {
  const ratio = (a: Target, b: Target) => paired(results, a, b, (x, y) => x.rps / y.rps);
  const added = (t: Target) => ({
    p50: paired(results, t, 'direct', (x, y) => x.p50_ms - y.p50_ms),
    p99: paired(results, t, 'direct', (x, y) => x.p99_ms - y.p99_ms),
  });
  return {
    ratios: {
      rollgate_vs_fastify_rps: ratio('rollgate', 'fastify'),
      rollgate_vs_direct_rps: ratio('rollgate', 'direct'),
      rollgate_vs_undici_rps: ratio('rollgate', 'undici'),
      undici_vs_direct_rps: ratio('undici', 'direct'),
      fastify_vs_direct_rps: ratio('fastify', 'direct'),
      plugin_vs_rollgate_rps: ratio('plugin', 'rollgate'),
      plugin_vs_fastify_rps: ratio('plugin', 'fastify'),
      plugin_vs_rollgate_cpu_per_req: cpuRatio(results, 'plugin', 'rollgate'),
    },
    // What the checks of SPEC §9 cost: CPU microseconds per request added, and as a share.
    checks: {
      json_added_cpu_us_per_req: cpuAdded(results, 'rollgate-json', 'rollgate'),
      json_cpu_ratio: cpuRatio(results, 'rollgate-json', 'rollgate'),
      llm_stream_added_cpu_us_per_req: cpuAdded(results, 'rollgate-llm', 'rollgate-sse'),
      llm_stream_cpu_ratio: cpuRatio(results, 'rollgate-llm', 'rollgate-sse'),
    },
    added_ms_over_direct: { undici: added('undici'), fastify: added('fastify'), rollgate: added('rollgate'), plugin: added('plugin') },
  };
}

/** CPU per request of `a` over `b`, paired within rounds; null when /proc gave no figures. */
function cpuRatio(results: Results, a: Target, b: Target): number | null {
  const xs = results.get(a);
  const ys = results.get(b);
  if (!xs || !ys || xs.some((x, i) => x.cpu_us_per_req === null || ys[i]!.cpu_us_per_req === null)) return null;
  return round3(median(xs.map((x, i) => x.cpu_us_per_req! / ys[i]!.cpu_us_per_req!)));
}

/** CPU per request of `a` less that of `b`, paired within rounds. */
function cpuAdded(results: Results, a: Target, b: Target): number | null {
  const xs = results.get(a);
  const ys = results.get(b);
  if (!xs || !ys || xs.some((x, i) => x.cpu_us_per_req === null || ys[i]!.cpu_us_per_req === null)) return null;
  return round3(median(xs.map((x, i) => x.cpu_us_per_req! - ys[i]!.cpu_us_per_req!)));
}

function emit(line: object): void {
  console.log(JSON.stringify(line));
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.regimes.length > 0 && !hasCommand('wrk', ['--version'])) throw new Error('wrk not found: apt-get install wrk');
  // Other work on the two CPUs skews every figure; say so rather than print quiet-looking numbers.
  const loadStart = round3(os.loadavg()[0]!);
  if (loadStart > 1) console.error(`warning: load average ${loadStart} before the run; figures will be noisy`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'rollgate-bench-'));
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const lua = path.join(tmp, 'post.lua');
  writeFileSync(
    lua,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[${REQUEST_BODY}]]\n`,
  );

  const all = new Map<Regime, Results>();
  for (const regime of opts.regimes) all.set(regime, await runRegime(regime, opts, tmp, lua));
  if (opts.grpc) await runGrpc(harness, opts.grpc, tmp, emit);

  const tp = all.get('throughput');
  const lat = all.get('latency2ms');
  const tpRatio = tp ? paired(tp, 'rollgate', 'fastify', (x, y) => x.rps / y.rps) : null;
  const p50 = lat ? paired(lat, 'rollgate', 'direct', (x, y) => x.p50_ms - y.p50_ms) : null;
  const p99 = lat ? paired(lat, 'rollgate', 'direct', (x, y) => x.p99_ms - y.p99_ms) : null;
  const jsonCpu = tp ? cpuRatio(tp, 'rollgate-json', 'rollgate') : null;
  emit({
    bench: 'overhead',
    targets: {
      throughput_rps_vs_fastify_ge_0_95: tpRatio === null ? null : tpRatio >= 0.95,
      latency2ms_added_p50_le_0_5ms: p50 === null ? null : p50 <= 0.5,
      latency2ms_added_p99_le_1ms: p99 === null ? null : p99 <= 1,
      json_check_cpu_added_le_15pct: jsonCpu === null ? null : jsonCpu <= 1.15,
    },
    pinning: pin,
    settings: {
      duration_s: opts.durationS,
      warmup_s: opts.warmupS,
      rounds: opts.rounds,
      body_bytes: Buffer.byteLength(REQUEST_BODY),
      grpc: opts.grpc,
      node: process.version,
      load_avg_1m: { start: loadStart, end: round3(os.loadavg()[0]!) },
    },
  });
}

main().then(
  () => {
    procs.killAll();
    process.exit(0);
  },
  (err: unknown) => {
    procs.killAll();
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    }
    console.error(`bench:overhead failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
