import type { RouteEvent, RouteState } from './types.js';

/**
 * What runs after a state change, in this order, always: the state is saved before anything
 * announces it (a crash right after a notification never leaves a saved state that predates it),
 * then metrics, notifications and the log line, then the data hooks (which never delay the
 * change: it took effect before any of this); `watch` is for everything else (the admin event
 * stream, health checkers, the demo).
 */
export const AFTER_CHANGE = ['persist', 'metrics', 'notify', 'log', 'hooks', 'watch'] as const;
export type AfterChangeStage = (typeof AFTER_CHANGE)[number];

export type EventListener = (event: RouteEvent, state: RouteState) => void;

/** The small part of a pino logger a failing subscriber is reported to. */
export interface ErrorLogger {
  error(obj: object, msg: string): void;
}

/** The subscribers of route events, by stage; a throwing one is logged and never stops the rest. */
export class AfterChange {
  readonly #stages = new Map<AfterChangeStage, EventListener[]>(AFTER_CHANGE.map((s) => [s, []]));
  readonly #log: ErrorLogger | undefined;

  constructor(log?: ErrorLogger) {
    this.#log = log;
  }

  /** Adds a subscriber at `stage`; returns the unsubscribe. */
  on(stage: AfterChangeStage, listener: EventListener): () => void {
    const list = this.#stages.get(stage) as EventListener[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i !== -1) list.splice(i, 1);
    };
  }

  readonly publish = (event: RouteEvent, state: RouteState): void => {
    for (const [stage, list] of this.#stages) {
      // A copy: a subscriber may unsubscribe (itself or another) while the event is delivered.
      for (const l of [...list]) {
        try {
          l(event, state);
        } catch (err) {
          // The change itself already happened; the other subscribers still hear of it.
          this.#log?.error({ err, stage, event: { route: event.route, type: event.type, cause: event.cause, at: event.at, message: event.message } }, `a ${stage} subscriber failed on a route event`);
        }
      }
    }
  };
}
