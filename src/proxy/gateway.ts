import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig, RouteConfig } from '../config/types.js';
import { Picker, trafficState, type Rng, type TrafficState } from '../traffic/picker.js';
import { watchQueuedAnswer } from './pipelined.js';
import { Exchange } from './exchange.js';
import { SMALL_BODY_BYTES, type DrainState, type ExchangeContext, type UpstreamErrorReporter } from './exchange-parts.js';
import { CHUNKED, REQUEST_ID, upstreamRequestHeaders } from './headers.js';
import type { OutcomeSink } from './outcome.js';
import { InFlight } from './inflight.js';
import { Mirror } from './mirror.js';
import { routeChecks, type RouteChecks } from '../checks/route-checks.js';
import type { AgreementSink } from './agreement.js';
import { weightToBasisPoints } from '../traffic/sticky.js';
import { RequestIds } from './request-id.js';
import { RouteTable } from './route-table.js';
import { Upstream } from './upstream.js';
import { badFraming, missingHost, notFound, originForm } from './not-found.js';
import { dataPlaneServer } from './http-server.js';
import { WebSockets } from './websocket.js';
import { acceptH2c, type H2Side } from './h2-listener.js';
import { routeStream } from './h2-route.js';

/** The small part of a pino logger the data plane uses. */
export interface GatewayLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const SILENT: GatewayLogger = { warn() {}, info() {} };

export interface GatewayOptions {
  /** Where every finished request's outcome goes, synchronously. */
  onOutcome?: OutcomeSink;
  /** Random source of the weighted pick, [0, 1). */
  rng?: Rng;
  logger?: GatewayLogger;
  /**
   * A retired version of a route is gone: no request of it is in flight and the route does not
   * route to that label any more. What is kept per version (metric series) can be dropped.
   */
  onVersionGone?: (route: string, version: string) => void;
  /** Every pair of answers compared for a route's agreement (SPEC §9). */
  onAgreement?: AgreementSink;
}

/** One route at run time: its config, the picker and the upstreams it currently routes to. */
export class RouteRuntime {
  readonly config: RouteConfig;
  readonly name: string;
  readonly pathPrefix: string;
  readonly picker: Picker<Upstream>;
  /** Request bodies up to this size are read whole first: replayable on stable when they fail. */
  readonly bufferLimit: number;
  /** The header each upstream request carries its version's data snapshot id in. */
  readonly dataHeader: string;
  /** Requests in flight per version, oldest first (shadow copies with the candidate's). */
  readonly inflight = { stable: new InFlight(), candidate: new InFlight() };
  /** Shadow copies to the candidate, with their limits and counts. */
  readonly mirror: Mirror;
  /** The checks of every answer and the agreement, compiled; null when the route has neither. */
  readonly checks: RouteChecks | null;
  /** Canary routes with an agreement: the share (basis points) of candidate requests also copied to stable. */
  readonly compareBp: number;
  /** The methods replayed on stable after the candidate may have received them; null: every method. */
  readonly replayMethods: ReadonlySet<string> | null;

  constructor(config: RouteConfig, rng: Rng, sink: OutcomeSink = () => {}, onAgreement?: AgreementSink) {
    this.config = config;
    this.checks = routeChecks(config);
    this.compareBp = weightToBasisPoints(config.agreement?.mirrorPercent ?? 0);
    this.bufferLimit = Math.max(SMALL_BODY_BYTES, config.maxReplayBodyBytes);
    this.replayMethods = config.replayMethods === null ? null : new Set(config.replayMethods);
    this.dataHeader = config.dataHeader;
    this.name = config.name;
    this.pathPrefix = config.pathPrefix;
    const stable = new Upstream(config.stable, config.timeouts);
    const c = config.candidate;
    const candidate = c === null ? null : new Upstream(c, config.timeouts);
    this.picker = new Picker(
      config,
      trafficState(stable, stable.label, candidate, candidate?.label ?? null, c?.weight ?? 0),
      rng,
    );
    this.mirror = new Mirror(config.name, config.shadow, sink, this.inflight.candidate, config.dataHeader, this.checks, onAgreement);
  }

  get traffic(): TrafficState<Upstream> {
    return this.picker.state;
  }

  /** Replaces what the route routes to in one assignment; the next request sees it. */
  setTraffic(state: TrafficState<Upstream>): void {
    this.picker.state = state;
  }

  /** Sets the candidate's weight in percent, keeping everything else. */
  setWeight(weight: number): void {
    const s = this.picker.state;
    this.picker.state = trafficState(s.stable, s.stableLabel, s.candidate, s.candidateLabel, weight, s.candidateRoutable);
  }

  upstreams(): Upstream[] {
    const s = this.picker.state;
    return s.candidate === null ? [s.stable] : [s.stable, s.candidate];
  }
}

// How often a failing upstream is logged at warn, at most.
const UPSTREAM_LOG_INTERVAL_MS = 1_000;

/**
 * The data plane: a plain node:http server whose one request listener matches a route, picks a
 * version and streams the exchange through that version's undici pool. Nothing on this path
 * awaits anything but the upstream.
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly routes: ReadonlyMap<string, RouteRuntime>;
  readonly #table: RouteTable<RouteRuntime>;
  readonly #server: Server;
  readonly #sink: OutcomeSink;
  readonly #log: GatewayLogger;
  readonly #lastUpstreamLog = new Map<Upstream, number>();
  readonly #ids = new RequestIds();
  readonly #drain: DrainState = { draining: false };
  readonly #context: ExchangeContext;
  readonly #onVersionGone: (route: string, version: string) => void;
  /** WebSocket upgrades and the connections they opened (websocket.ts). */
  readonly websockets: WebSockets;
  /** HTTP/2 on the same port (SPEC §9): each stream is one call, routed on its own. */
  readonly #h2: H2Side;
  #closed: Promise<void> | null = null;

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.config = config;
    const rng = options.rng ?? Math.random;
    this.#sink = options.onOutcome ?? (() => {});
    const routes = config.routes.map((r) => new RouteRuntime(r, rng, this.#sink, options.onAgreement));
    this.routes = new Map(routes.map((r) => [r.name, r]));
    this.#table = new RouteTable(routes);
    this.#log = options.logger ?? SILENT;
    this.#onVersionGone = options.onVersionGone ?? (() => {});
    this.#context = { sink: this.#sink, onUpstreamError: this.#reportUpstreamError, drain: this.#drain };
    this.#server = dataPlaneServer(config.listen, this.handle);
    this.websockets = new WebSockets({ match: (url) => this.#table.match(url), nextId: () => this.#ids.next(), sink: this.#sink, plain: this.handle });
    this.#server.on('upgrade', this.websockets.upgrade);
    this.#h2 = acceptH2c(this.#server, config.listen, (stream, headers, remote) => routeStream(this.#table, this.#context, this.#ids, stream, headers, remote));
  }

  get server(): Server {
    return this.#server;
  }

  /** Starts listening on the configured host and port (port 0: any free port). */
  listen(): Promise<AddressInfo> {
    const { host, port } = this.config.listen;
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  get draining(): boolean {
    return this.#drain.draining;
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish (each answered with
   * `connection: close`) for up to `drainTimeoutMs`, then cut what is left and close the pools.
   */
  close(drainTimeoutMs = this.config.listen.drainTimeoutMs): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#drain.draining = true;
    this.websockets.closeAll();
    this.#closed = new Promise<void>((resolve) => {
      const sweep = setInterval(() => this.#server.closeIdleConnections(), 50);
      const deadline = setTimeout(() => {
        this.#server.closeAllConnections();
        this.#h2.destroySessions();
      }, drainTimeoutMs);
      deadline.unref();
      this.#server.close(() => {
        clearInterval(sweep);
        clearTimeout(deadline);
        const pools = [...this.routes.values()].flatMap((r) => r.upstreams());
        void Promise.all(pools.map((u) => u.destroy())).then(() => resolve());
      });
      this.#server.closeIdleConnections();
      this.#h2.closeSessions();
    });
    return this.#closed;
  }

  /**
   * Releases an upstream no route routes to any more: its pool closes after the requests still
   * on it, and once none is left the version is reported gone, unless the route has taken that
   * label again (a redeployed or rolled-back-to version keeps its series).
   */
  retire(route: string, upstream: Upstream): void {
    this.#lastUpstreamLog.delete(upstream);
    // Checked on the next turn: a controller may retire an upstream before it installs the
    // versions that replace it (restore), and the check must see the route as it ends up.
    const check = (): void => {
      const s = this.routes.get(route)?.picker.state;
      if (s !== undefined && (s.stableLabel === upstream.label || s.candidateLabel === upstream.label)) return;
      if (upstream.active === 0) this.#onVersionGone(route, upstream.label);
    };
    upstream.retire(() => setImmediate(check));
  }

  /**
   * The data plane's one request entry: matches a route, picks a version and starts the exchange.
   * The gateway's own server calls it, and so does the Fastify plugin (with the host's raw request
   * and response), so both ways in share one path, one judge and one state. The request's body must
   * not have been read yet.
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    const headers = req.headers;
    if (headers.host === undefined && req.httpVersionMinor === 1) {
      missingHost(res);
      return;
    }
    let url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47) url = originForm(url);
    const route = this.#table.match(url);
    if (route === null) {
      notFound(res, url, this.#drain.draining);
      return;
    }
    // Node's parser takes `Transfer-Encoding: ,chunked` as chunked; an upstream may not.
    const te = headers['transfer-encoding'];
    if (te !== undefined && te !== 'chunked' && !CHUNKED.test(te)) {
      badFraming(res);
      return;
    }
    const given = headers[REQUEST_ID];
    const hasId = typeof given === 'string' && given !== '';
    const requestId = hasId ? given : this.#ids.next();

    const state = route.picker.state;
    const toCandidate = route.picker.pickCandidate(headers);
    const upstream = toCandidate ? (state.candidate as Upstream) : state.stable;
    const replay = toCandidate && route.config.retryOnStable ? state.stable : null;

    const ex = new Exchange(this.#context, route, toCandidate, upstream, replay, res, requestId, startedAt);
    if (res.socket === null) watchQueuedAnswer(req.socket, res);
    const method = req.method ?? 'GET';
    if (replay !== null && route.replayMethods !== null) ex.replayIfReceived = route.replayMethods.has(method);
    // Shadow: a copy for the candidate, sent along with the client's request to stable; a canary
    // route with an agreement sends a share of candidate requests to stable too, only to compare.
    let copyBody = false;
    const copyTo = toCandidate ? (route.compareBp !== 0 && route.picker.chance(route.compareBp) ? state.stable : null) : state.mirrorBp !== 0 && route.picker.pickMirror() ? (state.candidate as Upstream) : null;
    if (copyTo !== null) {
      const m = route.mirror;
      if (headers['transfer-encoding'] !== undefined || !m.canCopyBody(headers['content-length'])) m.drop('body');
      else {
        const copyPath = copyTo.basePath + url;
        ex.mirrorTo = (method, h, body) => m.send(copyTo, method, copyPath, h, body, ex, toCandidate);
        ex.copyFirst = route.picker.coin();
        copyBody = true;
      }
    }
    const upstreamHeaders = upstreamRequestHeaders(req.rawHeaders, headers.connection, requestId, hasId, req.socket.remoteAddress, (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http', route.dataHeader, upstream.snapshot);
    const path = upstream.basePath + url;
    if (headers['transfer-encoding'] !== undefined) {
      ex.startBuffered(req, path, upstreamHeaders, replay === null ? SMALL_BODY_BYTES : route.bufferLimit);
      return;
    }
    const length = headers['content-length'];
    if (length === undefined || length === '0') ex.start(method, path, upstreamHeaders, null);
    else if (copyBody || Number(length) <= (replay === null ? SMALL_BODY_BYTES : route.bufferLimit)) ex.startBuffered(req, path, upstreamHeaders);
    else ex.start(method, path, upstreamHeaders, req);
  };

  readonly #reportUpstreamError: UpstreamErrorReporter = (ex, mapped, err) => {
    const now = performance.now();
    const traffic = this.routes.get(ex.route)?.traffic;
    const key = ex.role === 'candidate' ? traffic?.candidate : traffic?.stable;
    if (key === undefined || key === null) return;
    const last = this.#lastUpstreamLog.get(key) ?? -Infinity;
    if (now - last < UPSTREAM_LOG_INTERVAL_MS) return;
    this.#lastUpstreamLog.set(key, now);
    this.#log.warn(
      { route: ex.route, version: ex.version, upstream: ex.upstreamUrl, failure: ex.failure, code: mapped.code, cause: err.message },
      `upstream ${ex.version} of route ${ex.route} ${mapped.what}`,
    );
  };
}
