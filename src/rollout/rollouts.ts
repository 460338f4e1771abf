import type { RouteConfig } from '../config/types.js';
import type { Outcome } from '../proxy/outcome.js';
import type { PersistedRoute, PersistedState } from './types.js';
import type { Picker } from '../traffic/picker.js';
import type { Timers } from './bake-timer.js';
import { RouteController } from './route-controller.js';
import type { RouteEvent, RouteState } from './types.js';

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

  constructor(routes: readonly RolloutRoute<U>[], now: () => number, wallNow?: () => number, timers?: Timers, alphaScale?: number) {
    for (const r of routes) {
      const deps = {
        picker: r.picker,
        now,
        ...(timers ? { timers } : {}),
        ...(alphaScale !== undefined ? { alphaScale } : {}),
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

  /** Every route's state as it is saved. */
  persisted(wallNow = Date.now()): PersistedState {
    const routes: Record<string, PersistedRoute> = {};
    for (const [name, c] of this.#controllers) routes[name] = c.persisted();
    return { format: 1, savedAt: new Date(wallNow).toISOString(), routes };
  }

  /**
   * Reconciles a saved state with the config at start (SPEC §5): a route whose declared versions
   * are unchanged takes its saved state (a rolled-back candidate stays rolled back); a changed
   * one is a new deployment from the config. Returns what it did per route.
   */
  restore(state: PersistedState): Record<string, 'restored' | 'new deployment' | 'new route'> {
    const out: Record<string, 'restored' | 'new deployment' | 'new route'> = {};
    for (const [name, c] of this.#controllers) {
      const p = state.routes[name];
      if (p === undefined) out[name] = 'new route';
      else if (JSON.stringify(p.declared) === JSON.stringify(c.declared)) {
        c.restore(p);
        out[name] = 'restored';
      } else {
        c.continueFrom(p);
        out[name] = 'new deployment';
      }
    }
    return out;
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
