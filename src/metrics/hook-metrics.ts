import { Counter, Histogram, type Registry } from 'prom-client';
import { HOOK_EVENTS, type HookEvent } from '../config/types.js';

/** How a data hook ended, or a failed attempt that will be tried again. */
export const HOOK_OUTCOMES = ['done', 'failed', 'retry'] as const;
export type HookOutcome = (typeof HOOK_OUTCOMES)[number];

/**
 * `rollgate_hook_runs_total{route,event,outcome}` and `rollgate_hook_duration_seconds{route,event}`
 * (SPEC §9). The runs of every route that has hooks start at 0 for every event and outcome, so
 * the first failure is a change that `increase()` sees.
 */
export class HookMetrics {
  readonly #runs: Counter<'route' | 'event' | 'outcome'>;
  readonly #duration: Histogram<'route' | 'event'>;

  constructor(registry: Registry, routesWithHooks: () => readonly string[]) {
    this.#runs = new Counter({
      name: 'rollgate_hook_runs_total',
      help: 'Data hook jobs by route, event and outcome: done, failed (given up), retry (an attempt failed and will be tried again).',
      labelNames: ['route', 'event', 'outcome'],
      registers: [registry],
      collect() {
        for (const route of routesWithHooks()) for (const event of HOOK_EVENTS) for (const outcome of HOOK_OUTCOMES) this.inc({ route, event, outcome }, 0);
      },
    });
    this.#duration = new Histogram({
      name: 'rollgate_hook_duration_seconds',
      help: 'Data hook jobs from their first attempt to done or failed, by route and event.',
      labelNames: ['route', 'event'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    });
  }

  /** A job ended (done, failed) or an attempt failed (retry); `seconds` for an ended job. */
  record(route: string, event: HookEvent, outcome: HookOutcome, seconds: number): void {
    this.#runs.inc({ route, event, outcome });
    if (outcome !== 'retry') this.#duration.observe({ route, event }, seconds);
  }
}
