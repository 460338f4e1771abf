import { RollgateError } from '../errors.js';
import type { PersistedState } from '../rollout/types.js';

export type { PersistedRoute, PersistedState } from '../rollout/types.js';

/** Where route state survives restarts (DESIGN.md `store/`). */
export interface StateStore {
  readonly kind: string;
  /** The saved state, or null when nothing was saved yet. Throws StoreError when it cannot be read. */
  load(): Promise<PersistedState | null>;
  save(state: PersistedState): Promise<void>;
}

/** A state that exists but cannot be used: the gateway does not start on it. */
export class StoreError extends RollgateError {
  override readonly name = 'StoreError';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ROLLGATE_UNUSABLE_STATE', message, options);
  }
}

export class MemoryStore implements StateStore {
  readonly kind = 'memory';
  #state: PersistedState | null = null;

  async load(): Promise<PersistedState | null> {
    return this.#state === null ? null : structuredClone(this.#state);
  }

  async save(state: PersistedState): Promise<void> {
    this.#state = structuredClone(state);
  }
}
