import type { RouteConfig } from '../config/types.js';
import type { Outcome } from '../proxy/outcome.js';
import { Picker, trafficState } from '../traffic/picker.js';
import { RouteController } from './route-controller.js';

/**
 * Runs the judge and the rollback path on synthetic traffic a few times at start. A trip is rare,
 * so in a long-running process its code would otherwise be cold (not yet compiled, or compiled
 * without that branch) exactly when it matters; warmed, the deciding sample to the new weights
 * takes microseconds instead of a few hundred.
 */
export function warmUpRollbackPath(template: RouteConfig, rounds = 6): void {
  const config: RouteConfig = { ...template, name: '__warm-up__', candidate: { version: 'b', url: 'http://127.0.0.1:9', weight: 10, data: null } };
  let t = 0;
  const now = (): number => t;
  const outcome = {
    route: config.name, role: 'stable', version: 'a', status: 200, failure: 'none', latencyMs: 10, ttfbMs: 5,
    startedAt: 0, streaming: false, replayed: false, slowMask: 0,
  } as { -readonly [K in keyof Outcome]: Outcome[K] };
  for (let r = 0; r < rounds; r++) {
    const picker = new Picker(config, trafficState('a', 'a', 'b', 'b', 10), () => 0.5);
    const controller = new RouteController(config, { picker, now, publish: () => {} });
    // Alternate the way it trips: hard failures, then slow answers.
    const slow = r % 2 === 1;
    for (let i = 0; i < 5_000 && controller.phase !== 'rolled_back'; i++) {
      t += 1;
      const candidate = i % 10 === 0;
      const bad = candidate && i > 1_000;
      outcome.role = candidate ? 'candidate' : 'stable';
      outcome.version = candidate ? 'b' : 'a';
      outcome.failure = bad && !slow ? 'status' : 'none';
      outcome.status = bad && !slow ? 500 : 200;
      outcome.latencyMs = bad && slow ? 40 + (i % 13) : 10 + (i % 7);
      outcome.startedAt = t - outcome.latencyMs;
      controller.observe(outcome);
    }
    void controller.state();
  }
}
