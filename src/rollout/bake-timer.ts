/** Where a controller gets its timers: real ones in the gateway, a fake clock in the tests. */
export interface Timers {
  /** Calls `fn` once after `ms`; returns the cancel. */
  set(fn: () => void, ms: number): () => void;
}

export const REAL_TIMERS: Timers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/**
 * One bake: a duration that runs out unless cancelled, and that can be held (its remaining time
 * kept) and continued. The clock is the controller's monotonic one.
 */
export class BakeTimer {
  readonly #timers: Timers;
  readonly #now: () => number;
  #cancel: (() => void) | null = null;
  #endsAt = 0;
  #remainingMs: number | null = null;
  #onEnd: (() => void) | null = null;

  constructor(timers: Timers, now: () => number) {
    this.#timers = timers;
    this.#now = now;
  }

  /** Starts a bake of `ms` (replacing any other). */
  start(ms: number, onEnd: () => void): void {
    this.stop();
    this.#onEnd = onEnd;
    this.#run(ms);
  }

  /** Holds the clock: the remaining time is kept. */
  hold(): void {
    if (this.#cancel === null) return;
    this.#cancel();
    this.#cancel = null;
    this.#remainingMs = Math.max(0, this.#endsAt - this.#now());
  }

  /** Continues a held bake for its remaining time. */
  continue(): void {
    if (this.#remainingMs === null || this.#onEnd === null) return;
    this.#run(this.#remainingMs);
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = null;
    this.#remainingMs = null;
    this.#onEnd = null;
  }

  get running(): boolean {
    return this.#cancel !== null;
  }

  get held(): boolean {
    return this.#remainingMs !== null;
  }

  /** When the running bake ends (the controller's clock), or null when none runs. */
  get endsAt(): number | null {
    return this.#cancel === null ? null : this.#endsAt;
  }

  /** What is left of the bake: running or held; null when there is none. */
  remainingMs(): number | null {
    if (this.#cancel !== null) return Math.max(0, this.#endsAt - this.#now());
    return this.#remainingMs;
  }

  #run(ms: number): void {
    this.#remainingMs = null;
    this.#endsAt = this.#now() + ms;
    const onEnd = this.#onEnd;
    this.#cancel = this.#timers.set(() => {
      this.#cancel = null;
      this.#onEnd = null;
      onEnd?.();
    }, ms);
  }
}
