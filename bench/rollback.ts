import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import { openSync, readFileSync, readSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createRollgate } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import type { ModelBehaviour } from '../src/demo/model-server.js';
import type { Outcome } from '../src/proxy/outcome.js';
import type { RouteEvent } from '../src/rollout/types.js';
import { median, pinning, round3 } from './lib.js';
import { Driver, type Command, type LoadReport } from './rollback-lib.js';
import { workersScenario } from './rollback-workers.js';

/**
 * Rollback in the request path, measured against real upstreams: the gateway (this process)
 * splits steady load 90/10 between two model servers (the driver process, with the load
 * generator); once the candidate has passed the judge's warmup it develops a fault, and each
 * trial measures how many candidate requests finished between the fault and the trip (blast
 * radius), what clients saw, how long the judge took, and that nothing reached the candidate
 * after the trip. Each (fault, retryOnStable) pair runs on fresh gateways and upstreams.
 */

const USAGE = `usage: rollback.js [--trials N] [--scenario refused|errors|latency|workers] [--quick]
  [--warmup 2] [--cap 15] [--concurrency 16] [--no-pin] [--workers 2]
  --trials overrides every scenario's count (defaults: refused 10, errors 10, latency 5,
  workers 30; --quick: 3, and 10 for workers);
  --warmup and --cap are seconds: healthy load before the fault, and the longest a trial waits
  for a trip after it; --workers: data-plane processes of the workers scenario (its load is
  4 requests in flight per worker unless --concurrency says otherwise)`;

const ROUTE = 'sentiment';
const WEIGHT = 10;
/** Both versions while healthy: a model answering in about 5 ms, failing 0.2% of requests. */
const BASE: ModelBehaviour = { latencyMs: 5, failureRate: 0.002 };
/** Load kept on after a trip, to see that the candidate gets nothing more. */
const AFTER_TRIP_MS = 250;

const SCENARIOS = {
  refused: {
    describe: 'candidate server closed: open connections reset, new ones refused',
    fault: { close: true },
    trials: 10,
  },
  errors: {
    describe: '20% of candidate answers are 500',
    fault: { behaviour: { ...BASE, failureRate: 0.2 } },
    trials: 10,
  },
  latency: {
    describe: `candidate 3x slower (median ${BASE.latencyMs} ms -> ${BASE.latencyMs * 3} ms)`,
    fault: { behaviour: { ...BASE, latencyMs: BASE.latencyMs * 3 } },
    trials: 5,
  },
} as const satisfies Record<string, { describe: string; fault: Extract<Command, { op: 'flip' }>['fault']; trials: number }>;
type Scenario = keyof typeof SCENARIOS;

/** The workers scenario (bench/rollback-workers.ts): a trip's way from one data-plane process to the others. */
const WORKERS_TRIALS = 30;

interface Options {
  runs: { scenario: Scenario; trials: number }[];
  workers: { trials: number; workers: number; concurrency: number } | null;
  warmupMs: number;
  capMs: number;
  concurrency: number;
  pin: boolean;
}

class UsageError extends Error {}

function options(): Options {
  const { values } = parseArgs({
    options: {
      trials: { type: 'string' },
      scenario: { type: 'string' },
      warmup: { type: 'string' },
      cap: { type: 'string' },
      concurrency: { type: 'string' },
      workers: { type: 'string', default: '2' },
      'no-pin': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const positive = (v: string | undefined, integer: boolean): number | null => {
    if (v === undefined) return null;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(USAGE);
    return n;
  };
  const trials = positive(values.trials, true);
  const all = values.scenario === undefined;
  const names = values.scenario === undefined ? (Object.keys(SCENARIOS) as Scenario[]) : [values.scenario].filter((n) => n !== 'workers');
  if (!names.every((n): n is Scenario => n in SCENARIOS)) throw new UsageError(USAGE);
  const withWorkers = all || values.scenario === 'workers';
  const workers = positive(values.workers, true) ?? 2;
  if (withWorkers && workers < 2) throw new UsageError(USAGE);
  return {
    workers: withWorkers ? { trials: trials ?? (values.quick ? 10 : WORKERS_TRIALS), workers, concurrency: positive(values.concurrency, true) ?? 4 } : null,
    runs: names.map((s) => ({ scenario: s, trials: trials ?? (values.quick ? Math.min(3, SCENARIOS[s].trials) : SCENARIOS[s].trials) })),
    warmupMs: (positive(values.warmup, false) ?? (values.quick ? 1 : 2)) * 1000,
    capMs: (positive(values.cap, false) ?? (values.quick ? 8 : 15)) * 1000,
    concurrency: positive(values.concurrency, true) ?? 16,
    pin: !values['no-pin'],
  };
}

interface CandidateRecord {
  startedAt: number;
  end: number;
  failed: boolean;
  replayed: boolean;
}

interface TrialResult {
  tripped: boolean;
  trippedBeforeFlip: boolean;
  reason: string | null;
  /** What decided: a finished candidate request, or the sweep over requests still in flight. */
  via: string | null;
  decisionUs: number | null;
  flipToTripMs: number | null;
  /** Candidate requests that finished after the flip, up to and including the deciding one (to the end of the trial when there was no trip). */
  blast: number;
  blastFailures: number;
  blastReplayed: number;
  /** Candidate requests picked before the trip that finished after it. */
  inFlightAtTrip: number;
  /** Candidate requests that arrived at the gateway after the trip: must be 0. */
  startedAfterTrip: number;
  /** Requests that reached the candidate server after the trip: at most inFlightAtTrip. */
  upstreamArrivalsAfterTrip: number;
  /** The trip's test statistic, boundary and the rule's own numbers (windows left out). */
  evidence: Record<string, unknown> | null;
  /** A garbage collection overlapped the decision (deciding sample to weights applied). */
  gcInDecision: boolean;
  /** Run-queue wait of the gateway thread in the stretch between two outcomes that holds the decision, us. */
  tripWindowWaitUs: number | null;
  /** The gateway thread's time runnable but waiting for a CPU, and the wall time it is out of, ms. */
  runqueue: { waitMs: number; wallMs: number } | null;
  userErrors: { total: number; candidate: number; stable: number; noResponse: number };
  rps: number;
  candidateRps: number;
  warmupCandidates: number;
  /** How far the driver's flip time had to be clamped into the IPC round trip (clock offset error), ms. */
  clockClampMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(check: () => boolean, deadline: number, stepMs = 2): Promise<boolean> {
  for (;;) {
    if (check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

async function trial(driver: Driver, scenario: Scenario, retryOnStable: boolean, opts: Options): Promise<TrialResult> {
  const ups = await driver.call({ op: 'start', behaviour: BASE });
  gcs.length = 0;
  const config = parseConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    routes: [
      {
        name: ROUTE,
        match: { pathPrefix: '/v1/models/sentiment' },
        stable: { version: 'v1', url: ups.stable },
        candidate: { version: 'v2', url: ups.candidate, weight: WEIGHT },
        retryOnStable,
      },
    ],
  });
  const judgeWarmup = config.routes[0]!.rollback.warmup;

  const candidates: CandidateRecord[] = [];
  let served = 0;
  let event: RouteEvent | null = null;
  // Run-queue wait of the gateway thread between two outcomes; the pair around the trip brackets
  // the decision, so a slow decision can be told apart from a descheduled thread.
  let lastWaitNs = threadWaitNs();
  let tripWindowWaitUs: number | null = null;
  const onOutcome = (o: Outcome): void => {
    const waitNs = threadWaitNs();
    if (tripWindowWaitUs === null && judge.tripped !== null) tripWindowWaitUs = round3((waitNs - lastWaitNs) / 1e3);
    lastWaitNs = waitNs;
    // The sink's copy: the exchange object is reused (a replay turns it into stable's outcome).
    if (o.role === 'candidate') {
      candidates.push({ startedAt: o.startedAt, end: o.startedAt + o.latencyMs, failed: o.failure !== 'none' && o.failure !== 'aborted', replayed: o.replayed });
    }
    if (!o.replayed) served++;
  };
  const { gateway, rollouts } = createRollgate(config, { onOutcome });
  const controller = rollouts.route(ROUTE)!;
  const judge = controller.judge!;
  // The deciding moment on the gateway's clock: a finished outcome's end (startedAt + latencyMs),
  // or the time of the in-flight sweep that found the candidate's requests too slow.
  const tripped = (): boolean => judge.tripped !== null;
  rollouts.subscribe((e) => {
    if (e.type === 'rollback') event = e;
  });

  let report: LoadReport | null = null;
  let flipAt = Number.NaN;
  let clockClampMs = 0;
  let rps = 0;
  let candidateRps = 0;
  let warmupCandidates = 0;
  let trippedBeforeFlip = false;
  let sched0: Sched | null = null;
  let sched1: Sched | null = null;
  try {
    sched0 = schedstat();
    const addr = await gateway.listen();
    await driver.call({ op: 'load', url: `http://127.0.0.1:${addr.port}`, concurrency: opts.concurrency });
    const loadStart = performance.now();
    // Healthy until the candidate is well past the judge's warmup (cap: a very slow machine).
    await until(() => tripped() || (performance.now() - loadStart >= opts.warmupMs && candidates.length >= 2 * judgeWarmup), loadStart + 5 * opts.warmupMs, 20);
    const warmS = (performance.now() - loadStart) / 1000;
    rps = served / warmS;
    candidateRps = candidates.length / warmS;
    warmupCandidates = candidates.length;
    trippedBeforeFlip = tripped();

    if (!trippedBeforeFlip) {
      const sent = performance.now();
      const { at } = await driver.call({ op: 'flip', fault: SCENARIOS[scenario].fault });
      const received = performance.now();
      const local = driver.local(at);
      flipAt = Math.min(received, Math.max(sent, local));
      clockClampMs = Math.abs(flipAt - local);
      await until(tripped, flipAt + opts.capMs);
    }
    if (tripped()) {
      await until(() => event !== null, performance.now() + 1_000);
      await sleep(AFTER_TRIP_MS);
    }
    report = await driver.call({ op: 'stop' });
    sched1 = schedstat();
  } finally {
    await gateway.close(1_000);
    await driver.call({ op: 'close' });
  }

  const at = judge.tripped?.at ?? null;
  const t = at === null ? null : { decidedAt: at, via: candidates.some((c) => c.end === at) ? 'outcome' : 'sweep' };
  const e = event as RouteEvent | null;
  const tripAt = t?.decidedAt ?? Infinity;
  const inBlast = (c: CandidateRecord) => c.end > flipAt && c.end <= tripAt;
  const blast = candidates.filter(inBlast);
  const userErrors = { total: 0, candidate: 0, stable: 0, noResponse: 0 };
  for (const err of report.afterFlip.errors) {
    userErrors.total++;
    if (err.version === 'v2') userErrors.candidate++;
    else if (err.version === 'v1') userErrors.stable++;
    else userErrors.noResponse++;
  }
  const decisionUs = e?.decisionSeconds === undefined ? null : round3(e.decisionSeconds * 1e6);
  let evidence: Record<string, unknown> | null = null;
  if (e?.evidence !== undefined) {
    const { stable: _s, candidate: _c, ...rest } = e.evidence;
    evidence = rest;
  }
  const decisionEnd = tripAt + (decisionUs ?? 0) / 1000;
  return {
    tripped: t !== null && !trippedBeforeFlip,
    trippedBeforeFlip,
    reason: e === null ? null : reasonOf(e),
    via: t?.via ?? null,
    tripWindowWaitUs: schedFd === null ? null : tripWindowWaitUs,
    decisionUs,
    flipToTripMs: t === null || trippedBeforeFlip ? null : round3(t.decidedAt - flipAt),
    blast: blast.length,
    blastFailures: blast.filter((c) => c.failed).length,
    blastReplayed: blast.filter((c) => c.replayed).length,
    inFlightAtTrip: t === null ? 0 : candidates.filter((c) => c.startedAt <= tripAt && c.end > tripAt).length,
    startedAfterTrip: t === null ? 0 : candidates.filter((c) => c.startedAt > tripAt).length,
    upstreamArrivalsAfterTrip: report.candidateArrivals.filter((a) => driver.local(a) > tripAt).length,
    evidence,
    gcInDecision: t !== null && gcs.some((g) => g.start < decisionEnd && g.start + g.duration > tripAt),
    runqueue: sched0 !== null && sched1 !== null ? { waitMs: sched1.waitMs - sched0.waitMs, wallMs: sched1.at - sched0.at } : null,
    userErrors,
    rps: Math.round(rps),
    candidateRps: Math.round(candidateRps),
    warmupCandidates,
    clockClampMs: round3(clockClampMs),
  };
}

/** `error_rate/relative`, `error_rate/absolute`, `latency/p50`, or the cause as it is. */
function reasonOf(e: RouteEvent): string {
  const ev = e.evidence;
  if (e.cause === 'error_rate' && typeof ev?.['test'] === 'string') return `error_rate/${ev['test']}`;
  if (e.cause === 'latency' && typeof ev?.['q'] === 'number') return `latency/p${round3(ev['q'] * 100)}`;
  return e.cause;
}

interface Sched {
  at: number;
  waitMs: number;
}

/** This process's main thread: time spent runnable but not running (Linux schedstat), or null. */
function schedstat(): Sched | null {
  try {
    const waitNs = Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(waitNs) ? { at: performance.now(), waitMs: waitNs / 1e6 } : null;
  } catch {
    return null;
  }
}

const schedFd = (() => {
  try {
    return openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return null;
  }
})();
const schedBuf = Buffer.alloc(96);

/** Nanoseconds this thread has spent runnable but waiting for a CPU (one pread, ~1 us); 0 off Linux. */
function threadWaitNs(): number {
  if (schedFd === null) return 0;
  const n = readSync(schedFd, schedBuf, 0, schedBuf.length, 0);
  const text = schedBuf.toString('latin1', 0, n);
  const a = text.indexOf(' ');
  return Number(text.slice(a + 1, text.indexOf(' ', a + 1)));
}

/** Share of wall time the gateway's thread waited for a CPU over these trials, percent. */
function runqueuePct(results: TrialResult[]): number | null {
  const rq = results.map((r) => r.runqueue).filter((x): x is NonNullable<typeof x> => x !== null);
  const wall = sum(rq.map((x) => x.wallMs));
  return wall > 0 ? round3((100 * sum(rq.map((x) => x.waitMs))) / wall) : null;
}

/** Garbage collections of this process, performance.now() scale; cleared per trial. */
const gcs: { start: number; duration: number }[] = [];
new PerformanceObserver((list) => {
  for (const g of list.getEntries()) gcs.push({ start: g.startTime, duration: g.duration });
}).observe({ entryTypes: ['gc'] });

/** Nearest-rank quantile. */
function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

const mean = (xs: number[]): number | null => (xs.length === 0 ? null : round3(xs.reduce((a, b) => a + b, 0) / xs.length));
const max = (xs: number[]): number | null => (xs.length === 0 ? null : Math.max(...xs));
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

function summarize(scenario: Scenario, retryOnStable: boolean, results: TrialResult[]) {
  const tripped = results.filter((r) => r.tripped);
  const blast = tripped.map((r) => r.blast);
  const decision = results.map((r) => r.decisionUs).filter((d): d is number => d !== null);
  const flip = tripped.map((r) => r.flipToTripMs as number);
  const reasons: Record<string, number> = {};
  for (const r of results) {
    const k = r.trippedBeforeFlip ? `before_flip:${r.reason}` : (r.reason ?? 'no_trip');
    reasons[k] = (reasons[k] ?? 0) + 1;
  }
  return {
    bench: 'rollback',
    scenario,
    fault: SCENARIOS[scenario].describe,
    retryOnStable,
    trials: results.length,
    tripped: tripped.length,
    not_tripped: results.filter((r) => !r.tripped && !r.trippedBeforeFlip).length,
    tripped_before_flip: results.filter((r) => r.trippedBeforeFlip).length,
    reasons,
    decided_by_in_flight_sweep: results.filter((r) => r.via === 'sweep').length,
    blast_radius: { mean: mean(blast), p50: quantile(blast, 0.5), max: max(blast) },
    blast_failures: { mean: mean(tripped.map((r) => r.blastFailures)), max: max(tripped.map((r) => r.blastFailures)) },
    blast_replayed_total: sum(tripped.map((r) => r.blastReplayed)),
    // Without a trip, every candidate request from the flip to the end of the trial was exposed.
    untripped_candidate_requests: sum(results.filter((r) => !r.tripped && !r.trippedBeforeFlip).map((r) => r.blast)),
    user_errors: {
      total: sum(results.map((r) => r.userErrors.total)),
      from_candidate: sum(results.map((r) => r.userErrors.candidate)),
      from_stable: sum(results.map((r) => r.userErrors.stable)),
      no_response: sum(results.map((r) => r.userErrors.noResponse)),
    },
    flip_to_trip_ms: { p50: quantile(flip, 0.5), max: max(flip) },
    decision_us: { p50: quantile(decision, 0.5), p99: quantile(decision, 0.99), max: max(decision) },
    after_trip: {
      candidate_started_after_trip: sum(results.map((r) => r.startedAfterTrip)),
      in_flight_at_trip_max: max(tripped.map((r) => r.inFlightAtTrip)),
      candidate_upstream_arrivals: sum(results.map((r) => r.upstreamArrivalsAfterTrip)),
      arrivals_within_in_flight: results.every(afterTripClean),
    },
    decisions_with_gc: results.filter((r) => r.gcInDecision).length,
    gateway_runqueue_wait_pct: runqueuePct(results),
    rps_p50: median(results.map((r) => r.rps)),
    candidate_rps_p50: median(results.map((r) => r.candidateRps)),
    per_trial: results.map((r) => ({
      tripped: r.tripped,
      reason: r.reason,
      via: r.via,
      blast: r.blast,
      failed: r.blastFailures,
      flip_to_trip_ms: r.flipToTripMs,
      decision_us: r.decisionUs,
      user_errors: r.userErrors.total,
      in_flight: r.inFlightAtTrip,
      ...(r.gcInDecision ? { gc_in_decision: true } : {}),
      ...(r.tripWindowWaitUs !== null && r.tripWindowWaitUs > 0 ? { runqueue_wait_us: r.tripWindowWaitUs } : {}),
      evidence: r.evidence,
    })),
  };
}

/** Nothing was routed to the candidate after the trip; only requests picked before it reached it. */
function afterTripClean(r: TrialResult): boolean {
  return r.startedAfterTrip === 0 && r.upstreamArrivalsAfterTrip <= r.inFlightAtTrip;
}

function emit(line: object): void {
  console.log(JSON.stringify(line));
}

async function main(): Promise<void> {
  const opts = options();
  const started = performance.now();
  const loadStart = round3(os.loadavg()[0]!);
  if (loadStart > 1) console.error(`warning: load average ${loadStart} before the run; figures will be noisy`);
  // First, before this process is pinned to one CPU (its forks would inherit it): the workers
  // are spread over the machine by the OS, as `rollgate serve`'s are.
  let workersSwap: boolean | null = null;
  if (opts.workers !== null) {
    const line = await workersScenario(opts.workers);
    emit(line);
    workersSwap = line.targets.last_worker_swap_p99_le_1ms;
  }
  if (opts.runs.length === 0) return;
  const pin = opts.pin ? pinning() : { enabled: false, servers: null, wrk: null, reason: '--no-pin' };
  // Upstreams and load generator on CPU 0, the gateway (this process) on CPU 1.
  if (pin.enabled) spawnSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const driver = new Driver(pin.enabled ? 0 : null);
  process.once('exit', () => driver.kill());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      driver.kill();
      process.exit(130);
    });
  }
  await driver.syncClock();

  const decisions: number[] = [];
  let afterTripOk = true;
  let gcDecisions = 0;
  const all: TrialResult[] = [];
  const slow: { scenario: Scenario; retryOnStable: boolean; decision_us: number; runqueue_wait_us: number | null; gc: boolean }[] = [];
  let allTripped = true;
  let clampMax = 0;
  for (const { scenario, trials } of opts.runs) {
    for (const retryOnStable of [false, true]) {
      const results: TrialResult[] = [];
      for (let i = 0; i < trials; i++) results.push(await trial(driver, scenario, retryOnStable, opts));
      for (const r of results) {
        if (r.decisionUs !== null) decisions.push(r.decisionUs);
        afterTripOk &&= afterTripClean(r);
        if (r.gcInDecision) gcDecisions++;
        all.push(r);
        if (r.decisionUs !== null && r.decisionUs >= 1_000) {
          slow.push({ scenario, retryOnStable, decision_us: r.decisionUs, runqueue_wait_us: r.tripWindowWaitUs, gc: r.gcInDecision });
        }
        allTripped &&= r.tripped;
        clampMax = Math.max(clampMax, r.clockClampMs);
      }
      emit(summarize(scenario, retryOnStable, results));
    }
  }

  const p99 = quantile(decisions, 0.99);
  emit({
    bench: 'rollback',
    targets: {
      decision_p99_under_1ms: p99 === null ? null : p99 < 1_000,
      no_candidate_request_after_trip: afterTripOk,
      every_trial_tripped_after_flip: allTripped,
      ...(opts.workers === null ? {} : { last_worker_swap_p99_le_1ms: workersSwap }),
    },
    decision_us: { trips: decisions.length, p50: quantile(decisions, 0.5), p99, max: max(decisions), with_gc: gcDecisions },
    // Each decision of 1 ms or more, with the run-queue wait of the gateway thread in the stretch
    // that holds it: a wait of about the decision's length means the thread was descheduled.
    decisions_over_1ms: slow,
    settings: {
      weight: WEIGHT,
      concurrency: opts.concurrency,
      upstream: BASE,
      warmup_s: opts.warmupMs / 1000,
      cap_s: opts.capMs / 1000,
      after_trip_ms: AFTER_TRIP_MS,
      trials: Object.fromEntries(opts.runs.map((r) => [r.scenario, r.trials])),
      node: process.version,
      clock: { offset_ms: round3(driver.offsetMs), rtt_ms: round3(driver.clockRttMs), flip_clamp_ms_max: round3(clampMax) },
      load_avg_1m: { start: loadStart, end: round3(os.loadavg()[0]!) },
      gateway_runqueue_wait_pct: runqueuePct(all),
    },
    pinning: pin.enabled ? { enabled: true, gateway: 'cpu1', upstreams_and_load: 'cpu0' } : pin,
    elapsed_s: round3((performance.now() - started) / 1000),
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    }
    console.error(`bench:rollback failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
