import cluster from 'node:cluster';
import pino from 'pino';
import { adminToken } from '../admin/auth.js';
import type { GatewayConfig } from '../config/types.js';
import { FleetMetrics } from '../metrics/fleet-metrics.js';
import type { Rollouts } from '../rollout/rollouts.js';
import { ALPHA_SPLIT, HUB_HOLDER, joinShared, ownAlphaScale, openState, type Shared } from './serve-share.js';
import { WorkerPool } from './worker-pool.js';
import type { AppliedProfile } from './memory-profile.js';
import { FleetWindows } from './worker-windows.js';

const EXIT_OK = 0;
const EXIT_REFUSED = 1;

/**
 * `rollgate serve` with `listen.workers` above 1: this process (the primary) holds the port for
 * its workers, the admin plane, the store and the routes' state (a hub every worker shares, or
 * Redis), runs the fleet's tests on every worker's evidence and the data hooks, and serves the
 * fleet's /metrics. Its own gateway never listens: it carries the state the admin plane steers.
 */
export async function servePrimary(config: GatewayConfig, setup: { text: string; path: string }, memory: AppliedProfile): Promise<number> {
  const [{ createRollgate }, { startAdmin }, { SharedHub }] = await Promise.all([import('../app.js'), import('../admin/server.js'), import('../store/shared-hub.js')]);
  const log = pino({ level: config.log.level, base: { service: 'rollgate' } });
  const redis = config.store.kind === 'redis';
  const { gateway, rollouts, metrics, hooks } = createRollgate(config, { logger: log, alphaScale: ownAlphaScale(config), ...(redis ? {} : { workers: 'primary' as const }) });
  const state = await openState(config, rollouts as Rollouts<unknown>, hooks, log);
  if (state === null) {
    await gateway.close(0);
    return EXIT_REFUSED;
  }
  const persister = state.persister;
  let shared: Shared;
  let hub: InstanceType<typeof SharedHub> | null = null;
  if (state.shared !== null) shared = state.shared;
  else {
    hub = new SharedHub();
    // The primary runs the fleet's tests: it takes every lease it asks for.
    hub.prefer(HUB_HOLDER);
    shared = await joinShared(rollouts as Rollouts<unknown>, hub.client(), log, HUB_HOLDER, ALPHA_SPLIT.workers);
  }
  const fleetMetrics = new FleetMetrics(metrics.registry, () => pool.listening());
  // The admin view's windows (and the window gauges) are the workers', merged.
  const windows = new FleetWindows();
  windows.showIn(rollouts as Rollouts<unknown>);
  const pool = new WorkerPool({
    cluster,
    count: config.listen.workers,
    setup,
    hub,
    log,
    onExit: (id) => {
      fleetMetrics.retire(id);
      windows.forget(id);
    },
    onMessage: (id, m) => windows.receive(id, m),
  });
  const started = await pool.start();
  const closeState = async (): Promise<void> => {
    await persister.flush();
    shared.fleet.close();
    await shared.sync.close();
    await gateway.close(0);
  };
  if (typeof started === 'string') {
    process.stderr.write(`${started}\n`);
    await pool.stop(1_000);
    await closeState();
    return EXIT_REFUSED;
  }
  log.info(
    { address: started.address, port: started.port, workers: config.listen.workers, pids: pool.pids(), routes: config.routes.map((r) => r.name) },
    `data plane listening on ${started.address}:${started.port} (${config.listen.workers} workers)`,
  );
  let stopping = false;
  const { token, generated } = adminToken(process.env, config.admin.tokenEnv);
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  try {
    admin = await startAdmin({ config, rollouts, token, ready: () => !stopping && pool.size > 0, metrics: fleetMetrics, log, ...(redis ? { stateShared: () => shared.sync.shared } : {}) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`cannot listen on ${config.admin.host}:${config.admin.port} (admin): ${e.code ?? e.message}\n`);
    await pool.stop(1_000);
    await closeState();
    return EXIT_REFUSED;
  }
  log.info({ address: admin.address.address, port: admin.address.port }, `admin plane listening on ${admin.address.address}:${admin.address.port}`);
  memory.started();
  if (generated) process.stderr.write(`${config.admin.tokenEnv} is not set; this run's admin token: ${token}\n`);
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, drainTimeoutMs: config.listen.drainTimeoutMs }, 'shutting down: the workers drain in-flight requests');
      // Each worker drains for up to drainTimeout; one that is still there a little later is killed.
      void Promise.all([pool.stop(config.listen.drainTimeoutMs + 5_000), admin.app.close()]).then(async () => {
        await closeState();
        log.info({}, 'stopped');
        resolve(EXIT_OK);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
