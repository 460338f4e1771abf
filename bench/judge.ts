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
import { referenceFields, targetOf } from './judge-reference.js';

/**
 * The judge's error rates, measured: seeded deployments of each scenario in judge-sim.ts under
 * DEFAULT_ROLLBACK, spread over worker threads; one JSON line per scenario, then a summary.
 * Each regression's line carries the fewest candidate requests Wald's SPRT would need at the
 * same alpha (judge-reference.ts) and the measured mean's ratio to it.
 */

const USAGE = `usage: judge.js [--deployments N] [--healthy N] [--seed S] [--scenario name] [--workers N] [--quick]
  [--tolerance X]  errorRate.tolerance for every scenario (default ${DEFAULT_ROLLBACK.errorRate.tolerance})
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
}

function rulesFor(tolerance: number | null): RollbackRules | undefined {
  return tolerance === null ? undefined : { ...DEFAULT_ROLLBACK, errorRate: { ...DEFAULT_ROLLBACK.errorRate, tolerance } };
}

interface Options {
  seed: number;
  tolerance: number | null;
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
  let chosen: readonly Scenario[] = SCENARIOS;
  if (values.scenario !== undefined) {
    try {
      chosen = [scenario(values.scenario)];
    } catch {
      throw new UsageError(USAGE);
    }
  }
  const tolerance = values.tolerance === undefined ? null : Number(values.tolerance);
  if (tolerance !== null && !(tolerance >= 1)) throw new UsageError(USAGE);
  return {
    seed,
    tolerance,
    workers: count(values.workers) ?? 1,
    runs: chosen.map((s) => ({ scenario: s, deployments: s.measure === 'falseRollbacks' ? healthy : regression })),
  };
}

class UsageError extends Error {}

/** Runs every job on a pool of workers; results come back in deployment order per scenario. */
async function runJobs(jobs: Job[], workers: number): Promise<Map<string, DeploymentResult[]>> {
  const results = new Map<string, DeploymentResult[]>();
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
          w.on('message', ({ job, out }: { job: Job; out: DeploymentResult[] }) => {
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
    const out: DeploymentResult[] = [];
    const rules = rulesFor(job.tolerance);
    for (let i = job.from; i < job.to; i++) out.push(simulateDeployment(s, deploymentSeed(job.seed, s.name, i), rules));
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
      jobs.push({ scenario: s.name, seed: opts.seed, from, to: Math.min(deployments, from + chunk), tolerance: opts.tolerance });
    }
    const t0 = performance.now();
    const results = (await runJobs(jobs, opts.workers)).get(s.name) ?? [];
    const elapsedS = (performance.now() - t0) / 1000;
    const sum = summarize(results);
    const rules = rulesFor(opts.tolerance) ?? DEFAULT_ROLLBACK;
    // A scaled healthy run keeps the rate of the full one: alpha x deployments false rollbacks.
    const target = s.measure === 'falseRollbacks' ? Math.floor(DEFAULT_ROLLBACK.alpha * deployments + 1e-9) : targetOf(s, rules);
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
