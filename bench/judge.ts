import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { DEFAULT_ROLLBACK } from '../src/config/defaults.js';
import type { RollbackRules } from '../src/config/types.js';
import {
  SCENARIOS,
  deploymentSeed,
  passes,
  scenario,
  simulateDeployment,
  summarize,
  type DeploymentResult,
  type Scenario,
} from './judge-sim.js';
import { ALPHA_SPLIT } from '../src/cli/serve-share.js';
import { referenceFields, targetOf } from './judge-reference.js';
import { pooledLine, simulatePaired, workerDefaults, type PooledOptions, type PooledResult } from './judge-pooled.js';

/**
 * The judge's error rates, measured: seeded deployments of each scenario in judge-sim.ts under
 * DEFAULT_ROLLBACK, spread over worker threads; one JSON line per scenario, then a summary.
 * Each regression's line carries the fewest candidate requests Wald's SPRT would need at the
 * same alpha (judge-reference.ts) and the measured mean's ratio to it. `--pooled` judges the same
 * deployments once in one process and once spread over the workers of `listen.workers` with
 * the fleet's test pooling their evidence (judge-pooled.ts), and compares the two.
 */

/** What --pooled runs unless told: the 1% -> 5% regression and the healthy deployments without checks. */
const POOLED_SCENARIOS = ['error-5pct', 'healthy', 'healthy-stalls', 'healthy-steps-stalls'];
/** The workers' hub as serve-share.ts sets it up (Redis's split: --fleet-share 0.5 --interval-ms 250 --fleet-terms spend). */
const POOL_DEFAULTS = { workers: 2, intervalMs: ALPHA_SPLIT.workers.intervalMs ?? 250, fleetShare: ALPHA_SPLIT.workers.fleetShare, soleHolder: ALPHA_SPLIT.workers.soleHolder };

const USAGE = `usage: judge.js [--deployments N] [--healthy N] [--seed S] [--scenario name[,name]] [--workers N] [--quick]
  [--tolerance X]  errorRate.tolerance for every scenario (default ${DEFAULT_ROLLBACK.errorRate.tolerance})
  [--alpha A]      the rules' alpha (default ${DEFAULT_ROLLBACK.alpha}): a larger one makes false rollbacks countable in a short run
  --pooled         one process against the same traffic spread over --pool-workers (default 2) judges whose evidence
                   a fleet test pools every --interval-ms (default ${POOL_DEFAULTS.intervalMs}) at --fleet-share of alpha (default ${POOL_DEFAULTS.fleetShare}),
                   all of it in one term (--fleet-terms sole, the workers' primary) or half in the first (spend, Redis's lease);
                   --rate requests per second fleet-wide (default 1000, 10% to the candidate);
                   scenarios ${POOLED_SCENARIOS.join(', ')} unless --scenario
  scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`;

/** Deployments a worker runs per message: small enough to balance, large enough to be cheap. */
const CHUNK = { healthy: 5, regression: 50 };

interface Job {
  scenario: string;
  seed: number;
  from: number;
  to: number;
  /** errorRate.tolerance, when not the default. */
  tolerance: number | null;
  alpha: number | null;
  /** Both arms of a pooled run, or null for the judge alone. */
  pooled: PooledOptions | null;
}

function rulesFor(tolerance: number | null, alpha: number | null = null): RollbackRules | undefined {
  if (tolerance === null && alpha === null) return undefined;
  return {
    ...DEFAULT_ROLLBACK,
    alpha: alpha ?? DEFAULT_ROLLBACK.alpha,
    errorRate: { ...DEFAULT_ROLLBACK.errorRate, tolerance: tolerance ?? DEFAULT_ROLLBACK.errorRate.tolerance },
  };
}

interface Options {
  seed: number;
  tolerance: number | null;
  alpha: number | null;
  pooled: PooledOptions | null;
  workers: number;
  runs: { scenario: Scenario; deployments: number }[];
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      deployments: { type: 'string' },
      healthy: { type: 'string' },
      seed: { type: 'string', default: '1' },
      scenario: { type: 'string' },
      workers: { type: 'string', default: String(availableParallelism()) },
      quick: { type: 'boolean', default: false },
      tolerance: { type: 'string' },
      alpha: { type: 'string' },
      pooled: { type: 'boolean', default: false },
      'pool-workers': { type: 'string', default: String(POOL_DEFAULTS.workers) },
      'interval-ms': { type: 'string', default: String(POOL_DEFAULTS.intervalMs) },
      'fleet-share': { type: 'string', default: String(POOL_DEFAULTS.fleetShare) },
      'fleet-terms': { type: 'string', default: POOL_DEFAULTS.soleHolder ? 'sole' : 'spend' },
      rate: { type: 'string', default: '1000' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const count = (v: string | undefined): number | null => {
    if (v === undefined) return null;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(USAGE);
    return n;
  };
  const regression = count(values.deployments) ?? (values.quick ? 40 : 500);
  // Healthy deployments keep their ratio to the others unless set on their own.
  const healthy = count(values.healthy) ?? (values.quick ? 24 : regression * 6);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new UsageError(USAGE);
  const names = values.scenario?.split(',') ?? (values.pooled ? POOLED_SCENARIOS : null);
  let chosen: readonly Scenario[] = SCENARIOS;
  if (names !== null) {
    try {
      chosen = names.map((n) => scenario(n));
    } catch {
      throw new UsageError(USAGE);
    }
  }
  const tolerance = values.tolerance === undefined ? null : Number(values.tolerance);
  if (tolerance !== null && !(tolerance >= 1)) throw new UsageError(USAGE);
  const alpha = values.alpha === undefined ? null : Number(values.alpha);
  if (alpha !== null && !(alpha > 0 && alpha < 1)) throw new UsageError(USAGE);
  const fleetShare = Number(values['fleet-share']);
  const intervalMs = Number(values['interval-ms']);
  if (!(fleetShare > 0 && fleetShare < 1) || !(intervalMs > 0)) throw new UsageError(USAGE);
  return {
    seed,
    tolerance,
    alpha,
    pooled: values.pooled
      ? { ...workerDefaults(count(values['pool-workers']) ?? POOL_DEFAULTS.workers, fleetShare, intervalMs, values['fleet-terms'] === 'sole'), arrivalsPerS: count(values.rate) ?? 1_000 }
      : null,
    workers: count(values.workers) ?? 1,
    runs: chosen.map((s) => ({ scenario: s, deployments: s.measure === 'falseRollbacks' ? healthy : regression })),
  };
}

class UsageError extends Error {}

/** Runs every job on a pool of workers; results come back in deployment order per scenario. */
async function runJobs<R>(jobs: Job[], workers: number): Promise<Map<string, R[]>> {
  const results = new Map<string, R[]>();
  let next = 0;
  const pool = Array.from({ length: Math.min(workers, jobs.length) }, () => new Worker(new URL(import.meta.url)));
  await Promise.all(
    pool.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          const send = (): void => {
            const job = jobs[next++];
            if (job === undefined) {
              void w.terminate().then(() => resolve());
              return;
            }
            w.postMessage(job);
          };
          w.on('message', ({ job, out }: { job: Job; out: R[] }) => {
            const list = results.get(job.scenario) ?? [];
            out.forEach((r, i) => (list[job.from + i] = r));
            results.set(job.scenario, list);
            send();
          });
          w.once('error', reject);
          send();
        }),
    ),
  );
  return results;
}

function worker(): void {
  parentPort?.on('message', (job: Job) => {
    const s = scenario(job.scenario);
    const out: (DeploymentResult | { single: PooledResult; pooled: PooledResult })[] = [];
    const rules = rulesFor(job.tolerance, job.alpha);
    for (let i = job.from; i < job.to; i++) {
      const seed = deploymentSeed(job.seed, s.name, i);
      out.push(job.pooled === null ? simulateDeployment(s, seed, rules) : simulatePaired(s, seed, rules ?? DEFAULT_ROLLBACK, job.pooled));
    }
    parentPort?.postMessage({ job, out });
  });
}

async function main(): Promise<void> {
  const opts = options();
  const lines: Record<string, unknown>[] = [];
  const started = performance.now();
  for (const { scenario: s, deployments } of opts.runs) {
    const chunk = s.measure === 'falseRollbacks' ? CHUNK.healthy : CHUNK.regression;
    const jobs: Job[] = [];
    for (let from = 0; from < deployments; from += chunk) {
      jobs.push({ scenario: s.name, seed: opts.seed, from, to: Math.min(deployments, from + chunk), tolerance: opts.tolerance, alpha: opts.alpha, pooled: opts.pooled });
    }
    const t0 = performance.now();
    const rules = rulesFor(opts.tolerance, opts.alpha) ?? DEFAULT_ROLLBACK;
    if (opts.pooled !== null) {
      const paired = (await runJobs<{ single: PooledResult; pooled: PooledResult }>(jobs, opts.workers)).get(s.name) ?? [];
      const line = { ...pooledLine(s, rules, opts.pooled, paired), elapsedS: Math.round((performance.now() - t0) / 100) / 10 };
      lines.push(line);
      console.log(JSON.stringify(line));
      continue;
    }
    const results = (await runJobs<DeploymentResult>(jobs, opts.workers)).get(s.name) ?? [];
    const elapsedS = (performance.now() - t0) / 1000;
    const sum = summarize(results);
    // A scaled healthy run keeps the rate of the full one: alpha x deployments false rollbacks.
    const target = s.measure === 'falseRollbacks' ? Math.floor(rules.alpha * deployments + 1e-9) : targetOf(s, rules);
    const line: Record<string, unknown> = {
      bench: 'judge',
      scenario: s.name,
      description: s.description,
      tolerance: opts.tolerance ?? DEFAULT_ROLLBACK.errorRate.tolerance,
      deployments,
      meanToTrip: sum.meanToTrip,
      p50: sum.p50,
      p90: sum.p90,
      neverTripped: sum.neverTripped,
      cap: s.cap,
      reasons: sum.reasons,
      ...(s.measure === 'meanToTrip' ? referenceFields(s, rules, sum.meanToTrip) : {}),
      target,
      pass: passes(s, sum, target),
      elapsedS: Math.round(elapsedS * 10) / 10,
    };
    if (s.onsetMs > 0) {
      line.onsetMs = s.onsetMs;
      line.beforeOnset = sum.beforeOnset;
    }
    if (s.measure === 'falseRollbacks') {
      line.falseRollbacks = sum.tripped;
      line.candidateRequests = deployments * s.cap;
    }
    lines.push(line);
    console.log(JSON.stringify(line));
  }
  console.log(
    JSON.stringify({
      bench: 'judge',
      summary: true,
      seed: opts.seed,
      workers: opts.workers,
      ...(opts.pooled !== null ? { pooled: opts.pooled } : {}),
      pass: lines.every((l) => l.pass === true),
      passed: lines.filter((l) => l.pass === true).map((l) => l.scenario),
      missed: lines.filter((l) => l.pass !== true).map((l) => l.scenario),
      elapsedS: Math.round((performance.now() - started) / 100) / 10,
    }),
  );
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err instanceof UsageError ? err.message : err);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
} else {
  worker();
}
