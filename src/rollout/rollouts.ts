import type { RouteConfig } from '../config/types.js';
import type { Outcome } from '../proxy/outcome.js';
import type { Picker } from '../traffic/picker.js';
import { RouteController, type RouteEvent, type RouteState } from './route-controller.js';

/** A route as the rollouts get it from the data plane. */
export interface RolloutRoute<U> {
  config: RouteConfig;
  picker: Picker<U>;
  makeUpstream?: (version: string, url: string) => U;
  retire?: (upstream: U) => void;
}

export type EventListener = (event: RouteEvent, state: RouteState) => void;

/** Every route's controller, and the outcome sink the data plane hands each finished request to. */
export class Rollouts<U> {
  readonly #controllers = new Map<string, RouteController<U>>();
  readonly #listeners: EventListener[] = [];

  constructor(routes: readonly RolloutRoute<U>[], now: () => number, wallNow?: () => number) {
    for (const r of routes) {
      const deps = {
        picker: r.picker,
        now,
        publish: this.#publish,
        ...(wallNow ? { wallNow } : {}),
        ...(r.makeUpstream ? { makeUpstream: r.makeUpstream } : {}),
        ...(r.retire ? { retire: r.retire } : {}),
      };
      this.#controllers.set(r.config.name, new RouteController(r.config, deps));
    }
  }

  /** The data plane's outcome sink: synchronous, allocation-free on the way to the judge. */
  readonly observe = (o: Outcome): void => {
    this.#controllers.get(o.route)?.observe(o);
  };

  route(name: string): RouteController<U> | undefined {
    return this.#controllers.get(name);
  }

  routes(): RouteController<U>[] {
    return [...this.#controllers.values()];
  }

  /** Subscribes to every state change, delivered after it took effect; returns the unsubscribe. */
  subscribe(listener: EventListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i !== -1) this.#listeners.splice(i, 1);
    };
  }

  readonly #publish = (event: RouteEvent, state: RouteState): void => {
    for (const l of this.#listeners) {
      try {
        l(event, state);
      } catch {
        // A failing subscriber must not stop the others; the change itself already happened.
      }
    }
  };
}
