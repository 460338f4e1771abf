import { Pool } from 'undici';
import type { VersionConfig } from '../config/types.js';

/** One version's upstream: its label, where it lives and its own keep-alive connection pool. */
export class Upstream {
  readonly label: string;
  readonly url: string;
  /** The path of the upstream URL without a trailing slash; prepended to every request path. */
  readonly basePath: string;
  readonly pool: Pool;

  constructor(version: VersionConfig, timeouts: { connectMs: number; responseMs: number }) {
    this.label = version.version;
    this.url = version.url;
    const u = new URL(version.url);
    this.basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
    this.pool = new Pool(u.origin, {
      connect: { timeout: timeouts.connectMs },
      headersTimeout: timeouts.responseMs,
      bodyTimeout: timeouts.responseMs,
      keepAliveTimeout: 4_000,
      pipelining: 1,
    });
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }

  destroy(): Promise<void> {
    return this.pool.destroy().catch(() => undefined);
  }
}
