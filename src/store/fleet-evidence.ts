import { FleetJudge } from '../judge/fleet-judge.js';
import type { Rollouts } from '../rollout/rollouts.js';
import { RecordError } from './record-check.js';
import { evidenceMessage, type EvidenceMessage } from './records.js';
import type { SharedState } from './shared-state.js';

/** How often each replica shares what its judges saw, and how long the fleet lease lasts. */
export const EVIDENCE_INTERVAL_MS = 250;
const LEASE_MS = 1_500;

/** Where FleetEvidence reports a message it drops. */
export interface EvidenceLog {
  warn(obj: object, msg: string): void;
}

export interface FleetEvidenceOptions {
  /** Where dropped (malformed) messages are reported; nowhere by default. */
  log?: EvidenceLog;
  /** The fleet judges' clock (ms, monotonic). */
  now?: () => number;
  /**
   * This process takes every lease and no other ever holds one (the primary of `listen.workers`,
   * SharedHub.prefer): there is one term per deployment, so it runs one test at the whole
   * fleet's share and keeps it (alpha and evidence) when it takes its own lapsed lease back.
   */
  soleHolder?: boolean;
}

/**
 * Evidence across replicas: every EVIDENCE_INTERVAL_MS each replica publishes, per route with a
 * live candidate, what its judge saw since the last time (requests, failures and slow events per
 * version). One replica at a time (the holder of a Redis lease per route) feeds every replica's
 * evidence into the fleet's tests (FleetJudge); a fleet trip is acted on by that replica like its
 * own and reaches the others as any trip does. The fleet's share of alpha (`fleetAlphaScale` of
 * each rule's) is spent over the lease's terms: term j gets 1 / (j (j + 1)) of it.
 */
export class FleetEvidence<U> {
  readonly #rollouts: Rollouts<U>;
  readonly #redis: SharedState;
  readonly #id: string;
  readonly #fleetAlphaScale: number;
  readonly #now: () => number;
  readonly #log: EvidenceLog | null;
  readonly #soleHolder: boolean;
  readonly #judges = new Map<string, { revision: number; judge: FleetJudge }>();
  readonly #holding = new Set<string>();
  /** Which term of the fleet's tests for the deployment this replica runs, per route. */
  readonly #terms = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(rollouts: Rollouts<U>, redis: SharedState, id: string, fleetAlphaScale: number, options: FleetEvidenceOptions = {}) {
    this.#rollouts = rollouts;
    this.#redis = redis;
    this.#id = id;
    this.#fleetAlphaScale = fleetAlphaScale;
    this.#now = options.now ?? (() => performance.now());
    this.#log = options.log ?? null;
    this.#soleHolder = options.soleHolder ?? false;
  }

  async start(intervalMs = EVIDENCE_INTERVAL_MS): Promise<void> {
    void this.#redis.subscribeEvidence((m, channel) => this.#received(m, channel)).catch(() => {});
    this.#timer = setInterval(() => void this.#tick(), intervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Whether this replica runs the fleet's tests for a route now. */
  holding(route: string): boolean {
    return this.#holding.has(route);
  }

  /** The term of the fleet's tests this replica runs (or last ran) for a route; 0 before any. */
  term(route: string): number {
    return this.#terms.get(route) ?? 0;
  }

  async #tick(): Promise<void> {
    for (const c of this.#rollouts.routes()) {
      const judge = c.judge;
      const candidate = c.state().candidate;
      if (judge === null || candidate === null || c.phase === 'rolled_back') {
        this.#holding.delete(c.name);
        continue;
      }
      const delta = judge.takeFleetDelta();
      if (delta !== null) this.#redis.publishEvidence(JSON.stringify({ route: c.name, revision: candidate.revision, by: this.#id, delta } satisfies EvidenceMessage));
      try {
        const lease = await this.#redis.lease(c.name, candidate.revision, this.#id, LEASE_MS);
        if (lease.state === 'other') this.#holding.delete(c.name);
        else {
          if (this.#soleHolder) this.#terms.set(c.name, 1);
          else if (lease.state === 'taken' || !this.#holding.has(c.name)) {
            // A new term of the fleet's tests: afresh, at its own part of the fleet's alpha.
            this.#judges.delete(c.name);
            this.#terms.set(c.name, Math.max(1, lease.term));
          }
          this.#holding.add(c.name);
        }
      } catch {
        this.#holding.delete(c.name);
      }
    }
  }

  #received(raw: string, channel: string): void {
    // Only a lease holder runs the fleet's tests: the others neither check nor log what they drop.
    if (this.#holding.size === 0) return;
    const m = this.#parse(raw, channel);
    if (m === null || !this.#holding.has(m.route)) return;
    const c = this.#rollouts.route(m.route);
    const s = c?.state();
    if (c === undefined || s === undefined || s.candidate === null || s.candidate.revision !== m.revision || c.phase === 'rolled_back') return;
    let entry = this.#judges.get(m.route);
    if (entry === undefined || entry.revision !== m.revision) {
      const rules = c.config.rollback;
      // Term j of the fleet's tests (the j-th replica to take the lease for this deployment)
      // spends 1 / (j (j + 1)) of the fleet's alpha: all terms together never spend more. A
      // sole holder's one term spends all of it.
      const j = this.#terms.get(m.route) ?? 1;
      const spent = this.#soleHolder ? 1 : j * (j + 1);
      entry = { revision: m.revision, judge: new FleetJudge(rules, (rules.alpha * this.#fleetAlphaScale) / spent, s.stable.version, s.candidate.version, this.#now()) };
      this.#judges.set(m.route, entry);
    }
    const trip = entry.judge.add(m.by, m.delta, this.#now());
    if (trip !== null) c.tripFromFleet(trip, m.revision);
  }

  /**
   * A message, checked (records.ts); null when it is malformed: dropped and logged, the fleet's
   * tests never see it (a bad count would move them, a missing one would throw in the judge).
   */
  #parse(raw: string, channel: string): EvidenceMessage | null {
    try {
      return evidenceMessage(raw, `evidence on channel ${channel}`);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      const by = replicaOf(raw);
      const source = by === null ? err.source : `evidence from replica ${by} on channel ${channel}`;
      const message = by === null ? err.message : `${source}: ${err.problems.join('; ')}`;
      this.#log?.warn({ source, problems: err.problems }, `dropped ${message}`);
      return null;
    }
  }
}

/** The sender a malformed message names, when it names one (for the log line only). */
function replicaOf(raw: string): string | null {
  try {
    const by = (JSON.parse(raw) as { by?: unknown } | null)?.by;
    return typeof by === 'string' && by.length > 0 && by.length <= 64 ? JSON.stringify(by) : null;
  } catch {
    return null;
  }
}
