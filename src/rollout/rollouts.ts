import type { RouteConfig } from '../config/types.js';
import type { Outcome } from '../proxy/outcome.js';
import type { DataRef } from '../shapes.js';
import type { Picker } from '../traffic/picker.js';
import { AfterChange, type AfterChangeStage, type ErrorLogger, type EventListener } from './after-change.js';
import type { Timers } from './bake-timer.js';
import { RouteController } from './route-controller.js';
import type { PersistedRoute, PersistedState } from './types.js';

export type { AfterChangeStage, EventListener } from './after-change.js';

/** A route as the rollouts get it from the data plane. */
export interface RolloutRoute<U> {
  config: RouteConfig;
  picker: Picker<U>;
  makeUpstream?: (version: string, url: string, data: DataRef | null) => U;
  retire?: (upstream: U) => void;
}

export interface RolloutsOptions<U> {
  routes?: readonly RolloutRoute<U>[];
  /** Monotonic clock in ms, the one outcomes are timed on (performance.now() by default). */
  now?: () => number;
  /** Wall clock for event times (Date.now() by default). */
  wallNow?: () => number;
  /** Bake timers of the step schedules (tests drive them on a fake clock). */
  timers?: Timers;
  /** The share of alpha this replica's own tests run at (see the fleet's evidence). */
  alphaScale?: number;
  /** Where a failing subscriber is reported. */
  logger?: ErrorLogger;
}

/** Every route's controller, and the outcome sink the data plane hands each finished request to. */
export class Rollouts<U> {
  readonly #controllers = new Map<string, RouteController<U>>();
  readonly #after: AfterChange;
  readonly #options: RolloutsOptions<U>;
  readonly #onTrip = new Set<(route: string, revision: number) => void>();

  constructor(options: RolloutsOptions<U> = {}) {
    this.#options = options;
    this.#after = new AfterChange(options.logger);
    for (const r of options.routes ?? []) this.add(r);
  }

  /** Takes a route under rollout control. */
  add(r: RolloutRoute<U>): RouteController<U> {
    const o = this.#options;
    const controller = new RouteController(r.config, {
      picker: r.picker,
      now: o.now ?? (() => performance.now()),
      publish: this.#after.publish,
      tripped: this.#tripped,
      ...(o.timers ? { timers: o.timers } : {}),
      ...(o.alphaScale !== undefined ? { alphaScale: o.alphaScale } : {}),
      ...(o.wallNow ? { wallNow: o.wallNow } : {}),
      ...(r.makeUpstream ? { makeUpstream: r.makeUpstream } : {}),
      ...(r.retire ? { retire: r.retire } : {}),
    });
    this.#controllers.set(r.config.name, controller);
    return controller;
  }

  /**
   * Runs `fn` in each trip's own call, right after the swap, before its event is published: for
   * what must leave at once (the hub's trip notice to the other processes). Returns the unsubscribe.
   */
  onTripped(fn: (route: string, revision: number) => void): () => void {
    this.#onTrip.add(fn);
    return () => this.#onTrip.delete(fn);
  }

  readonly #tripped = (route: string, revision: number): void => {
    for (const fn of this.#onTrip) {
      try {
        fn(route, revision);
      } catch {
        // The swap already happened; the record written after it carries the trip all the same.
      }
    }
  };

  /** The data plane's outcome sink: synchronous, allocation-free on the way to the judge. */
  readonly observe = (o: Outcome): void => {
    this.#controllers.get(o.route)?.observe(o);
  };

  /** The data plane's agreement sink: one compared pair of a route's answers. */
  readonly observeAgreement = (route: string, r: { agree: boolean; stable: string | null; candidate: string | null }): void => {
    this.#controllers.get(route)?.observeAgreement(r.agree, r.agree ? null : { stable: r.stable ?? '', candidate: r.candidate ?? '' });
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

  /**
   * Subscribes to every state change at `stage` (see AFTER_CHANGE for the order), delivered after
   * the change took effect; returns the unsubscribe.
   */
  on(stage: AfterChangeStage, listener: EventListener): () => void {
    return this.#after.on(stage, listener);
  }

  /** Subscribes after every fixed stage (persist, metrics, notify, log); returns the unsubscribe. */
  subscribe(listener: EventListener): () => void {
    return this.#after.on('watch', listener);
  }
}
