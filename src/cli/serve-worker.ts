import cluster from 'node:cluster';
import pino from 'pino';
import { parseConfigText } from '../config/load.js';
import type { Rollouts } from '../rollout/rollouts.js';
import { answerMetricRequests } from '../metrics/fleet-metrics.js';
import { hubClient, type IpcChannel } from '../store/hub-ipc.js';
import { ALPHA_SPLIT, joinShared, ownAlphaScale, shareThroughRedis, type Shared } from './serve-share.js';
import { sendWindows } from './worker-windows.js';
import { applyMemoryProfile } from './memory-profile.js';
import { isWorkerMessage, WORKER_TAG, type FromWorker, type ToWorker, type WorkerSetup } from './worker-protocol.js';

const channel = process as unknown as IpcChannel;

function send(m: FromWorker): void {
  if (channel.connected) channel.send(m);
}

/** The config the primary gives this worker, asked for once this worker listens for it. */
function setup(): Promise<WorkerSetup['setup']> {
  return new Promise((resolve) => {
    const onMessage = (raw: unknown): void => {
      if (!isWorkerMessage<ToWorker>(raw) || !('setup' in raw)) return;
      channel.off('message', onMessage);
      resolve(raw.setup);
    };
    channel.on('message', onMessage);
    send({ t: WORKER_TAG, hello: true });
  });
}

/**
 * One data-plane process of `listen.workers`: the gateway on the shared port, with the routes'
 * state shared through the primary's hub (or Redis, as one replica of many). It takes the shared
 * state before it listens, judges its own traffic at its share of alpha, and sends its evidence
 * to the fleet's tests. It stops (draining) when the primary says so, on SIGTERM or SIGINT, or
 * when the primary is gone.
 */
export async function serveWorker(): Promise<number> {
  const { text, path } = await setup();
  const config = parseConfigText(text, path);
  const memory = applyMemoryProfile(config.listen.memory);
  const { createRollgate } = await import('../app.js');
  const log = pino({ level: config.log.level, base: { service: 'rollgate', worker: cluster.worker?.id ?? 0 } });
  const redis = config.store.kind === 'redis';
  const { gateway, rollouts, metrics, hooks } = createRollgate(config, { logger: log, logRequests: log.isLevelEnabled('debug'), alphaScale: ownAlphaScale(config), ...(redis ? {} : { workers: 'worker' as const }) });
  answerMetricRequests(metrics.registry, channel);
  const stopWindows = sendWindows(rollouts as Rollouts<unknown>, channel);
  const shared: Shared = redis ? await shareThroughRedis(config, rollouts as Rollouts<unknown>, hooks, log) : await joinShared(rollouts as Rollouts<unknown>, hubClient(channel), log, `worker${cluster.worker?.id ?? 0}`, ALPHA_SPLIT.workers);
  try {
    const addr = await gateway.listen();
    send({ t: WORKER_TAG, listening: { address: addr.address, port: addr.port } });
    memory.started();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    send({ t: WORKER_TAG, failed: `cannot listen on ${config.listen.host}:${config.listen.port}: ${e.code ?? e.message}` });
    await gateway.close(0);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) {
        gateway.server.closeAllConnections();
        return;
      }
      stopping = true;
      stopWindows();
      void gateway.close().then(async () => {
        await shared.sync.flush();
        shared.fleet.close();
        await shared.sync.close();
        resolve(0);
        // The IPC channel would keep this process alive; whatever else might is given 2 s.
        if (channel.connected) process.disconnect();
        setTimeout(() => process.exit(0), 2_000).unref();
      });
    };
    channel.on('message', (raw: unknown) => {
      if (isWorkerMessage<ToWorker>(raw) && 'stop' in raw) stop();
    });
    channel.on('disconnect', stop);
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
