import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadRequest, ProbeAnswer, RunAnswer } from './grpc-load.js';
import { ROUTE_PREFIX } from './grpc-messages.js';
import { cpuMicros, freePorts, median, round3, rssMiB } from './lib.js';
import type { Harness } from './overhead-targets.js';

/**
 * bench:overhead's gRPC row: unary `ModelInfer` calls from a grpc-js client straight to a grpc-js
 * model server, and through rollgate (h2c on its data-plane port, a 90/10 split over two h2c
 * versions, the judge on), interleaved in rounds like the HTTP targets. Server, gateway and load
 * generator are separate processes: the first two on CPU 0, the client on CPU 1 when pinned.
 */

export interface GrpcOptions {
  inFlight: number[];
  warmupS: number;
  durationS: number;
  rounds: number;
}

const GRPC_TARGETS = ['direct', 'rollgate'] as const;
type GrpcTarget = (typeof GRPC_TARGETS)[number];

interface GrpcRound {
  calls_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  /** The process under test: the model server for direct, the gateway for rollgate. */
  cpu_us_per_call: number | null;
  upstream_cpu_us_per_call: number | null;
  client_cpu_us_per_call: number;
  /** Busy share of one core: the client's (CPU 1), and the server and gateway together (CPU 0). */
  client_core_share: number;
  servers_core_share: number | null;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const ROLLGATE_MAIN = path.resolve(here, '../src/cli/main.js');
const node = process.execPath;

export async function runGrpc({ procs, pinned }: Harness, opts: GrpcOptions, tmp: string, emit: (line: object) => void): Promise<void> {
  if (!existsSync(ROLLGATE_MAIN)) throw new Error(`rollgate CLI not built (${ROLLGATE_MAIN}); run npm run build`);
  const [upPort, rgPort, adminPort] = (await freePorts(3)) as [number, number, number];
  const children: ChildProcess[] = [];
  try {
    const up = procs.start('grpc upstream', ...pinned(0, node, [path.join(here, 'grpc-upstream.js'), '--port', String(upPort)]));
    children.push(up);
    await procs.waitForPort('grpc upstream', upPort);
    const config = path.join(tmp, 'rollgate-grpc.yaml');
    writeFileSync(
      config,
      `listen: { host: 127.0.0.1, port: ${rgPort} }
admin:  { host: 127.0.0.1, port: ${adminPort} }
log: { level: warn }
routes:
  - name: bench-grpc
    match: { pathPrefix: ${ROUTE_PREFIX} }
    stable:    { version: v1, url: http://127.0.0.1:${upPort}, protocol: h2c }
    candidate: { version: v2, url: http://127.0.0.1:${upPort}, protocol: h2c, weight: 10 }
`,
    );
    const gw = procs.start('rollgate (gRPC)', ...pinned(0, node, [ROLLGATE_MAIN, 'serve', '--config', config]));
    children.push(gw);
    await procs.waitForPort('rollgate (gRPC)', rgPort);
    const load = procs.start('grpc load', ...pinned(1, node, [path.join(here, 'grpc-load.js')]), { ipc: true });
    children.push(load);
    const ask = <A>(msg: LoadRequest): Promise<A> =>
      new Promise((resolve, reject) => {
        const onExit = () => reject(procs.failure ?? new Error('the gRPC load generator exited'));
        load.once('exit', onExit);
        load.once('message', (a) => {
          load.off('exit', onExit);
          resolve(a as A);
        });
        load.send(msg);
      });
    const targets: Record<GrpcTarget, string> = { direct: `127.0.0.1:${upPort}`, rollgate: `127.0.0.1:${rgPort}` };

    // A broken path fails loudly before any load; the gateway's answers show the split is live.
    let candidateShare: number | null = null;
    for (const t of GRPC_TARGETS) {
      const p = await ask<ProbeAnswer>({ kind: 'probe', target: targets[t], count: t === 'rollgate' ? 200 : 1 });
      if (p.error !== undefined) throw new Error(`gRPC ${t} probe: ${p.error}`);
      if (t === 'rollgate') {
        const labelled = p.versions.filter((v) => v !== null).length;
        candidateShare = labelled ? round3(p.versions.filter((v) => v === 'v2').length / labelled) : null;
      }
    }

    const measure = async (t: GrpcTarget, inFlight: number, seconds: number): Promise<GrpcRound> => {
      const under = t === 'rollgate' ? gw : up;
      const [c0, u0, g0] = [cpuMicros(under.pid), cpuMicros(up.pid), cpuMicros(gw.pid)];
      const r = await ask<RunAnswer>({ kind: 'run', target: targets[t], inFlight, seconds });
      const [c1, u1, g1] = [cpuMicros(under.pid), cpuMicros(up.pid), cpuMicros(gw.pid)];
      procs.assertAlive();
      // A path that answers errors fast would look fast; above a trace the numbers mean nothing.
      if (r.calls === 0 || r.errors > r.calls * 0.001) {
        throw new Error(`gRPC ${t}: ${r.errors} failed calls in ${r.calls + r.errors} (first: ${r.first_error})`);
      }
      const per = (a: number | null, b: number | null) => (a !== null && b !== null ? round3((b - a) / r.calls) : null);
      const wallUs = r.elapsed_s * 1e6;
      // CPU 0 holds the model server, and the gateway when the calls go through it.
      const cpu0 = u0 !== null && u1 !== null && g0 !== null && g1 !== null ? u1 - u0 + (t === 'rollgate' ? g1 - g0 : 0) : null;
      return {
        calls_per_s: Math.round(r.calls / r.elapsed_s),
        p50_ms: round3(r.p50_ms),
        p99_ms: round3(r.p99_ms),
        errors: r.errors,
        cpu_us_per_call: per(c0, c1),
        upstream_cpu_us_per_call: per(u0, u1),
        client_cpu_us_per_call: round3(r.cpu_us / r.calls),
        client_core_share: round3(r.cpu_us / wallUs),
        servers_core_share: cpu0 === null ? null : round3(cpu0 / wallUs),
      };
    };

    // Both channels and both servers warm (grpc-js and the gateway JIT as the HTTP targets do).
    const most = Math.max(...opts.inFlight);
    for (const t of GRPC_TARGETS) await measure(t, most, opts.warmupS);
    const results = new Map(opts.inFlight.map((n) => [n, new Map(GRPC_TARGETS.map((t) => [t, [] as GrpcRound[]]))]));
    for (let round = 0; round < opts.rounds; round++) {
      for (const n of opts.inFlight) {
        // Alternate which goes first, so neither always runs right after the other's load.
        const order = round % 2 === 0 ? GRPC_TARGETS : [...GRPC_TARGETS].reverse();
        for (const t of order) results.get(n)!.get(t)!.push(await measure(t, n, opts.durationS));
      }
    }
    for (const [n, byTarget] of results) {
      for (const [t, rounds] of byTarget) {
        const med = (f: (r: GrpcRound) => number | null) => {
          const xs = rounds.map(f).filter((x): x is number => x !== null);
          return xs.length ? round3(median(xs)) : null;
        };
        emit({
          bench: 'overhead',
          regime: 'grpc',
          target: t,
          calls_in_flight: n,
          calls_per_s: Math.round(med((r) => r.calls_per_s)!),
          p50_ms: med((r) => r.p50_ms),
          p99_ms: med((r) => r.p99_ms),
          cpu_us_per_call: med((r) => r.cpu_us_per_call),
          upstream_cpu_us_per_call: med((r) => r.upstream_cpu_us_per_call),
          client_cpu_us_per_call: med((r) => r.client_cpu_us_per_call),
          client_core_share: med((r) => r.client_core_share),
          servers_core_share: med((r) => r.servers_core_share),
          rss_mib: rssMiB((t === 'rollgate' ? gw : up).pid),
          ...(t === 'rollgate' ? { candidate_share: candidateShare } : {}),
          rounds,
        });
      }
      emit({ bench: 'overhead', regime: 'grpc', calls_in_flight: n, ...compareGrpc(byTarget) });
    }
  } finally {
    for (const child of children.reverse()) await procs.stop(child);
  }
}

/** Paired within rounds, then the median; and which side of the load was the busiest. */
function compareGrpc(byTarget: Map<GrpcTarget, GrpcRound[]>) {
  const d = byTarget.get('direct')!;
  const g = byTarget.get('rollgate')!;
  const paired = (f: (x: GrpcRound, y: GrpcRound) => number | null): number | null => {
    const xs = g.map((x, i) => f(x, d[i]!)).filter((v): v is number => v !== null && Number.isFinite(v));
    return xs.length === g.length ? round3(median(xs)) : null;
  };
  const share = (rs: GrpcRound[], f: (r: GrpcRound) => number | null): number | null => {
    const xs = rs.map(f).filter((v): v is number => v !== null);
    return xs.length ? round3(median(xs)) : null;
  };
  const direct = { client: share(d, (r) => r.client_core_share), model_server: share(d, (r) => r.servers_core_share) };
  const rollgate = { client: share(g, (r) => r.client_core_share), gateway_and_model_server: share(g, (r) => r.servers_core_share) };
  const clientBound = direct.client !== null && direct.model_server !== null && direct.client > direct.model_server;
  return {
    ratios: { rollgate_vs_direct_calls_per_s: paired((x, y) => x.calls_per_s / y.calls_per_s) },
    gateway_cpu_us_per_call: paired((x) => x.cpu_us_per_call),
    // The gateway's CPU per call over the grpc-js model server's own (direct, same round).
    gateway_vs_grpc_server_cpu_per_call: paired((x, y) => (x.cpu_us_per_call !== null && y.cpu_us_per_call ? x.cpu_us_per_call / y.cpu_us_per_call : null)),
    added_ms_over_direct: { p50: paired((x, y) => x.p50_ms - y.p50_ms), p99: paired((x, y) => x.p99_ms - y.p99_ms) },
    // Busy share of one core per side (client on CPU 1; server, and gateway, on CPU 0 when pinned).
    core_share: { direct, rollgate },
    ...(clientBound
      ? {
          note: `direct is bounded by the grpc-js client (${Math.round(direct.client! * 100)}% of its core, the model server ${Math.round(direct.model_server! * 100)}%), so rollgate_vs_direct_calls_per_s is an upper bound: gateway_cpu_us_per_call is the measure`,
        }
      : {}),
  };
}
