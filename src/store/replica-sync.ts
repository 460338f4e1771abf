import { randomBytes } from 'node:crypto';
import type { RouteController } from '../rollout/route-controller.js';
import type { RouteEvent } from '../rollout/types.js';
import type { Rollouts } from '../rollout/rollouts.js';
import { RecordError } from './record-check.js';
import type { PersistedState } from './state-store.js';
import type { SharedRoute } from './records.js';
import type { SharedState } from './shared-state.js';

export interface SyncLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** How soon a failed write is tried again, at first; it doubles up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;

/**
 * Many replicas acting as one through Redis (SPEC §3 `store: redis`). Every local change is
 * written with a compare-and-set on the generation Redis had when this replica last saw it, and
 * announced; every replica applies announced changes newer than its own (`peer`). The
 * millisecond path stays local: a trip swaps this replica's weights first and is written after.
 *
 * Two changes made at once on two replicas: the first write wins; the other replica takes the
 * winner's state, except that a rollback of the candidate revision the winner still has live is
 * applied again on top of it and written (a rollback wins over any concurrent change for that
 * revision). While Redis is unreachable, routing goes on with the last known state, local
 * changes (trips included) are kept and written once Redis is back, with backoff.
 */
export class ReplicaSync<U> {
  readonly id: string;
  readonly #rollouts: Rollouts<U>;
  readonly #redis: SharedState;
  readonly #log: SyncLog;
  /** The generation Redis had for each route when this replica last wrote or applied it. */
  readonly #known = new Map<string, number>();
  readonly #dirty = new Set<string>();
  #writing = false;
  #retryMs = RETRY_MIN_MS;
  #retryTimer: NodeJS.Timeout | null = null;
  #closed = false;
  #shared = false;
  /** Routes whose record in Redis this replica refused (not one a replica wrote): not shared. */
  readonly #refusedRoutes = new Set<string>();

  constructor(rollouts: Rollouts<U>, redis: SharedState, log: SyncLog, id = randomBytes(4).toString('hex')) {
    this.#rollouts = rollouts;
    this.#redis = redis;
    this.#log = log;
    this.id = id;
  }

  /** True while this replica's state is shared (Redis reachable and in sync, no record refused). */
  get shared(): boolean {
    return this.#shared && this.#redis.ready && this.#dirty.size === 0 && this.#refusedRoutes.size === 0;
  }

  /**
   * Loads the fleet's state and takes it (routes whose declared versions are unchanged), writes
   * what this replica's config changes, and follows the others. When Redis cannot be reached, the
   * replica starts on its config and syncs once Redis is back.
   */
  async start(): Promise<Record<string, string>> {
    let outcome: Record<string, string> = {};
    this.#rollouts.on('persist', (event) => this.#changed(event));
    // A trip's notice leaves in the trip's own call (the hub only; Redis has no notices).
    if (this.#redis.noticeTrip !== undefined) this.#rollouts.onTripped((route, revision) => this.#redis.noticeTrip?.(route, revision, this.id));
    this.#redis.subscribeTrips?.((route, revision, by) => {
      if (by !== this.id && !this.#closed) this.#rollouts.route(route)?.peerTripped(revision);
    });
    this.#redis.onReady(() => void this.#resync());
    try {
      await this.#redis.connect();
      outcome = await this.#initial();
    } catch (err) {
      // Without the fleet's state this replica cannot know whether a candidate was rolled back
      // meanwhile: stable serves everything until the first sync.
      this.#log.warn({ err: (err as Error).message }, 'redis unreachable at start: stable serves every route until the fleet state is known');
      for (const c of this.#rollouts.routes()) c.holdCandidate(true);
    }
    void this.#redis
      .subscribe(
        (route, generation, by, record) => void this.#announced(route, generation, by, record),
        (err) => this.#refused(err),
      )
      .catch(() => {});
    return outcome;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    await this.#redis.close();
  }

  /** Resolves once every local change so far is written (or Redis is unreachable). */
  async flush(): Promise<void> {
    await this.#writeAll();
  }

  async #initial(): Promise<Record<string, string>> {
    const shared = new Map<string, SharedRoute>();
    for (const c of this.#rollouts.routes()) {
      // A refused record counts as none: this replica starts on its config. Its write replaces a
      // record without a generation; one with a generation fails the compare-and-set, and the
      // route stays unshared (and logged) until the record is fixed.
      const s = await this.#read(c.name);
      if (s !== null && s !== undefined) shared.set(c.name, s);
    }
    const state: PersistedState = { format: 1, savedAt: new Date().toISOString(), routes: Object.fromEntries([...shared].map(([k, v]) => [k, v.route])) };
    const outcome = this.#rollouts.restore(state);
    for (const c of this.#rollouts.routes()) {
      const s = shared.get(c.name);
      this.#known.set(c.name, s?.generation ?? 0);
      c.adoptGeneration(s?.generation ?? 0);
      if (outcome[c.name] !== 'restored' || s === undefined) this.#dirty.add(c.name);
    }
    this.#shared = true;
    await this.#writeAll();
    return outcome;
  }

  /** After a reconnect: take what changed meanwhile, then write what changed here. */
  async #resync(): Promise<void> {
    if (this.#closed) return;
    if (this.#rollouts.routes().some((c) => c.held)) {
      // Never synced yet (Redis was unreachable at start): load as at start, then release.
      try {
        await this.#initial();
        for (const c of this.#rollouts.routes()) c.holdCandidate(false);
      } catch {
        // Still unreachable: the next 'ready' tries again.
      }
      return;
    }
    try {
      for (const c of this.#rollouts.routes()) {
        const s = await this.#read(c.name);
        if (s === undefined) continue;
        // A Redis that came back empty (it keeps nothing on disk) is seeded again from here.
        if (s === null) {
          this.#known.set(c.name, 0);
          this.#dirty.add(c.name);
        } else if (s.generation > (this.#known.get(c.name) ?? 0) && !this.#dirty.has(c.name)) this.#apply(c, s);
      }
      this.#shared = true;
      await this.#writeAll();
    } catch {
      // Still unreachable: the next 'ready' tries again.
    }
  }

  #changed(event: RouteEvent): void {
    if (event.cause === 'peer') return;
    // A rollback is told ahead of its record where the transport can (the hub): the others stop
    // routing to the candidate as the small notice arrives, not once the whole record has.
    if (event.type === 'rollback' && event.from !== undefined && event.from !== null) this.#redis.noticeTrip?.(event.route, event.from.revision, this.id);
    this.#dirty.add(event.route);
    void this.#writeAll();
  }

  /**
   * Another replica's write: applied when newer than this replica's state. The record comes with
   * the news when the transport carries it (the hub), and is then applied in this same call, with
   * no round trip before the swap; otherwise (Redis) it is read.
   */
  async #announced(route: string, generation: number, by: string, record?: SharedRoute): Promise<void> {
    if (by === this.id || this.#closed) return;
    const c = this.#rollouts.route(route);
    if (c === undefined || generation <= c.generation) return;
    if (record !== undefined) this.#refusedRoutes.delete(route);
    try {
      const s = record ?? (await this.#read(route));
      if (s !== null && s !== undefined && s.generation > c.generation) {
        if (this.#dirty.has(route)) {
          // A local change not written yet: the write's compare-and-set settles it.
          void this.#writeAll();
          return;
        }
        this.#apply(c, s);
      }
    } catch {
      // Redis went away between the news and the read: the resync after reconnecting catches up.
    }
  }

  /**
   * Redis's record for a route: null when there is none, undefined when it is refused (logged).
   * A refused record is never applied: this replica keeps its own state and goes on routing, and
   * says its state is not shared until the route's record is one a replica wrote again.
   */
  async #read(route: string): Promise<SharedRoute | null | undefined> {
    try {
      const s = await this.#redis.read(route);
      this.#refusedRoutes.delete(route);
      return s;
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      this.#refusedRoutes.add(route);
      this.#refused(err);
      return undefined;
    }
  }

  #refused(err: RecordError): void {
    this.#log.warn({ source: err.source, problems: err.problems }, `refused ${err.message}; not applied, this replica keeps its own state`);
  }

  #apply(c: RouteController<U>, s: SharedRoute): void {
    c.applyPeer(s.route, s.generation, s.by, true);
    this.#known.set(c.name, s.generation);
  }

  async #writeAll(): Promise<void> {
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    try {
      while (this.#dirty.size > 0 && !this.#closed) {
        const name = this.#dirty.values().next().value as string;
        this.#dirty.delete(name);
        const c = this.#rollouts.route(name);
        if (c === undefined) continue;
        try {
          await this.#write(c);
          this.#refusedRoutes.delete(name);
          this.#retryMs = RETRY_MIN_MS;
        } catch (err) {
          this.#dirty.add(name);
          // Unreachable Redis is shared again by the resync on reconnect; a refused record by the
          // first write or read of the route that goes through (someone fixed it).
          if (err instanceof RecordError) this.#refusedRoutes.add(name);
          else this.#shared = false;
          this.#scheduleRetry(err as Error);
          return;
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async #write(c: RouteController<U>): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const expected = this.#known.get(c.name) ?? 0;
      const generation = Math.max(c.generation, expected + 1);
      const r = await this.#redis.write(c.name, expected, generation, this.id, c.persisted());
      if (r.ok) {
        c.adoptGeneration(generation);
        this.#known.set(c.name, generation);
        return;
      }
      const current = r.current;
      if (current === null) {
        this.#known.set(c.name, 0);
        continue;
      }
      // Someone else wrote first. A rollback wins over anything else for its revision, whoever
      // made it; otherwise the newer generation wins (a replica re-seeding an emptied Redis with
      // an older state must not undo a change made meanwhile), and a tie goes to the first write.
      const mine = c.persisted();
      const theirs = current.route;
      const rolledBack = mine.phase === 'rolled_back' && mine.candidate !== null ? mine.candidate.revision : null;
      const theyRolledBack = theirs.phase === 'rolled_back' && theirs.candidate !== null && mine.candidate?.revision === theirs.candidate.revision && mine.phase !== 'rolled_back';
      if (!theyRolledBack && current.generation < c.generation) {
        this.#known.set(c.name, current.generation);
        continue;
      }
      const decision = mine.lastDecision;
      this.#apply(c, current);
      if (rolledBack !== null && theirs.candidate?.revision === rolledBack && theirs.phase !== 'rolled_back') {
        const reason = decision?.reason === 'peer' || decision === null ? 'manual' : decision.reason;
        c.rollback(reason, `replica ${this.id} rolled back revision ${rolledBack} while replica ${current.by} changed the route${decision === null ? '' : `: ${decision.message}`}`);
      } else {
        this.#log.info({ route: c.name, by: current.by }, 'a concurrent change on another replica won; this replica took its state');
        return;
      }
    }
    throw new Error(`route ${c.name}: state kept changing under ten writes in a row`);
  }

  #scheduleRetry(err: Error): void {
    if (this.#retryTimer !== null || this.#closed) return;
    const what = err instanceof RecordError ? 'redis has a record this replica refuses' : 'redis write failed';
    this.#log.warn({ err: err.message, retryInMs: this.#retryMs }, `route state not shared: ${what}; routing goes on locally`);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#writeAll();
    }, this.#retryMs);
    this.#retryTimer.unref();
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
  }
}
