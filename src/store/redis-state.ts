import { Redis } from 'ioredis';
import type { PersistedRoute } from '../rollout/types.js';
import { RecordError } from './record-check.js';
import { changeMessage, sharedRoute, type SharedRoute } from './records.js';

import type { SharedState, WriteResult } from './shared-state.js';

export type { SharedRoute } from './records.js';
export type { WriteResult } from './shared-state.js';

// Compare-and-set of one route's state, and the news of it, in one step: the write happens only
// when the stored generation is the one the writer started from.
const CAS = `
local gen = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
if gen ~= tonumber(ARGV[1]) then return gen end
redis.call('HSET', KEYS[1], 'generation', ARGV[2], 'by', ARGV[3], 'state', ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[5])
return -1
`;

// Keep the lease when this replica holds it (1); take it when nobody does (2, with the number of
// times it was taken for this deployment, counted in KEYS[2]); else 0.
const LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, 0}
end
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local n = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], 86400000)
  return {2, n}
end
return {0, 0}
`;

/**
 * Route state in Redis: a hash per route (`<prefix>:route:<name>` with generation, by, state)
 * written only by compare-and-set, and a channel (`<prefix>:changes`) that carries
 * `{route, generation, by}` after each write. Commands fail at once while Redis is unreachable
 * (no offline queue); the caller retries.
 */
export class RedisState implements SharedState {
  readonly prefix: string;
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #channel: string;

  constructor(url: string, prefix: string) {
    this.prefix = prefix;
    this.#channel = `${prefix}:changes`;
    const options = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1_000,
      lazyConnect: true,
      // Reconnect with backoff, forever: 50 ms doubling up to 2 s.
      retryStrategy: (times: number) => Math.min(2_000, 50 * 2 ** Math.min(times, 6)),
    };
    this.#cmd = new Redis(url, options);
    this.#sub = new Redis(url, { ...options, enableOfflineQueue: true });
    // Errors are reported through the callers' failed commands and `onStatus`; an unhandled
    // 'error' event must not crash the gateway.
    this.#cmd.on('error', () => {});
    this.#sub.on('error', () => {});
  }

  /** The command connection, for the other records kept beside the routes' (the hook jobs). */
  get commands(): Redis {
    return this.#cmd;
  }

  key(route: string): string {
    return `${this.prefix}:route:${route}`;
  }

  /** Connects both connections; rejects when Redis cannot be reached now (it keeps trying after). */
  async connect(): Promise<void> {
    await Promise.all([this.#cmd.connect(), this.#sub.connect()]);
  }

  get ready(): boolean {
    return this.#cmd.status === 'ready';
  }

  /** Calls `fn` whenever the command connection becomes ready again. */
  onReady(fn: () => void): void {
    this.#cmd.on('ready', fn);
  }

  /**
   * A route's shared state, checked (records.ts); null when Redis has none.
   * @throws RecordError naming the key when the hash is not one a replica wrote
   */
  async read(route: string): Promise<SharedRoute | null> {
    const key = this.key(route);
    return sharedRoute(await this.#cmd.hgetall(key), key);
  }

  /** Writes `route` at `generation` when Redis still has `expected`; else returns what it has. */
  async write(name: string, expected: number, generation: number, by: string, route: PersistedRoute): Promise<WriteResult> {
    const news = JSON.stringify({ route: name, generation, by });
    const r = (await this.#cmd.eval(CAS, 2, this.key(name), this.#channel, expected, generation, by, JSON.stringify(route), news)) as number;
    if (r === -1) return { ok: true };
    return { ok: false, current: await this.read(name) };
  }

  /** Publishes one replica's evidence; fire and forget (lost evidence only makes the fleet slower). */
  publishEvidence(message: string): void {
    if (this.#cmd.status !== 'ready') return;
    this.#cmd.publish(`${this.prefix}:evidence`, message).catch(() => {});
  }

  /** Subscribes to the evidence channel. */
  async subscribeEvidence(onEvidence: (message: string, channel: string) => void): Promise<void> {
    const channel = `${this.prefix}:evidence`;
    this.#sub.on('message', (ch: string, message: string) => {
      if (ch === channel) onEvidence(message, channel);
    });
    await this.#sub.subscribe(channel);
  }

  /**
   * Takes or keeps the lease on running the fleet's tests for `route` (candidate `revision`) for
   * `ms`: `kept`, `taken` (with how many times it has been taken for this revision, 1 first), or
   * `other` (another replica holds it).
   */
  async lease(route: string, revision: number, id: string, ms: number): Promise<{ state: 'kept' | 'taken' | 'other'; term: number }> {
    const [r, n] = (await this.#cmd.eval(LEASE, 2, `${this.prefix}:lease:${route}`, `${this.prefix}:lease-terms:${route}:${revision}`, id, ms)) as [number, number];
    return { state: r === 1 ? 'kept' : r === 2 ? 'taken' : 'other', term: n };
  }

  /** Subscribes to the change channel; a message that is not a replica's news goes to `onRefused`, unapplied. */
  async subscribe(onChange: (route: string, generation: number, by: string) => void, onRefused: (err: RecordError) => void): Promise<void> {
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      let m;
      try {
        m = changeMessage(message, `change message on channel ${channel}`);
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        onRefused(err);
        return;
      }
      onChange(m.route, m.generation, m.by);
    });
    await this.#sub.subscribe(this.#channel);
  }

  async close(): Promise<void> {
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }
}
