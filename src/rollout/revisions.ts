import type { PersistedRoute, Revision, RouteEvent, VersionState } from './types.js';

/** How many events a route keeps, newest first; and how many revisions besides the serving ones. */
export const HISTORY_LIMIT = 1_000;

/**
 * A route's history: the versions deployed to it (newest first, numbered by revision, never
 * reused; past HISTORY_LIMIT the oldest that serve no more are forgotten, so a route deployed
 * every few seconds does not grow without end) and its events (newest first, at most HISTORY_LIMIT).
 */
export class RevisionHistory {
  /** Every version deployed to this route, newest first. */
  readonly revisions: Revision[] = [];
  readonly events: RouteEvent[] = [];
  #next = 1;

  get nextRevision(): number {
    return this.#next;
  }

  /** The next revision number, taken. */
  take(): number {
    return this.#next++;
  }

  /** A newly deployed version, at the head of the list. */
  add(v: VersionState, deployedAt: string, status: Revision['status']): void {
    this.revisions.unshift({ version: v.version, revision: v.revision, url: v.url, data: v.data ?? null, deployedAt, status });
    if (this.revisions.length <= HISTORY_LIMIT) return;
    const gone = this.revisions.findLastIndex((r) => r.status === 'retired' || r.status === 'rolled_back');
    if (gone !== -1) this.revisions.splice(gone, 1);
  }

  setStatus(revision: number, status: Revision['status']): void {
    const r = this.revisions.find((x) => x.revision === revision);
    if (r !== undefined) r.status = status;
  }

  /** The revision with that label or, failing that, that number. */
  find(versionOrNumber: string): Revision | undefined {
    return (
      this.revisions.find((r) => r.version === versionOrNumber) ??
      (/^\d+$/.test(versionOrNumber) ? this.revisions.find((r) => r.revision === Number(versionOrNumber)) : undefined)
    );
  }

  record(event: RouteEvent): void {
    this.events.unshift(event);
    if (this.events.length > HISTORY_LIMIT) this.events.length = HISTORY_LIMIT;
  }

  /** A saved history, as it was. */
  restore(p: PersistedRoute): void {
    this.#next = p.nextRevision;
    this.revisions.splice(0, this.revisions.length, ...p.revisions);
    this.events.splice(0, this.events.length, ...p.events);
  }

  /**
   * The config declares other versions than the saved history knew: they become new revisions,
   * numbered after every one the route ever had, unless the same version and URL had one. The
   * saved revisions stay in the list, the ones that were serving now retired.
   */
  continueFrom(p: PersistedRoute, current: VersionState[]): void {
    const old = new Map(p.revisions.map((r) => [r.revision, r]));
    let next = Math.max(p.nextRevision, this.#next);
    const renumbered = new Map<string, number>();
    for (const v of current) {
      const same = p.revisions.find((r) => r.version === v.version && r.url === v.url);
      v.revision = same !== undefined ? same.revision : next++;
      renumbered.set(v.version, v.revision);
    }
    this.#next = next;
    const fresh = this.revisions.map((r) => ({ ...r, revision: renumbered.get(r.version) ?? r.revision }));
    const kept = [...old.values()]
      .filter((r) => !fresh.some((f) => f.revision === r.revision))
      .map((r) => ({ ...r, status: r.status === 'stable' || r.status === 'candidate' ? ('retired' as const) : r.status }));
    this.revisions.splice(0, this.revisions.length, ...fresh, ...kept);
    this.events.splice(0, this.events.length, ...p.events);
  }
}
