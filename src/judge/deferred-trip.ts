import type { Trip, TripReason } from './decide.js';

/**
 * A trip whose evidence (window snapshots and the sentence) is built on first read: the caller
 * swaps the weights first and reads the evidence after, so the rollback waits for nothing.
 */
export class DeferredTrip implements Trip {
  readonly reason: TripReason;
  readonly at: number;
  #built: Trip | null = null;
  #build: (() => Trip) | null;

  constructor(reason: TripReason, at: number, build: () => Trip) {
    this.reason = reason;
    this.at = at;
    this.#build = build;
  }

  get message(): string {
    return this.#get().message;
  }

  get evidence(): Trip['evidence'] {
    return this.#get().evidence;
  }

  toJSON(): Trip {
    return { reason: this.reason, at: this.at, message: this.message, evidence: this.evidence };
  }

  #get(): Trip {
    if (this.#built === null) {
      this.#built = (this.#build as () => Trip)();
      this.#build = null;
    }
    return this.#built;
  }
}
