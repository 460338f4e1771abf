import { median, round3 } from './lib.js';
import type { Layout, Target } from './overhead-targets.js';

/** bench:overhead's ratios between targets, each paired within a round, and the targets' verdicts. */

export interface RoundResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  /** CPU of the target's whole process tree (a gateway's workers, nginx's processes) per request. */
  cpu_us_per_req: number | null;
  /** The same for the tree's root alone (rollgate-w2's primary), when the tree has more than one process. */
  primary_cpu_us_per_req?: number | null;
  processes: number;
}

export type Results = Map<Target, RoundResult[]>;

/** Ratios and differences paired within each round (same conditions), then the median over rounds. */
export function paired(results: Results, a: Target, b: Target, f: (x: RoundResult, y: RoundResult) => number): number | null {
  const xs = results.get(a);
  const ys = results.get(b);
  if (!xs || !ys) return null;
  return round3(median(xs.map((x, i) => f(x, ys[i]!))));
}

/** CPU per request of `a` over `b`, paired within rounds; null when /proc gave no figures. */
export function cpuRatio(results: Results, a: Target, b: Target): number | null {
  const xs = results.get(a);
  const ys = results.get(b);
  if (!xs || !ys || xs.some((x, i) => x.cpu_us_per_req === null || ys[i]!.cpu_us_per_req === null)) return null;
  return round3(median(xs.map((x, i) => x.cpu_us_per_req! / ys[i]!.cpu_us_per_req!)));
}

/** CPU per request of `a` less that of `b`, paired within rounds. */
export function cpuAdded(results: Results, a: Target, b: Target): number | null {
  const xs = results.get(a);
  const ys = results.get(b);
  if (!xs || !ys || xs.some((x, i) => x.cpu_us_per_req === null || ys[i]!.cpu_us_per_req === null)) return null;
  return round3(median(xs.map((x, i) => x.cpu_us_per_req! - ys[i]!.cpu_us_per_req!)));
}

/** A regime's summary line: every ratio whose two targets ran (null where one did not). */
export function compare(results: Results) {
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
      rollgate_vs_nginx_rps: ratio('rollgate', 'nginx'),
      rollgate_vs_nginx_cpu_per_req: cpuRatio(results, 'rollgate', 'nginx'),
      rollgate_w2_vs_w1_rps: ratio('rollgate-w2', 'rollgate'),
      rollgate_w2_vs_w1_cpu_per_req: cpuRatio(results, 'rollgate-w2', 'rollgate'),
      rollgate_vs_floor_rps: ratio('rollgate', 'floor'),
      rollgate_vs_floor_cpu_per_req: cpuRatio(results, 'rollgate', 'floor'),
      // What listen.memory: lean (the default) costs against fast (V8's own settings).
      rollgate_lean_vs_fast_cpu_per_req: cpuRatio(results, 'rollgate', 'rollgate-fast'),
      rollgate_lean_vs_fast_rps: ratio('rollgate', 'rollgate-fast'),
    },
    // What the checks of SPEC §9 cost: CPU microseconds per request added, and as a share.
    checks: {
      json_added_cpu_us_per_req: cpuAdded(results, 'rollgate-json', 'rollgate'),
      json_cpu_ratio: cpuRatio(results, 'rollgate-json', 'rollgate'),
      llm_stream_added_cpu_us_per_req: cpuAdded(results, 'rollgate-llm', 'rollgate-sse'),
      llm_stream_cpu_ratio: cpuRatio(results, 'rollgate-llm', 'rollgate-sse'),
    },
    // rollgate less the dispatch floor it is built on (node:http + undici dispatch): its own CPU per request.
    own: {
      rollgate_added_cpu_us_per_req_over_floor: cpuAdded(results, 'rollgate', 'floor'),
    },
    added_ms_over_direct: {
      undici: added('undici'),
      fastify: added('fastify'),
      rollgate: added('rollgate'),
      'rollgate-fast': added('rollgate-fast'),
      plugin: added('plugin'),
      floor: added('floor'),
      nginx: added('nginx'),
      'rollgate-w2': added('rollgate-w2'),
    },
  };
}

/** The `targets` of the last line, from the throughput and latency2ms regimes' results. */
export function verdicts(tp: Results | undefined, lat: Results | undefined, layout: Layout) {
  const tpRatio = tp ? paired(tp, 'rollgate', 'fastify', (x, y) => x.rps / y.rps) : null;
  const p50 = lat ? paired(lat, 'rollgate', 'direct', (x, y) => x.p50_ms - y.p50_ms) : null;
  const p99 = lat ? paired(lat, 'rollgate', 'direct', (x, y) => x.p99_ms - y.p99_ms) : null;
  const jsonCpu = tp ? cpuRatio(tp, 'rollgate-json', 'rollgate') : null;
  const w1Cpus = (tp?.get('rollgate') ?? []).flatMap((r) => (r.cpu_us_per_req === null ? [] : [r.cpu_us_per_req]));
  const own = tp ? cpuAdded(tp, 'rollgate', 'floor') : null;
  const w2 = tp?.has('rollgate-w2') === true;
  const scaling = tp && w2 && layout.unmeasurable === null ? paired(tp, 'rollgate-w2', 'rollgate', (x, y) => x.rps / y.rps) : null;
  return {
    targets: {
      throughput_rps_vs_fastify_ge_0_95: tpRatio === null ? null : tpRatio >= 0.95,
      latency2ms_added_p50_le_0_5ms: p50 === null ? null : p50 <= 0.5,
      latency2ms_added_p99_le_1ms: p99 === null ? null : p99 <= 1,
      json_check_cpu_added_le_15pct: jsonCpu === null ? null : jsonCpu <= 1.15,
      // workers: 1 at 50 connections, the judge on, CPU over the whole process tree.
      cpu_us_per_req_w1_le_50: w1Cpus.length === 0 ? null : median(w1Cpus) <= 50,
      // An estimate: rollgate's CPU per request less the dispatch floor's.
      rollgate_own_cpu_us_per_req_lt_10: own === null ? null : own < 10,
      workers_rps_ge_1_6x: scaling === null ? null : scaling >= 1.6,
    },
    ...(w2 && layout.unmeasurable !== null ? { not_measurable: { workers_rps_ge_1_6x: layout.unmeasurable } } : {}),
  };
}
