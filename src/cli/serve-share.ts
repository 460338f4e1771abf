import type { GatewayConfig } from '../config/types.js';
import type { Hooks } from '../store/keep-state.js';
import type { FleetEvidence } from '../store/fleet-evidence.js';
import type { ReplicaSync } from '../store/replica-sync.js';
import type { Rollouts } from '../rollout/rollouts.js';
import type { SharedState } from '../store/shared-state.js';

/** The id the primary of `listen.workers` joins its hub with: the one process that takes the fleet's leases. */
export const HUB_HOLDER = 'primary';

/** The part of a pino logger the shared state reports to. */
export interface ShareLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * How each rule's alpha is split between the fleet's pooled test and the processes' own tests,
 * and how often each process hands its evidence over. The shares sum to 1 (the fleet's, and the
 * processes' own split evenly over at most `maxReplicas` or `listen.workers`), so that, by the
 * union bound, a healthy candidate is rolled back by any of the tests with probability at most
 * the rule's alpha.
 *
 * Redis replicas keep half for their own tests: the fleet's test hangs on Redis and on a lease
 * that moves between replicas (each term afresh at a part of the fleet's share), and the
 * evidence channel drops messages while a replica reconnects. The workers of one gateway share
 * the fleet's test in their primary, the sole lease holder (one term, the whole share), over IPC
 * on one host, and die with it: the fleet's test takes most of the alpha, so that the pooled
 * evidence trips a regression in about as few candidate requests as one process seeing all the
 * traffic (`bench:judge --pooled`: 1% -> 5% failures over 2 workers at 1,000 req/s, 1.07x to
 * 1.09x its mean over four seeds, against 1.19x to 1.21x with Redis's split). What the fleet's
 * test does not pool (the checks' own kinds, time per output token, agreement) is left to the
 * workers' own tests at their smaller shares, and takes longer to decide. Evidence is handed
 * over every 100 ms: shorter intervals hand over so few requests that each one's traffic share,
 * measured on it alone, weakens the fleet's test at a thousand requests a second; longer ones
 * delay it at more.
 */
export const ALPHA_SPLIT: Readonly<Record<'redis' | 'workers', EvidenceSplit>> = Object.freeze({
  redis: Object.freeze({ fleetShare: 0.5, soleHolder: false }),
  workers: Object.freeze({ fleetShare: 0.8, intervalMs: 100, soleHolder: true }),
});

export interface EvidenceSplit {
  /** The fleet's test's share of each rule's alpha; the processes' own tests share the rest. */
  fleetShare: number;
  /** How often each process hands its evidence over; EVIDENCE_INTERVAL_MS (250) unless set. */
  intervalMs?: number;
  /** The one process that holds the fleet's leases (HUB_HOLDER) runs one term at the whole fleet share. */
  soleHolder: boolean;
}

/** A process's part in shared route state: the sync of its changes and the fleet's pooled tests. */
export interface Shared {
  sync: ReplicaSync<unknown>;
  fleet: FleetEvidence<unknown>;
}

/**
 * Joins the processes that act as one through `state` (Redis, or the hub of a `listen.workers`
 * primary): loads the shared route state (before the data plane listens), follows it, and shares
 * this process's evidence. `id` names this process in the records (random when not given);
 * `split` is ALPHA_SPLIT's for the kind of sharing.
 */
export async function joinShared(
  rollouts: Rollouts<unknown>,
  state: SharedState,
  log: ShareLog,
  id?: string,
  split: EvidenceSplit = ALPHA_SPLIT.redis,
): Promise<Shared & { outcome: Record<string, string> }> {
  const [{ ReplicaSync }, { FleetEvidence }] = await Promise.all([import('../store/replica-sync.js'), import('../store/fleet-evidence.js')]);
  const sync = new ReplicaSync(rollouts, state, log, id);
  const outcome = await sync.start();
  const fleet = new FleetEvidence(rollouts, state, sync.id, split.fleetShare, { log, soleHolder: split.soleHolder && id === HUB_HOLDER });
  await fleet.start(split.intervalMs);
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
 * Each process's own share of each rule's alpha (ALPHA_SPLIT): what the fleet's test leaves,
 * over at most `maxReplicas` Redis replicas, or over the `listen.workers` of one gateway sharing
 * state through its primary.
 */
export function ownAlphaScale(config: GatewayConfig): number {
  if (config.store.kind === 'redis') return (1 - ALPHA_SPLIT.redis.fleetShare) / config.store.maxReplicas;
  return config.listen.workers > 1 ? (1 - ALPHA_SPLIT.workers.fleetShare) / config.listen.workers : 1;
}

/**
 * Where route state lives for `rollgate serve` (the one process, or the primary of
 * `listen.workers`): Redis, shared by replicas; or a file or memory, kept by this process. Null
 * when the saved state cannot be used (said on stderr; the caller exits 1).
 */
export async function openState(config: GatewayConfig, rollouts: Rollouts<unknown>, hooks: Hooks, log: ShareLog & { error(obj: object, msg: string): void }): Promise<{ persister: { flush(): Promise<void> }; shared: Shared | null } | null> {
  if (config.store.kind === 'redis') {
    const shared = await shareThroughRedis(config, rollouts, hooks, log);
    return { persister: shared.sync, shared };
  }
  const [{ keepState }, { StoreError }] = await Promise.all([import('../store/keep-state.js'), import('../store/index.js')]);
  try {
    return { persister: await keepState(config.store, rollouts, log, hooks), shared: null };
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return null;
  }
}
