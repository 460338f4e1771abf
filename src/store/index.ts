import { resolve } from 'node:path';
import type { StoreConfig } from '../config/types.js';
import { FileStore } from './file-store.js';
import { MemoryStore, StoreError, type StateStore } from './state-store.js';

/** The store `store:` asks for; `redis` is not available in this version. */
export function createStore(config: StoreConfig): StateStore {
  switch (config.kind) {
    case 'memory':
      return new MemoryStore();
    case 'file':
      return new FileStore(resolve(config.path));
    case 'redis':
      throw new StoreError('store.kind redis is shared state, not a file: start it with ReplicaSync');
  }
}

export { FileStore, MemoryStore, StoreError };
export type { StateStore };
