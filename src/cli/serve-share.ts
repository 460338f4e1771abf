import type { GatewayConfig } from '../config/types.js';
import type { Hooks } from '../store/keep-state.js';
import type { FleetEvidence } from '../store/fleet-evidence.js';
import type { ReplicaSync } from '../store/replica-sync.js';
import type { Rollouts } from '../rollout/rollouts.js';
import type { SharedState } from '../store/shared-state.js';

/** The part of a pino logger the shared state reports to. */
export interface ShareLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A process's part in shared route state: the sync of its changes and the fleet's pooled tests. */
export interface Shared {
  sync: ReplicaSync<unknown>;
  fleet: FleetEvidence<unknown>;
}

/**
 * Joins the processes that act as one through `state` (Redis, or the hub of a `listen.workers`
 * primary): loads the shared route state (before the data plane listens), follows it, and shares
 * this process's evidence. `id` names this process in the records (random when not given).
 */
export async function joinShared(rollouts: Rollouts<unknown>, state: SharedState, log: ShareLog, id?: string): Promise<Shared & { outcome: Record<string, string> }> {
  const [{ ReplicaSync }, { FleetEvidence }] = await Promise.all([import('../store/replica-sync.js'), import('../store/fleet-evidence.js')]);
  const sync = new ReplicaSync(rollouts, state, log, id);
  const outcome = await sync.start();
  const fleet = new FleetEvidence(rollouts, state, sync.id, 0.5, { log });
  await fleet.start();
  return { sync, fleet, outcome };
}

/** `store: redis`: route state, evidence and hook jobs shared with the other replicas through Redis. */
export async function shareThroughRedis(config: GatewayConfig, rollouts: Rollouts<unknown>, hooks: Hooks, log: ShareLog): Promise<Shared> {
  if (config.store.kind !== 'redis') throw new Error('shareThroughRedis needs store.kind redis');
  const [{ RedisState }, { RedisHooks }] = await Promise.all([import('../store/redis-state.js'), import('../store/redis-hooks.js')]);
  const redis = new RedisState(config.store.url, config.store.prefix);
  const { sync, fleet, outcome } = await joinShared(rollouts, redis, log);
  log.info({ store: { kind: 'redis', url: config.store.url, prefix: config.store.prefix }, replica: sync.id, routes: outcome }, 'route state shared through redis');
  // Hook jobs are shared in Redis: one replica runs each, another takes it over if it dies.
  hooks.runner.share(new RedisHooks(redis, sync.id));
  hooks.start();
  return { sync, fleet };
}

/**
 * Each rule's alpha, split between the processes' own tests and the fleet's pooled tests (see
 * the README): half for the fleet's, the other half over at most `maxReplicas` Redis replicas,
 * or over the `listen.workers` of one gateway sharing state through its primary.
 */
export function ownAlphaScale(config: GatewayConfig): number {
  if (config.store.kind === 'redis') return 1 / (2 * config.store.maxReplicas);
  return config.listen.workers > 1 ? 1 / (2 * config.listen.workers) : 1;
}
