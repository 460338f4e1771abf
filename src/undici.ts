import { createRequire } from 'node:module';
import type { Dispatcher, Pool as UndiciPool } from 'undici';

/*
 * The parts of undici that rollgate uses (a connection pool, and one request through the global
 * agent), loaded without undici's index: that also loads fetch, web streams, WebSocket,
 * EventSource, the cache stores and the mock agents, about 3 MB of a gateway's heap and their
 * code, none of which a gateway runs. The paths are undici's own layout (package.json has no
 * "exports" to forbid them); the tests that proxy and run hooks would fail at import if it moved.
 */
const require = createRequire(import.meta.url);
const DispatcherClass = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
// As undici's index does: request, stream, pipeline, connect and upgrade on every dispatcher.
Object.assign(DispatcherClass.prototype, require('undici/lib/api/index.js') as object);
const { getGlobalDispatcher } = require('undici/lib/global.js') as { getGlobalDispatcher: () => Dispatcher };

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;

/** undici's `request(url, options)` for an absolute URL, through the global agent. */
export function request(url: string, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Dispatcher.ResponseData> {
  const target = new URL(url);
  return getGlobalDispatcher().request({ ...options, origin: target.origin, path: `${target.pathname}${target.search}` });
}
