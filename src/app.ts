import type { GatewayConfig } from './config/types.js';
import { Gateway, type GatewayLogger } from './proxy/gateway.js';
import type { OutcomeSink } from './proxy/outcome.js';
import { Upstream } from './proxy/upstream.js';
import { Rollouts } from './rollout/rollouts.js';
import { warmUpRollbackPath } from './rollout/warm-up.js';
import type { Rng } from './traffic/picker.js';

/** How often in-flight requests are checked against the latency thresholds. */
export const SWEEP_INTERVAL_MS = 20;

export interface RollgateOptions {
  rng?: Rng;
  logger?: GatewayLogger & { info(obj: object, msg: string): void };
  /** Also receives every outcome, after the judge (tests and benchmarks). */
  onOutcome?: OutcomeSink;
}

export interface Rollgate {
  gateway: Gateway;
  rollouts: Rollouts<Upstream>;
}

/**
 * Wires the data plane to the rollouts: every outcome goes to its route's judge, and every state
 * change is logged once at info with its evidence.
 */
export function createRollgate(config: GatewayConfig, options: RollgateOptions = {}): Rollgate {
  let rollouts: Rollouts<Upstream> | null = null;
  const extra = options.onOutcome;
  const sink: OutcomeSink =
    extra === undefined
      ? (o) => rollouts!.observe(o)
      : (o) => {
          rollouts!.observe(o);
          extra(o);
        };
  const gateway = new Gateway(config, { onOutcome: sink, ...(options.rng ? { rng: options.rng } : {}), ...(options.logger ? { logger: options.logger } : {}) });
  rollouts = new Rollouts(
    [...gateway.routes.values()].map((r) => ({
      config: r.config,
      picker: r.picker,
      makeUpstream: (version: string, url: string) => new Upstream({ version, url }, r.config.timeouts),
      retire: (u: Upstream) => void u.close(),
    })),
    () => performance.now(),
  );
  const first = config.routes[0];
  if (first !== undefined) warmUpRollbackPath(first);
  // Requests still waiting for an answer are judged as soon as they pass the latency thresholds.
  const sweep = setInterval(() => {
    for (const route of gateway.routes.values()) rollouts!.route(route.name)?.sweepInFlight(route.inflight);
  }, SWEEP_INTERVAL_MS);
  sweep.unref();
  gateway.server.once('close', () => clearInterval(sweep));
  const log = options.logger;
  if (log !== undefined) {
    rollouts.subscribe((event) => log.info({ event }, event.message));
  }
  return { gateway, rollouts };
}
