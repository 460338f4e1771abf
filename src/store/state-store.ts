import type { PersistedPlan, RouteEvent, RouteState, Revision, VersionState } from '../rollout/route-controller.js';
import type { Phase } from '../rollout/phases.js';

/** What a route keeps across restarts. */
export interface PersistedRoute {
  /** The versions the config declared when this was saved: unchanged means the saved state wins. */
  declared: { stable: VersionState | { version: string; url: string }; candidate: { version: string; url: string } | null };
  phase: Phase;
  stable: VersionState;
  candidate: (VersionState & { weight: number }) | null;
  lastDecision: RouteState['lastDecision'];
  revisions: Revision[];
  events: RouteEvent[];
  nextRevision: number;
  /** The candidate's plan (stage, step, what was left of its bake); absent in older saves. */
  plan?: PersistedPlan | null;
}

export interface PersistedState {
  format: 1;
  savedAt: string;
  routes: Record<string, PersistedRoute>;
}

/** Where route state survives restarts (DESIGN.md `store/`). */
export interface StateStore {
  readonly kind: string;
  /** The saved state, or null when nothing was saved yet. Throws StoreError when it cannot be read. */
  load(): Promise<PersistedState | null>;
  save(state: PersistedState): Promise<void>;
}

/** A state that exists but cannot be used: the gateway does not start on it. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export class MemoryStore implements StateStore {
  readonly kind = 'memory';
  #state: PersistedState | null = null;

  async load(): Promise<PersistedState | null> {
    return this.#state === null ? null : structuredClone(this.#state);
  }

  async save(state: PersistedState): Promise<void> {
    this.#state = structuredClone(state);
  }
}
