import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Procs, hasCommand, median, parseSeconds, parseWrk, pinning, round3, treeCpu, treeCpuSince, treeRssMiB, type WrkResult } from './lib.js';
import { runGrpc, type GrpcOptions } from './overhead-grpc.js';
import { compare, verdicts, type Results, type RoundResult } from './overhead-report.js';
import { REGIMES, REQUEST_BODY, REQUEST_PATH, TARGETS, W2_WORKERS, layout, startServers, type Harness, type Regime, type Server, type Target } from './overhead-targets.js';

/**
 * Proxy overhead: direct to an upstream vs a bare Fastify proxy vs rollgate (90/10 split), and
 * rollgate as a Fastify plugin in a bare host app, rollgate with `workers: 2`, nginx (when
 * installed) and the node:http + undici dispatch floor, interleaved in rounds within one run, so
 * that only ratios between targets are compared; then the gRPC row (bench/overhead-grpc.ts):
 * unary calls direct to a grpc-js server vs through rollgate over h2c.
 */

const USAGE = `usage: overhead.js [--duration 5s] [--warmup 10s] [--rounds 3]
  [--only throughput|latency2ms|grpc] [--targets ${TARGETS.join(',')}]
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
function pinned(cpus: number | string, cmd: string, args: string[]): [string, string[]] {
  return pin.enabled ? ['taskset', ['-c', String(cpus), cmd, ...args]] : [cmd, args];
}

const harness: Harness = { procs, pinned, layout: layout(pin.enabled) };

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

async function measure(target: Target, server: Server, connections: number, seconds: number, lua: string): Promise<RoundResult> {
  // The whole process tree: rollgate-w2's primary and workers, every nginx process.
  const root = server.child.pid;
  const cpu0 = treeCpu(root);
  const r = await wrk(target, server, connections, seconds, lua);
  const cpu1 = treeCpu(root);
  const spent = treeCpuSince(cpu0, cpu1);
  const perReq = (us: number) => Math.round(us / r.requests);
  const [primary0, primary1] = root === undefined ? [undefined, undefined] : [cpu0.get(root), cpu1.get(root)];
  return {
    rps: Math.round(r.rps),
    p50_ms: round3(r.p50_ms),
    p99_ms: round3(r.p99_ms),
    errors: r.non2xx + r.socket_errors,
    cpu_us_per_req: spent === null ? null : perReq(spent),
    ...(cpu1.size > 1 ? { primary_cpu_us_per_req: primary1 === undefined ? null : perReq(primary1 - (primary0 ?? 0)) } : {}),
    processes: cpu1.size,
  };
}

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
      const primaryCpus = rounds.flatMap((r) => (typeof r.primary_cpu_us_per_req === 'number' ? [r.primary_cpu_us_per_req] : []));
      emit({
        bench: 'overhead',
        regime,
        target: t,
        connections,
        rps: Math.round(med('rps')),
        p50_ms: med('p50_ms'),
        p99_ms: med('p99_ms'),
        cpu_us_per_req: cpus.length ? median(cpus) : null,
        // Summed over the process tree, like the CPU.
        rss_mib: treeRssMiB(servers.get(t)!.child.pid),
        ...(t === 'rollgate' || t === 'rollgate-fast' || t === 'rollgate-w2' || t === 'plugin' ? { candidate_share: servers.get(t)!.candidateShare ?? null } : {}),
        ...(rounds.some((r) => r.processes > 1) ? { processes: Math.max(...rounds.map((r) => r.processes)), primary_cpu_us_per_req: primaryCpus.length ? median(primaryCpus) : null } : {}),
        rounds,
      });
    }
    emit({ bench: 'overhead', regime, connections, ...compare(results) });
    return results;
  } finally {
    for (const child of children) await procs.stop(child);
  }
}

function emit(line: object): void {
  console.log(JSON.stringify(line));
}

/**
 * Lines said before the first regime: nginx skipped when it is not installed, and whether
 * workers: 2 against workers: 1 can show scaling on this machine's cores.
 */
function announce(opts: Options): void {
  if (opts.targets.includes('nginx') && !hasCommand('nginx', ['-v'])) {
    opts.targets = opts.targets.filter((t) => t !== 'nginx');
    emit({ bench: 'overhead', skipped: 'nginx', reason: 'nginx is not on PATH (Debian: apt-get install nginx-light)' });
  }
  if (opts.targets.includes('rollgate-w2')) {
    const { cores, workers, unmeasurable } = harness.layout;
    emit({
      bench: 'overhead',
      workers_scaling: {
        workers: W2_WORKERS,
        cores,
        measurable: unmeasurable === null,
        ...(unmeasurable === null ? { worker_cpus: workers } : { reason: unmeasurable }),
        reported: unmeasurable === null ? 'rollgate_w2_vs_w1_rps against the 1.6x target' : 'rollgate_w2_vs_w1_cpu_per_req (the 1.6x req/s target is left null)',
      },
    });
  }
  if (opts.targets.length === 0) throw new UsageError(`nothing to run: the only target named is not installed\n${USAGE}`);
}

/** Where everything ran: the upstream, the proxies, rollgate-w2's workers and wrk. */
function pinningLine() {
  if (!pin.enabled) return { ...pin, proxies: null, rollgate_w2_workers: null };
  const { proxies, workers } = harness.layout;
  const w2 = workers?.map((c) => `cpu${c}`).join(',') ?? `cpu${proxies}`;
  return { ...pin, servers: proxies === 0 ? pin.servers : `cpu0,${w2}`, upstream: 'cpu0', proxies: `cpu${proxies}`, rollgate_w2_workers: w2 };
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

  if (opts.regimes.length > 0) announce(opts);

  const all = new Map<Regime, Results>();
  for (const regime of opts.regimes) all.set(regime, await runRegime(regime, opts, tmp, lua));
  if (opts.grpc) await runGrpc(harness, opts.grpc, tmp, emit);

  emit({
    bench: 'overhead',
    ...verdicts(all.get('throughput'), all.get('latency2ms'), harness.layout),
    pinning: pinningLine(),
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
    if (err instanceof UsageError) {
      console.error(err.message);
      process.exit(2);
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
      process.exit(2);
    }
    console.error(`bench:overhead failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
