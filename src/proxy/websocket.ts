import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { OutcomeSink } from './outcome.js';
import type { RouteConfig } from '../config/types.js';
import type { Picker } from '../traffic/picker.js';
import { REQUEST_ID, upstreamRequestHeaders } from './headers.js';
import { originForm } from './not-found.js';
import type { Upstream } from './upstream.js';
import { WsConnection } from './ws-connection.js';
import { CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART } from './ws-frames.js';
import { handshakeRequest, refuseUpgrade } from './ws-head.js';
import { serveIgnoringUpgrade } from './plain-upgrade.js';

/** What a WebSocket needs of a route at run time (the gateway's WsRoute). */
export interface WsRoute {
  readonly name: string;
  readonly config: RouteConfig;
  readonly picker: Picker<Upstream>;
  readonly dataHeader: string;
}

export interface WebSocketDeps {
  match(url: string): WsRoute | null;
  nextId(): string;
  sink: OutcomeSink;
  /** Serves a request as plain HTTP/1.1: another Upgrade than websocket on a request without a body is ignored. */
  plain?: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * The data plane's WebSocket side: the server's 'upgrade' requests, routed like any request
 * (weights, sticky key, override) and proxied to the picked version; and the open connections
 * per route, so that a rollback can close those of a version that no longer takes traffic.
 */
export class WebSockets {
  readonly #deps: WebSocketDeps;
  readonly #open = new Map<string, Set<WsConnection>>();
  readonly #targets = new WeakMap<Upstream, URL>();

  constructor(deps: WebSocketDeps) {
    this.#deps = deps;
  }

  /** Open connections (handshake included) of a route, or of every route. */
  count(route?: string): number {
    if (route !== undefined) return this.#open.get(route)?.size ?? 0;
    let n = 0;
    for (const set of this.#open.values()) n += set.size;
    return n;
  }

  /** Bytes the gateway holds queued for either side of its WebSocket connections (bounded by backpressure). */
  queuedBytes(): number {
    let n = 0;
    for (const set of this.#open.values()) for (const c of set) n += c.queuedBytes();
    return n;
  }

  /** The server's 'upgrade' listener. Nothing a client sends here may throw. */
  readonly upgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const headers = req.headers;
    const protocol = String(headers.upgrade ?? '').trim().toLowerCase();
    if (protocol !== 'websocket') {
      if (this.#deps.plain !== undefined && serveIgnoringUpgrade(req, socket, head, this.#deps.plain)) return;
      refuseUpgrade(socket, 'ROLLGATE_MALFORMED_REQUEST', `upgrade: only websocket is taken, not ${JSON.stringify(String(headers.upgrade ?? '').slice(0, 40))}, on a request with a body; send it without Upgrade`);
      return;
    }
    if (req.method !== 'GET' || (headers.host === undefined && req.httpVersionMinor === 1)) {
      refuseUpgrade(socket, 'ROLLGATE_MALFORMED_REQUEST', 'a WebSocket handshake is a GET request with a Host header (RFC 6455 §4.1)');
      return;
    }
    let url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47) url = originForm(url);
    const route = this.#deps.match(url);
    if (route === null) {
      const q = url.indexOf('?');
      refuseUpgrade(socket, 'ROLLGATE_NO_ROUTE', `no route matches path ${(q === -1 ? url : url.slice(0, q)).slice(0, 200)}`);
      return;
    }
    this.#proxy(route, req, socket, head, url);
  };

  #proxy(route: WsRoute, req: IncomingMessage, socket: Socket, head: Buffer, url: string): void {
    const given = req.headers[REQUEST_ID];
    const hasId = typeof given === 'string' && given !== '';
    const requestId = hasId ? given : this.#deps.nextId();
    const state = route.picker.state;
    const toCandidate = route.picker.pickCandidate(req.headers);
    const upstream = toCandidate ? (state.candidate as Upstream) : state.stable;
    // retryOnStable: a candidate handshake that failed before the client got anything is sent to stable.
    const retry = toCandidate && route.config.retryOnStable ? () => this.#connect(route, req, socket, head, url, requestId, hasId, state.stable, null) : null;
    this.#connect(route, req, socket, head, url, requestId, hasId, upstream, retry);
  }

  #connect(route: WsRoute, req: IncomingMessage, socket: Socket, head: Buffer, url: string, requestId: string, hasId: boolean, upstream: Upstream, retry: (() => void) | null): void {
    const startedAt = performance.now();
    const forwarded = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, requestId, hasId, socket.remoteAddress, (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http', route.dataHeader, upstream.snapshot);
    const target = this.#target(upstream);
    const request = handshakeRequest(upstream.basePath + url, target.host, forwarded, 'websocket');
    let set = this.#open.get(route.name);
    if (set === undefined) this.#open.set(route.name, (set = new Set()));
    const open = set;
    const role = upstream === route.picker.state.stable ? 'stable' : 'candidate';
    const conn = new WsConnection(
      { route: route.name, role, upstream, requestId, startedAt, timeouts: route.config.timeouts, sink: this.#deps.sink, onEnd: (c) => open.delete(c), retry },
      socket,
    );
    open.add(conn);
    conn.start(target, request, head);
  }

  #target(upstream: Upstream): URL {
    let u = this.#targets.get(upstream);
    if (u === undefined) this.#targets.set(upstream, (u = new URL(upstream.url)));
    return u;
  }

  /**
   * After a rollback: closes (1012, service restart) the route's connections to versions it no
   * longer routes to, so their clients reconnect and land on what serves now.
   */
  rolledBack(route: WsRoute): void {
    if (route.config.websocket.keepOnRollback) return;
    const set = this.#open.get(route.name);
    if (set === undefined) return;
    const s = route.picker.state;
    for (const c of [...set]) {
      const routed = c.version === s.stableLabel || (s.candidateRoutable && c.version === s.candidateLabel);
      if (!routed) c.close(CLOSE_SERVICE_RESTART);
    }
  }

  /** Shutdown: every connection is closed with 1001 (going away). */
  closeAll(): void {
    for (const set of this.#open.values()) for (const c of [...set]) c.close(CLOSE_GOING_AWAY);
  }
}
