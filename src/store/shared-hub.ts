import type { PersistedRoute } from '../rollout/types.js';
import { RecordError } from './record-check.js';
import { sharedRoute, type SharedRoute } from './records.js';
import type { ChangeListener, SharedState, TripListener, WriteResult } from './shared-state.js';

/** A record as the hub keeps it: the text Redis would keep in the route's hash. */
export interface StoredRoute {
  readonly generation: string;
  readonly by: string;
  readonly state: string;
}

/** The news of one write with the record written, as the hub keeps it. */
export type StoredChange = (route: string, generation: number, by: string, stored: StoredRoute) => void;

/** A record the hub keeps, checked as a read checks it; undefined when it is refused. */
export function storedRoute(route: string, stored: StoredRoute): SharedRoute | undefined {
  try {
    return sharedRoute({ ...stored }, `shared record ${route}`) ?? undefined;
  } catch (err) {
    if (err instanceof RecordError) return undefined;
    throw err;
  }
}

/**
 * Route state shared in one place without Redis: the records, the news of each write, the
 * evidence channel and the fleet-test leases of `RedisState`, kept in memory. Each participant
 * (a data-plane process's ReplicaSync and FleetEvidence) talks to it through `client()`. Records
 * are kept as the text Redis would keep, so no participant shares an object with another, and
 * news is delivered on the next tick, after the writer's write resolved, as Redis delivers it.
 * The news carries the record written, so a participant applies a change without reading it:
 * across processes (hub-ipc.ts) that is the round trip a trip would otherwise wait for.
 */
export class SharedHub {
  readonly #records = new Map<string, StoredRoute>();
  /** Relays of the news to other processes (serveHub): they hear it first, since they only pass it on. */
  readonly #relays = new Set<StoredChange>();
  readonly #changes = new Set<StoredChange>();
  readonly #evidence = new Set<(message: string, channel: string) => void>();
  /** Trip notices' listeners, relays to other processes first (they were added first). */
  readonly #trips = new Set<TripListener>();
  readonly #leases = new Map<string, { holder: string; until: number }>();
  readonly #terms = new Map<string, number>();
  readonly #now: () => number;
  /** The participant that runs the fleet's tests whenever it asks (the primary); null: the first to ask. */
  #preferred: string | null = null;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Gives the fleet-test lease of every route to `id` whenever it asks, taking it from another
   * holder at once: the process that sees every participant's evidence (the primary) runs the
   * pooled tests, and the others' leases lapse.
   */
  prefer(id: string): void {
    this.#preferred = id;
  }

  read(route: string): SharedRoute | null {
    const s = this.#records.get(route);
    return s === undefined ? null : sharedRoute({ ...s }, `shared record ${route}`);
  }

  write(name: string, expected: number, generation: number, by: string, route: PersistedRoute): WriteResult {
    const held = Number(this.#records.get(name)?.generation ?? '0');
    if (held !== expected) return { ok: false, current: this.read(name) };
    const stored: StoredRoute = { generation: String(generation), by, state: JSON.stringify(route) };
    this.#records.set(name, stored);
    process.nextTick(() => {
      for (const fn of this.#relays) fn(name, generation, by, stored);
      for (const fn of this.#changes) fn(name, generation, by, stored);
    });
    return { ok: true };
  }

  /** Told at once: a notice carries no state, only which candidate nobody may route to any more. */
  noticeTrip(route: string, revision: number, by: string): void {
    for (const fn of this.#trips) fn(route, revision, by);
  }

  /** Trip notices (a relay to another process, or a participant); returns the unsubscribe. */
  listenTrips(fn: TripListener): () => void {
    this.#trips.add(fn);
    return () => this.#trips.delete(fn);
  }

  publishEvidence(message: string): void {
    process.nextTick(() => {
      for (const fn of this.#evidence) fn(message, 'evidence');
    });
  }

  lease(route: string, revision: number, id: string, ms: number): { state: 'kept' | 'taken' | 'other'; term: number } {
    const now = this.#now();
    const held = this.#leases.get(route);
    const live = held !== undefined && held.until > now;
    if (live && held.holder !== id && id !== this.#preferred) return { state: 'other', term: 0 };
    if (!live && this.#preferred !== null && id !== this.#preferred) return { state: 'other', term: 0 };
    this.#leases.set(route, { holder: id, until: now + ms });
    if (live && held.holder === id) return { state: 'kept', term: 0 };
    const key = `${route}:${revision}`;
    const term = (this.#terms.get(key) ?? 0) + 1;
    this.#terms.set(key, term);
    return { state: 'taken', term };
  }

  /**
   * The news of each write with the record as stored, for a relay to another process (serveHub),
   * delivered before the in-process participants apply it; returns the unsubscribe.
   */
  relayChanges(fn: StoredChange): () => void {
    this.#relays.add(fn);
    return () => this.#relays.delete(fn);
  }

  /** One participant's view: its subscriptions end with its `close()`. */
  client(): SharedState {
    const mine: { changes: StoredChange[]; evidence: ((message: string, channel: string) => void)[]; trips: (() => void)[] } = { changes: [], evidence: [], trips: [] };
    return {
      ready: true,
      connect: () => Promise.resolve(),
      onReady: () => undefined,
      read: (route) => Promise.resolve(this.read(route)),
      write: (name, expected, generation, by, route) => Promise.resolve(this.write(name, expected, generation, by, route)),
      subscribe: (onChange: ChangeListener, _onRefused: (err: RecordError) => void) => {
        // Each participant checks its own copy, as each one's read would: no object is shared.
        const fn: StoredChange = (route, generation, by, stored) => onChange(route, generation, by, storedRoute(route, stored));
        mine.changes.push(fn);
        this.#changes.add(fn);
        return Promise.resolve();
      },
      publishEvidence: (message) => this.publishEvidence(message),
      subscribeEvidence: (onEvidence) => {
        mine.evidence.push(onEvidence);
        this.#evidence.add(onEvidence);
        return Promise.resolve();
      },
      lease: (route, revision, id, ms) => Promise.resolve(this.lease(route, revision, id, ms)),
      noticeTrip: (route, revision, by) => this.noticeTrip(route, revision, by),
      subscribeTrips: (onTrip) => {
        mine.trips.push(this.listenTrips(onTrip));
      },
      close: () => {
        for (const off of mine.trips) off();
        for (const fn of mine.changes) this.#changes.delete(fn);
        for (const fn of mine.evidence) this.#evidence.delete(fn);
        return Promise.resolve();
      },
    };
  }
}
