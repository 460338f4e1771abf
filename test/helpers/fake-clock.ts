import type { Timers } from '../../src/rollout/bake-timer.js';

/** A clock and timers that move only when a test says so. */
export class FakeClock implements Timers {
  t = 1_000;
  readonly wallStart = Date.parse('2026-12-02T12:00:00.000Z');
  #next = 0;
  #timers: { at: number; id: number; fn: () => void }[] = [];

  readonly now = (): number => this.t;
  readonly wallNow = (): number => this.wallStart + this.t;

  set(fn: () => void, ms: number): () => void {
    const id = this.#next++;
    this.#timers.push({ at: this.t + ms, id, fn });
    return () => {
      this.#timers = this.#timers.filter((x) => x.id !== id);
    };
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let first: { at: number; id: number; fn: () => void } | undefined;
      for (const x of this.#timers) if (x.at <= end && (first === undefined || x.at < first.at || (x.at === first.at && x.id < first.id))) first = x;
      if (first === undefined) break;
      const due = first;
      this.#timers = this.#timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}
