import type { HookEvent } from '../config/types.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import type { Timers } from '../rollout/bake-timer.js';
import type { Rollouts } from '../rollout/rollouts.js';
import type { RouteEvent, RouteState } from '../rollout/types.js';
import type { HookJob } from './job.js';
import { HookRunner, type HookChange, type HookRunnerOptions } from './runner.js';

/**
 * Which event a state change starts hooks for. A peer's change is the deciding replica's to run,
 * except in the primary of `listen.workers`, which runs the hooks of its workers' changes.
 */
function hookEventOf(e: RouteEvent, workersPeers: boolean): HookEvent | null {
  if (e.cause === 'peer' && (!workersPeers || e.peerCause === undefined || e.peerCause === 'peer')) return null;
  if (e.type === 'deploy') return 'beforeTraffic';
  if (e.type === 'rollback') return 'afterRollback';
  if (e.type === 'promote') return 'afterPromote';
  return null;
}

const WORDS: Record<HookChange, string> = { attempt: 'attempt {n} started', attempt_failed: 'attempt {n} failed', done: 'done after {n} attempts', failed: 'failed after {n} attempts' };

/**
 * The data hooks of every route (SPEC §9), wired to the rollouts: a deploy starts the candidate's
 * beforeTraffic hooks, every rollback (a trip, a manual rollback, a rollback to a revision) the
 * afterRollback hooks, a promote the afterPromote hooks, each after the change took effect. Each
 * job's progress goes to the route's history and state, and to the metrics; a failed one is
 * notified. `start()` takes the saved jobs once the routes' state is restored.
 */
export function wireHooks(rollouts: Rollouts<unknown>, metrics: MetricsRecorder, options: { timers?: Timers; backoffMs?: HookRunnerOptions['backoffMs']; workers?: 'primary' | 'worker' } = {}) {
  const runner = new HookRunner({
    actions: (route, event) => rollouts.route(route)?.config.hooks[event] ?? [],
    ...(options.timers ? { timers: options.timers } : {}),
    ...(options.backoffMs ? { backoffMs: options.backoffMs } : {}),
    onChange: (job, change, ms) => {
      const controller = rollouts.route(job.route);
      const words = WORDS[change].replace('{n}', String(job.attempts));
      const why = job.lastError === null || change === 'done' || change === 'attempt' ? '' : `: ${job.lastError}`;
      controller?.hookProgress(job, `${job.event} hook for revision ${job.revision} (${job.version}, data ${job.dataSnapshot ?? 'none'}) ${words}${why}`);
      if (change !== 'attempt') metrics.hooks.record(job.route, job.event, change === 'attempt_failed' ? 'retry' : change, ms / 1000);
    },
  });
  // The workers of `listen.workers` run no hook: their primary runs every one, once.
  if (options.workers !== 'worker') {
    rollouts.on('hooks', (e, state) => {
      const event = hookEventOf(e, options.workers === 'primary');
      if (event !== null) runner.enqueue(facts(event, e.cause === 'peer' && e.peerCause !== undefined ? { ...e, cause: e.peerCause } : e, state));
    });
  }
  /** Takes the saved jobs and starts what is due, including the beforeTraffic hooks of a candidate the config declared. */
  const start = (saved: readonly HookJob[] = []): void => {
    runner.restore(saved);
    for (const c of rollouts.routes()) {
      const revision = c.awaitingData;
      if (revision === null || runner.jobs().some((j) => j.route === c.name && j.event === 'beforeTraffic' && j.revision === revision && (j.state === 'pending' || j.state === 'running'))) continue;
      const s = c.state();
      if (s.candidate === null) continue;
      runner.enqueue({ ...common(s), event: 'beforeTraffic', revision: s.candidate.revision, version: s.candidate.version, dataSnapshot: s.candidate.data?.snapshot ?? null, reason: 'config', evidence: null });
    }
  };
  return { runner, start };
}

function common(s: RouteState) {
  return { route: s.name, fromVersion: s.stable.version, fromDataSnapshot: s.stable.data?.snapshot ?? null };
}

/** A job's facts from the event that starts it: the version serving after it, and the one before. */
function facts(event: HookEvent, e: RouteEvent, s: RouteState) {
  const evidence = (e.evidence ?? null) as Record<string, unknown> | null;
  if (event === 'beforeTraffic') {
    const c = s.candidate;
    return { ...common(s), event, revision: c?.revision ?? 0, version: c?.version ?? '', dataSnapshot: c?.data?.snapshot ?? null, reason: e.cause, evidence };
  }
  const from = e.from ?? null;
  return {
    route: s.name,
    event,
    revision: s.stable.revision,
    version: s.stable.version,
    dataSnapshot: s.stable.data?.snapshot ?? null,
    fromVersion: from?.version ?? null,
    fromDataSnapshot: from?.data?.snapshot ?? null,
    reason: e.cause,
    evidence,
  };
}
