import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import { kExchange, type WithExchange } from './exchange-parts.js';

/**
 * Pipelined requests: Node queues the answer to a second request on a connection until the first
 * has ended, and a queued answer is never told that the client went away (its 'close' comes only
 * once it has the socket). The gateway watches the connection for the answers queued on it, so
 * that their upstream requests are aborted when the client leaves instead of waiting, paused, for
 * an upstream timeout. Only pipelined requests come here.
 */
const kQueued = Symbol('rollgate.queued');
type Watched = Socket & { [kQueued]?: Set<WithExchange> };

function onConnectionClose(this: Watched): void {
  const queued = this[kQueued];
  if (queued === undefined) return;
  this[kQueued] = undefined;
  for (const res of queued) res[kExchange]?.clientClosed();
}

/** Called for an answer that has no socket yet: it waits behind another on `socket`. */
export function watchQueuedAnswer(socket: Socket, res: ServerResponse): void {
  const s = socket as Watched;
  let queued = s[kQueued];
  if (queued === undefined) {
    queued = new Set();
    s[kQueued] = queued;
    socket.once('close', onConnectionClose);
  }
  for (const done of queued) if (done.writableFinished || done.destroyed) queued.delete(done);
  queued.add(res);
}
