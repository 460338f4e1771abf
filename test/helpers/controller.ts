import type { RouteConfig } from '../../src/config/types.js';
import type { Outcome } from '../../src/proxy/outcome.js';
import { RouteController } from '../../src/rollout/route-controller.js';
import { Picker, trafficState } from '../../src/traffic/picker.js';
import { FakeClock } from './fake-clock.js';
import { config } from './servers.js';

/** One route's controller on a fake clock, with a picker of plain labels as the data plane. */
export function controllerOnFakeClock(route: Record<string, unknown>) {
  const clock = new FakeClock();
  const cfg = config([{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: 'http://127.0.0.1:9001' }, ...route }]).routes[0] as RouteConfig;
  const c0 = cfg.candidate;
  const picker = new Picker(cfg, trafficState<string>('v1-pool', 'v1', c0 === null ? null : `${c0.version}-pool`, c0?.version ?? null, c0?.weight ?? 0), () => 0.5);
  const c = new RouteController(cfg, {
    picker,
    now: clock.now,
    wallNow: clock.wallNow,
    timers: clock,
    publish: () => {},
    makeUpstream: (v) => `${v}-pool`,
  });
  /** One finished request of `role`, `latencyMs` long, ending now. */
  const outcome = (role: 'stable' | 'candidate', failed = false, latencyMs = 10): void => {
    const version = role === 'stable' ? c.state().stable.version : (c.state().candidate?.version ?? '?');
    c.observe({
      route: 'm',
      role,
      version,
      status: failed ? 500 : 200,
      failure: failed ? 'status' : 'none',
      latencyMs,
      ttfbMs: latencyMs / 2,
      startedAt: clock.t - latencyMs,
      streaming: false,
      replayed: false,
    } satisfies Outcome);
  };
  const wallIso = (msFromNow: number) => new Date(clock.wallNow() + msFromNow).toISOString();
  return { clock, cfg, c, picker, outcome, wallIso };
}
