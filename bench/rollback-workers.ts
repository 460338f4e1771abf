import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRollgate } from '../src/app.js';
import { joinShared } from '../src/cli/serve-share.js';
import { parseConfig } from '../src/config/load.js';
import type { Rollouts } from '../src/rollout/rollouts.js';
import { serveHub } from '../src/store/hub-ipc.js';
import { SharedHub } from '../src/store/shared-hub.js';
import { round3 } from './lib.js';
import type { LoadCommand, LoadReplies } from './rollback-workers-load.js';
import { PATH_PREFIX, ROUTE, type Cut, type FromPlane, type PlaneSetup, type ToPlane } from './rollback-workers-plane.js';

/**
 * The workers scenario of bench:rollback: how long a trip decided in one data-plane process of
 * `listen.workers` takes to stop candidate traffic in every other one. This process is the
 * primary (the SharedHub, served to each worker over its IPC channel, and the primary's own
 * ReplicaSync and fleet tests, as `rollgate serve` has them); N forked processes are the workers
 * (bench/rollback-workers-plane.ts), each under steady load from a third process that also runs
 * the model servers (bench/rollback-workers-load.ts). Each trial deploys a fresh candidate from
 * the primary, lets it warm up, then makes it fail for the requests of one worker (the decider,
 * in turn): that worker's judge trips, and the others take the rollback from the hub. Measured:
 * from the deciding sample (the end of the outcome that made the decider's judge trip) to the
 * last other worker's swap (its picker assigned a traffic state with candidate weight 0).
 */

const PLANE = fileURLToPath(new URL('./rollback-workers-plane.js', import.meta.url));
const LOAD = fileURLToPath(new URL('./rollback-workers-load.js', import.meta.url));
const WEIGHT = 20;
const UPSTREAM_MS = 2;
/** Candidate samples the decider has before its candidate fails: past the judge's warmup (50). */
const WARM_SAMPLES = 75;
const TRIAL_CAP_MS = 5_000;

export interface WorkersOptions {
  trials: number;
  workers: number;
  concurrency: number;
}

const epoch = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A forked process answering `{id, cmd}` with `{id, ok, body}` (the load process). */
function rpc(child: ChildProcess) {
  let next = 1;
  const pending = new Map<number, (m: { ok: boolean; body?: unknown; error?: string }) => void>();
  child.on('message', (m: { id?: number; ok: boolean }) => {
    if (m.id === undefined) return;
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  return <C extends LoadCommand>(cmd: C): Promise<LoadReplies[C['op']]> =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, (m) => (m.ok ? resolve(m.body as LoadReplies[C['op']]) : reject(new Error(`load: ${m.error}`))));
      child.send({ id, cmd });
    });
}

interface Plane {
  child: ChildProcess;
  port: number;
  /** When the hub got each of this worker's writes, and how many reads it asked for. */
  writes: number[];
  reads: number;
  ask<K extends 'state' | 'clock' | 'cuts'>(cmd: K): Promise<Extract<FromPlane, Record<K, unknown>>>;
}

async function startPlane(hub: SharedHub, setup: PlaneSetup): Promise<Plane> {
  const child = fork(PLANE, ['plane', JSON.stringify(setup)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const writes: number[] = [];
  const plane: Plane = { child, port: 0, writes, reads: 0, ask: () => Promise.reject(new Error('not ready')) };
  // Before serveHub's listener: the stamp is taken when the message is handed to the primary.
  child.on('message', (m: { t?: string; op?: string }) => {
    if (m.t !== 'rollgate-hub') return;
    if (m.op === 'write') writes.push(epoch());
    else if (m.op === 'read') plane.reads++;
  });
  serveHub(hub, child);
  const waiting: ((m: FromPlane) => void)[] = [];
  child.on('message', (m: FromPlane) => {
    if (!('ready' in m) && (m as { t?: string }).t === undefined) waiting.shift()?.(m);
  });
  plane.ask = (cmd) =>
    new Promise((resolve) => {
      waiting.push(resolve as (m: FromPlane) => void);
      child.send({ cmd } satisfies ToPlane);
    });
  plane.port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { ready?: number }) => m.ready !== undefined && resolve(m.ready));
    child.once('exit', (code) => reject(new Error(`worker ${setup.index} exited (${code})`)));
  });
  return plane;
}

/** Each worker's epoch clock minus this one's, from the fastest of `n` probes, and that probe's round trip. */
async function clockOffsets(planes: Plane[], n = 20): Promise<{ offset_us: number; rtt_us: number }[]> {
  const out = [];
  for (const p of planes) {
    let best = { offset_us: 0, rtt_us: Infinity };
    for (let i = 0; i < n; i++) {
      const t0 = epoch();
      const { clock } = await p.ask('clock');
      const t1 = epoch();
      if ((t1 - t0) * 1000 < best.rtt_us) best = { offset_us: round3((clock - (t0 + t1) / 2) * 1000), rtt_us: round3((t1 - t0) * 1000) };
    }
    out.push(best);
  }
  return out;
}

interface Trial {
  decider: number;
  decidedBy: 'worker' | 'fleet' | 'none';
  /** Deciding sample to the last other worker's swap, us. */
  lastSwapUs: number | null;
  deciderSwapUs: number | null;
  toPublishUs: number | null;
  toWriteSentUs: number | null;
  toHubWriteUs: number | null;
  toNewsUs: number | null;
  newsToSwapUs: number | null;
  /** Other workers that cut the candidate on their own judge (they saw no failure: must be 0). */
  othersOwnTrips: number;
  reads: number;
}

async function until(check: () => Promise<boolean>, capMs: number, stepMs = 10): Promise<boolean> {
  const deadline = performance.now() + capMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

const us = (ms: number): number => round3(ms * 1000);

async function trial(i: number, planes: Plane[], deploy: (version: string) => void, fail: (index: number | null) => Promise<unknown>): Promise<Trial> {
  const decider = i % planes.length;
  const version = `v2.${i + 1}`;
  deploy(version);
  await until(async () => {
    const states = await Promise.all(planes.map((p) => p.ask('state')));
    return states.every((s) => s.state.version === version && s.state.weightBp > 0) && states[decider]!.state.candidateSamples >= WARM_SAMPLES;
  }, TRIAL_CAP_MS);
  await Promise.all(planes.map((p) => p.ask('cuts')));
  const reads0 = planes.reduce((a, p) => a + p.reads, 0);
  await fail(decider);
  await until(async () => (await Promise.all(planes.map((p) => p.ask('state')))).every((s) => s.state.phase === 'rolled_back'), TRIAL_CAP_MS);
  await fail(null);
  // The persist event that names a cut's cause comes on the next turn of the worker's loop.
  await sleep(10);
  const cuts = (await Promise.all(planes.map((p) => p.ask('cuts')))).map((m) => m.cuts.find((c) => c.version === version) ?? null);
  const reads = planes.reduce((a, p) => a + p.reads, 0) - reads0;
  const own = cuts[decider];
  const others = cuts.filter((_, k) => k !== decider);
  const othersOwnTrips = others.filter((c) => c?.via === 'own').length;
  const base: Trial = { decider, decidedBy: 'none', lastSwapUs: null, deciderSwapUs: null, toPublishUs: null, toWriteSentUs: null, toHubWriteUs: null, toNewsUs: null, newsToSwapUs: null, othersOwnTrips, reads };
  if (own?.via !== 'own' || own.decidedAt === null) return { ...base, decidedBy: cuts.some((c) => c !== null) ? 'fleet' : 'none' };
  const decidedAt = own.decidedAt;
  if (others.some((c) => c === null)) return { ...base, decidedBy: 'worker' };
  const last = (others as Cut[]).reduce((a, b) => (b.at > a.at ? b : a));
  const hubWrite = planes[decider]!.writes.find((w) => w >= own.at) ?? null;
  return {
    ...base,
    decidedBy: 'worker',
    lastSwapUs: us(last.at - decidedAt),
    deciderSwapUs: us(own.at - decidedAt),
    toPublishUs: own.publishedAt === null ? null : us(own.publishedAt - decidedAt),
    toWriteSentUs: own.writeSentAt === null ? null : us(own.writeSentAt - decidedAt),
    toHubWriteUs: hubWrite === null ? null : us(hubWrite - decidedAt),
    toNewsUs: last.newsAt === null ? null : us(last.newsAt - decidedAt),
    newsToSwapUs: last.newsAt === null ? null : us(last.at - last.newsAt),
  };
}

/** A process's main thread (its event loop): ns runnable but waiting for a CPU (Linux schedstat), or null. */
function waitNs(pid: number | undefined): number | null {
  try {
    const n = Number(readFileSync(`/proc/${pid ?? 'self'}/schedstat`, 'utf8').split(' ')[1]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** Share of the wall time each process's event loop was runnable but not running, percent. */
function runqueue(pids: (number | undefined)[]) {
  const w0 = pids.map(waitNs);
  const t0 = performance.now();
  return () => {
    const wallNs = (performance.now() - t0) * 1e6;
    return pids.map((pid, k) => {
      const [a, b] = [w0[k], waitNs(pid)];
      return a === null || a === undefined || b === null ? null : round3((100 * (b - a)) / wallNs);
    });
  };
}

/** Nearest-rank quantile. */
function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

function spread(xs: (number | null)[]): { p50: number | null; p99: number | null; max: number | null } {
  const v = xs.filter((x): x is number => x !== null);
  return { p50: quantile(v, 0.5), p99: quantile(v, 0.99), max: v.length === 0 ? null : Math.max(...v) };
}

export async function workersScenario(opts: WorkersOptions): Promise<Record<string, unknown> & { targets: { last_worker_swap_p99_le_1ms: boolean | null } }> {
  const started = performance.now();
  const loadProc = fork(LOAD, ['load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const load = rpc(loadProc);
  const planes: Plane[] = [];
  const kill = () => {
    for (const c of [loadProc, ...planes.map((p) => p.child)]) if (c.exitCode === null) c.kill('SIGKILL');
  };
  process.once('exit', kill);
  try {
    const ups = await load({ op: 'start', latencyMs: UPSTREAM_MS });
    const hub = new SharedHub();
    hub.prefer('primary');
    const config = parseConfig({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent' },
      routes: [{ name: ROUTE, match: { pathPrefix: PATH_PREFIX }, stable: { version: 'v1', url: ups.stable }, candidate: { version: 'v2', url: ups.candidate, weight: WEIGHT }, rollback: { latency: { minDelta: '10s' } } }],
    });
    // The primary as `rollgate serve` has it: its own state, steered by the admin plane, shared through the hub.
    const { gateway, rollouts } = createRollgate(config, { alphaScale: 1 / (2 * opts.workers), workers: 'primary' });
    const log = { info: () => undefined, warn: () => undefined };
    const shared = await joinShared(rollouts as Rollouts<unknown>, hub.client(), log, 'primary');
    const controller = rollouts.route(ROUTE)!;
    for (let k = 0; k < opts.workers; k++) planes.push(await startPlane(hub, { index: k, workers: opts.workers, stable: ups.stable, candidate: ups.candidate, weight: WEIGHT }));
    const clocks = await clockOffsets(planes);
    await load({ op: 'load', urls: planes.map((p) => `http://127.0.0.1:${p.port}`), concurrency: opts.concurrency });
    const loadStart = performance.now();
    const load0 = round3(os.loadavg()[0]!);
    // Primary (undefined: this process), workers, load process.
    const waited = runqueue([undefined, ...planes.map((p) => p.child.pid), loadProc.pid]);
    const trials: Trial[] = [];
    for (let i = 0; i < opts.trials; i++) {
      trials.push(await trial(i, planes, (v) => controller.deploy(v, ups.candidate, WEIGHT, 'manual'), (index) => load({ op: 'fail', index })));
    }
    const waitedPct = waited();
    const { requests } = await load({ op: 'stop' });
    const loadS = (performance.now() - loadStart) / 1000;
    for (const p of planes) p.child.disconnect();
    shared.fleet.close();
    await shared.sync.close();
    await gateway.close(0);
    const measured = trials.filter((t) => t.lastSwapUs !== null);
    const last = spread(measured.map((t) => t.lastSwapUs));
    return {
      bench: 'rollback',
      scenario: 'workers',
      measured: 'deciding sample (end of the outcome that made the deciding worker trip) -> the last other worker assigns its route a traffic state with candidate weight 0; epoch clocks (performance.timeOrigin + performance.now()) of the processes',
      workers: opts.workers,
      trials: trials.length,
      measured_trials: measured.length,
      decided_by_fleet: trials.filter((t) => t.decidedBy === 'fleet').length,
      not_rolled_back_everywhere: trials.filter((t) => t.decidedBy !== 'fleet' && t.lastSwapUs === null).length,
      others_tripped_on_their_own: trials.reduce((a, t) => a + t.othersOwnTrips, 0),
      last_worker_swap_us: last,
      deciding_worker_swap_us: spread(measured.map((t) => t.deciderSwapUs)),
      // The way to the last worker, from the deciding sample: the decider's event published (its
      // persist stage, where ReplicaSync writes), its write handed to the IPC channel, the write in the hub (IPC), the
      // hub's news in the last worker (IPC: the trip's notice, which leaves in the trip's own call
      // ahead of the record, or the record's news); then, from that news, the last worker's swap.
      stages_us: {
        sample_to_persist_stage: spread(measured.map((t) => t.toPublishUs)),
        sample_to_write_handed_to_ipc: spread(measured.map((t) => t.toWriteSentUs)),
        sample_to_hub_write: spread(measured.map((t) => t.toHubWriteUs)),
        sample_to_news_received: spread(measured.map((t) => t.toNewsUs)),
        news_received_to_swap: spread(measured.map((t) => t.newsToSwapUs)),
      },
      hub_reads_per_trial: { max: Math.max(0, ...trials.map((t) => t.reads)), total: trials.reduce((a, t) => a + t.reads, 0) },
      targets: { last_worker_swap_p99_le_1ms: last.p99 === null ? null : last.p99 <= 1_000 },
      per_trial_last_worker_swap_us: trials.map((t) => t.lastSwapUs),
      settings: {
        weight: WEIGHT,
        concurrency_per_worker: opts.concurrency,
        upstream_ms: UPSTREAM_MS,
        rps_per_worker: requests.map((r) => Math.round(r / loadS)),
        clock_vs_primary: clocks,
        node: process.version,
        cpus: os.cpus().length,
        load_avg_1m: { start: load0, end: round3(os.loadavg()[0]!) },
        // On a machine with more runnable threads than CPUs each hop waits for its process to get one.
        runqueue_wait_pct: { primary: waitedPct[0], workers: waitedPct.slice(1, -1), load: waitedPct.at(-1) },
      },
      elapsed_s: round3((performance.now() - started) / 1000),
    };
  } finally {
    kill();
    process.off('exit', kill);
  }
}
