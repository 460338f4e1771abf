import pino from 'pino';
import cluster from 'node:cluster';
import { ConfigError, parseConfigText, readConfigText } from '../config/load.js';
import type { GatewayConfig } from '../config/types.js';
import { adminToken } from '../admin/auth.js';
import { openState, ownAlphaScale } from './serve-share.js';
import { applyMemoryProfile } from './memory-profile.js';
import type { Rollouts } from '../rollout/rollouts.js';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

/** Loads and validates a config file, printing every problem; null when it is invalid. */
export function loadOrReport(path: string, stderr: NodeJS.WritableStream): GatewayConfig | null {
  return loadTextOrReport(path, stderr)?.config ?? null;
}

/** loadOrReport, with the text the config was read from (which the workers are given). */
function loadTextOrReport(path: string, stderr: NodeJS.WritableStream): { config: GatewayConfig; text: string } | null {
  try {
    const text = readConfigText(path);
    return { config: parseConfigText(text, path), text };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`invalid config ${path}:\n`);
    for (const p of err.problems) stderr.write(`${p}\n`);
    return null;
  }
}

/**
 * `rollgate serve --config FILE`: runs the gateway until SIGTERM or SIGINT, then drains
 * in-flight requests (up to listen.drainTimeout) and resolves with the exit code.
 */
export async function serve(configPath: string): Promise<number> {
  // A process of `listen.workers`: its primary gives it the config it runs.
  if (cluster.isWorker) return (await import('./serve-worker.js')).serveWorker();
  const loaded = loadTextOrReport(configPath, process.stderr);
  if (loaded === null) return EXIT_USAGE;
  const { config, text } = loaded;
  const memory = applyMemoryProfile(config.listen.memory);
  if (config.listen.workers > 1) return (await import('./serve-primary.js')).servePrimary(config, { text, path: configPath }, memory);
  // Loaded once the config is known to be good, and the Redis client only for a Redis store:
  // a refused config exits at once, and a sidecar does not hold what it does not use.
  const [{ createRollgate }, { startAdmin }] = await Promise.all([import('../app.js'), import('../admin/server.js')]);
  const log = pino({ level: config.log.level, base: { service: 'rollgate' } });
  const { gateway, rollouts, metrics, hooks } = createRollgate(config, { logger: log, logRequests: log.isLevelEnabled('debug'), alphaScale: ownAlphaScale(config) });
  // Where route state lives: a file or memory (this replica alone), or Redis (shared by replicas).
  const state = await openState(config, rollouts as Rollouts<unknown>, hooks, log);
  if (state === null) {
    await gateway.close(0);
    return EXIT_REFUSED;
  }
  const { persister, shared } = state;
  try {
    const addr = await gateway.listen();
    log.info(
      { address: addr.address, port: addr.port, routes: config.routes.map((r) => r.name) },
      `data plane listening on ${addr.address}:${addr.port}`,
    );
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`cannot listen on ${config.listen.host}:${config.listen.port}: ${e.code ?? e.message}\n`);
    await gateway.close(0);
    return EXIT_REFUSED;
  }
  const { token, generated } = adminToken(process.env, config.admin.tokenEnv);
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  try {
    admin = await startAdmin({ config, rollouts, token, ready: () => !gateway.draining, metrics, log, ...(shared === null ? {} : { stateShared: () => shared.sync.shared }) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`cannot listen on ${config.admin.host}:${config.admin.port} (admin): ${e.code ?? e.message}\n`);
    await gateway.close(0);
    return EXIT_REFUSED;
  }
  log.info({ address: admin.address.address, port: admin.address.port }, `admin plane listening on ${admin.address.address}:${admin.address.port}`);
  memory.started();
  if (generated) {
    // Once, on stderr only: never into the JSON log.
    process.stderr.write(`${config.admin.tokenEnv} is not set; this run's admin token: ${token}\n`);
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal: stop waiting for in-flight requests.
        gateway.server.closeAllConnections();
        return;
      }
      stopping = true;
      log.info({ signal, drainTimeoutMs: config.listen.drainTimeoutMs }, 'shutting down: draining in-flight requests');
      void Promise.all([gateway.close(), admin.app.close()]).then(async () => {
        await persister.flush();
        shared?.fleet.close();
        await shared?.sync.close();
        log.info({}, 'stopped');
        resolve(EXIT_OK);
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
