import type { Pool as UndiciPool } from 'undici';
import { Pool } from '../undici.js';
import type { UpstreamProtocol, VersionConfig } from '../config/types.js';
import { H2Client } from './h2-upstream.js';

/** One version's upstream: its label, where it lives and its own keep-alive connection pool. */
export class Upstream {
  readonly label: string;
  readonly url: string;
  /** The path of the upstream URL without a trailing slash; prepended to every request path. */
  readonly basePath: string;
  readonly pool: UndiciPool;
  /** The data snapshot id sent upstream with every request to this version, or null. */
  readonly snapshot: string | null;
  readonly protocol: UpstreamProtocol;
  /** The HTTP/2 session of an h2c or h2 version; null for http1. */
  readonly h2: H2Client | null;
  /**
   * Requests (and shadow copies) on this upstream whose outcome has not yet reached the sink.
   * A plain counter, so that knowing when a retired version is done costs the hot path nothing.
   */
  active = 0;
  /** Set once retired: called each time `active` drops to 0 from then on. */
  #onIdle: (() => void) | null = null;

  constructor(version: VersionConfig, timeouts: { connectMs: number; responseMs: number }) {
    this.label = version.version;
    this.url = version.url;
    this.snapshot = version.data?.snapshot ?? null;
    const u = new URL(version.url);
    this.protocol = version.protocol ?? 'http1';
    this.h2 = this.protocol === 'http1' ? null : new H2Client(u.origin, timeouts.connectMs);
    this.basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
    this.pool = new Pool(u.origin, {
      connect: { timeout: timeouts.connectMs },
      headersTimeout: timeouts.responseMs,
      bodyTimeout: timeouts.responseMs,
      keepAliveTimeout: 4_000,
      pipelining: 1,
    });
  }

  /** A request starts on this upstream. */
  acquire(): void {
    this.active++;
  }

  /** A request on this upstream ended and its outcome was handed to the sink. */
  release(): void {
    // Every time, not once: a replay may still land on a retired stable after it went idle,
    // and its outcome brings its series back; the next idle removes them again.
    if (--this.active === 0 && this.#onIdle !== null) this.#onIdle();
  }

  /**
   * No route routes here any more: the pool closes after the requests still on it, and `onIdle`
   * runs once none is left (at once when none is), so what is kept per version can go.
   */
  retire(onIdle: () => void): void {
    this.#onIdle = onIdle;
    void this.close();
    if (this.active === 0) onIdle();
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close().catch(() => undefined), this.h2?.close()]);
  }

  destroy(): Promise<void> {
    void this.h2?.destroy();
    return this.pool.destroy().catch(() => undefined);
  }
}
