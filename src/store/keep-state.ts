import { RollgateError } from '../errors.js';
import type { StoreConfig } from '../config/types.js';
import type { Rollouts } from '../rollout/rollouts.js';
import type { HookJob } from '../hooks/job.js';
import type { HookRunner } from '../hooks/runner.js';

/** The data hooks, as createRollgate gives them. */
export interface Hooks {
  runner: HookRunner;
  start(saved?: readonly HookJob[]): void;
}
import { createStore } from './index.js';
import { Persister } from './persister.js';

/** The part of a pino (or Fastify) logger the saved state reports to. */
export interface StateLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Restores the routes' saved state from a `memory` or `file` store and saves every change after
 * it (`rollgate serve` and the Fastify plugin). Throws StoreError when the saved state cannot be
 * used. `redis` is refused: replicas sharing state need the sync and fleet evidence that only
 * `rollgate serve` runs, and a gateway that silently kept its state to itself would judge with
 * the wrong alpha.
 */
export async function keepState(config: StoreConfig, rollouts: Rollouts<unknown>, log: StateLogger, hooks?: Hooks): Promise<{ flush(): Promise<void> }> {
  if (config.kind === 'redis') {
    throw new RollgateError('ROLLGATE_INVALID_CONFIG', 'store.kind: redis is not supported by the Fastify plugin: run replicas that share state with `rollgate serve`');
  }
  const store = createStore(config);
  const saved = await store.load();
  if (saved !== null) log.info({ store: config, routes: rollouts.restore(saved) }, 'route state restored');
  const snapshot = hooks === undefined ? () => rollouts.persisted() : () => ({ ...rollouts.persisted(), hooks: hooks.runner.jobs() });
  const persister = new Persister(store, snapshot, (err) =>
    log.error({ err: err.message, store: config.kind }, 'route state not saved; will retry on the next change'),
  );
  rollouts.on('persist', () => persister.changed());
  persister.changed();
  if (hooks !== undefined) {
    // A job is written to the store before it runs and after every attempt.
    hooks.runner.attachStore(() => {
      persister.changed();
      return persister.flush();
    });
    hooks.start(saved?.hooks ?? []);
  }
  return persister;
}
