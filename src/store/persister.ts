import type { PersistedState, StateStore } from './state-store.js';

/**
 * Saves the state after each change, one write at a time: a change during a write marks the
 * state dirty and the latest state is written next, so no change is lost and writes never pile
 * up. Failures are reported and retried with the next change or flush; they never touch routing.
 */
export class Persister {
  readonly #store: StateStore;
  readonly #snapshot: () => PersistedState;
  readonly #onError: (err: Error) => void;
  #writing: Promise<void> | null = null;
  #dirty = false;

  constructor(store: StateStore, snapshot: () => PersistedState, onError: (err: Error) => void) {
    this.#store = store;
    this.#snapshot = snapshot;
    this.#onError = onError;
  }

  /** Schedules a save of the current state. */
  changed(): void {
    this.#dirty = true;
    if (this.#writing === null) this.#writing = this.#drain();
  }

  /** Resolves once everything changed so far is written. */
  async flush(): Promise<void> {
    if (this.#writing === null && this.#dirty) this.#writing = this.#drain();
    await this.#writing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        try {
          await this.#store.save(this.#snapshot());
        } catch (err) {
          this.#onError(err as Error);
          break;
        }
      }
    } finally {
      this.#writing = null;
    }
  }
}
