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
  readonly #wallNow: () => number;
  #cancel: (() => void) | null = null;
  #endsAt = 0;
  #endsAtWall = 0;
  #remainingMs: number | null = null;
  #onEnd: (() => void) | null = null;

  constructor(timers: Timers, now: () => number, wallNow: () => number = Date.now) {
    this.#timers = timers;
    this.#now = now;
    this.#wallNow = wallNow;
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

  /**
   * When the running bake ends on the wall clock (ms since the epoch), fixed when it started, so
   * that the state reads the same deadline every time; null when none runs.
   */
  get endsAtWall(): number | null {
    return this.#cancel === null ? null : this.#endsAtWall;
  }

  /** What is left of the bake: running or held; null when there is none. */
  remainingMs(): number | null {
    if (this.#cancel !== null) return Math.max(0, this.#endsAt - this.#now());
    return this.#remainingMs;
  }

  #run(ms: number): void {
    this.#remainingMs = null;
    this.#endsAt = this.#now() + ms;
    this.#endsAtWall = this.#wallNow() + ms;
    const onEnd = this.#onEnd;
    this.#cancel = this.#timers.set(() => {
      this.#cancel = null;
      this.#onEnd = null;
      onEnd?.();
    }, ms);
  }
}
