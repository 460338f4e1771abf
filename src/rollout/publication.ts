import type { RouteEvent, RouteState } from './types.js';

type Publish = (event: RouteEvent, state: RouteState) => void;

/**
 * A route's events on their way to the subscribers (AFTER_CHANGE), in the order of the changes,
 * always after the change took effect and off the call stack that made it: a slow or throwing
 * subscriber cannot touch a swap. Events go out on the next turn of the loop (setImmediate), but
 * a trip's go out as soon as the call that delivered the deciding outcome returns (nextTick),
 * after any event still waiting: the write that carries the trip to the other processes (the
 * persist stage) then waits for no other I/O callback of this turn of a busy loop.
 */
export class Publication {
  readonly #publish: Publish;
  readonly #queue: [RouteEvent, RouteState][] = [];
  #immediate = false;
  #tick = false;

  constructor(publish: Publish) {
    this.#publish = publish;
  }

  /** On the next turn of the loop. */
  later(event: RouteEvent, state: RouteState): void {
    this.#queue.push([event, state]);
    if (this.#immediate) return;
    this.#immediate = true;
    setImmediate(this.#onImmediate);
  }

  /** Once the current call stack has returned, with every event before it. */
  soon(event: RouteEvent, state: RouteState): void {
    this.#queue.push([event, state]);
    if (this.#tick) return;
    this.#tick = true;
    process.nextTick(this.#onTick);
  }

  readonly #onImmediate = (): void => {
    this.#immediate = false;
    this.#drain();
  };

  readonly #onTick = (): void => {
    this.#tick = false;
    this.#drain();
  };

  #drain(): void {
    // The events waiting now; one a subscriber makes meanwhile is scheduled by its own push.
    for (const [event, state] of this.#queue.splice(0)) this.#publish(event, state);
  }
}
