import type { PersistedRoute } from '../rollout/types.js';
import type { RecordError } from './record-check.js';
import type { SharedRoute } from './records.js';

export type WriteResult = { ok: true } | { ok: false; current: SharedRoute | null };

/** The news of one write: the route, the generation written and the writer, and the record when the transport carries it. */
export type ChangeListener = (route: string, generation: number, by: string, record?: SharedRoute) => void;

/** A rollback of a route's candidate revision, told by process `by`. */
export type TripListener = (route: string, revision: number, by: string) => void;

/**
 * Route state shared by processes that act as one (replicas through Redis, `RedisState`): a
 * record per route written only by compare-and-set on its generation, news of each write, a
 * channel for evidence deltas and a lease per deployment for the fleet's tests. `ReplicaSync`
 * and `FleetEvidence` need nothing else, so another transport can carry them.
 */
export interface SharedState {
  /** Whether commands can be sent now. */
  readonly ready: boolean;
  connect(): Promise<void>;
  /** Runs `fn` each time the connection is (again) ready. */
  onReady(fn: () => void): void;
  read(route: string): Promise<SharedRoute | null>;
  /** Writes when the stored generation is `expected`; else says what is stored. */
  write(name: string, expected: number, generation: number, by: string, route: PersistedRoute): Promise<WriteResult>;
  /**
   * `{route, generation, by}` after every write, and records that cannot be read. A transport
   * that carries the record written with its news passes it as `record` (the hub does: the
   * participants apply a change without a read, one round trip sooner); without it (Redis), a
   * participant reads the record.
   */
  subscribe(onChange: ChangeListener, onRefused: (err: RecordError) => void): Promise<void>;
  publishEvidence(message: string): void;
  subscribeEvidence(onEvidence: (message: string, channel: string) => void): Promise<void>;
  /**
   * A rollback of candidate `revision`, told ahead of its record (the hub only): the others stop
   * routing to that candidate as the notice arrives, and take the rest of the state with the
   * record. A transport without it (Redis) leaves both undefined.
   */
  noticeTrip?(route: string, revision: number, by: string): void;
  subscribeTrips?(onTrip: TripListener): void;
  /** Keeps or takes the lease on a deployment's fleet tests for `ms`. */
  lease(route: string, revision: number, id: string, ms: number): Promise<{ state: 'kept' | 'taken' | 'other'; term: number }>;
  close(): Promise<void>;
}
