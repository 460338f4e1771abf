import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { RouteConfig } from '../config/types.js';
import type { Picker } from '../traffic/picker.js';
import { SMALL_BODY_BYTES, type ExchangeContext, type ExchangeRoute } from './exchange-parts.js';
import { H2Exchange } from './grpc-exchange.js';
import { H2Http1Exchange } from './h2-http1.js';
import { GRPC, answerH2, isGrpc } from './h2-answers.js';
import { H2_MAX_HEADER_LIST_SIZE, h2RequestHeaders } from './h2-listener.js';
import type { RequestIds } from './request-id.js';
import type { RouteTable } from './route-table.js';
import type { Upstream } from './upstream.js';

/** What a stream needs of its route (RouteRuntime in gateway.ts). */
export interface H2Route extends ExchangeRoute {
  readonly config: RouteConfig;
  readonly pathPrefix: string;
  readonly picker: Picker<Upstream>;
  /** Request bodies up to this size are read whole first, replayable on stable. */
  readonly bufferLimit: number;
  /** The methods replayed on stable after the candidate may have received them; null: every method. */
  readonly replayMethods: ReadonlySet<string> | null;
}

/**
 * One HTTP/2 stream: matches a route on `:path`, picks the version with the route's picker (the
 * call's metadata are its headers, so sticky keys and the override work per call) and proxies it
 * to that version's HTTP/2 upstream. A plain request to a version that speaks HTTP/1.1 is
 * translated (h2-http1.ts); a gRPC call is not, gRPC needs HTTP/2 end to end.
 */
export function routeStream(table: RouteTable<H2Route>, ctx: ExchangeContext, ids: RequestIds, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, remoteAddress: string | undefined): void {
  const startedAt = performance.now();
  const grpc = isGrpc(headers);
  const path = headers[':path'] ?? '/';
  // The limit is advertised in SETTINGS, but a client may send more: the same 16 KiB as HTTP/1.1.
  if (headerListSize(headers) > H2_MAX_HEADER_LIST_SIZE) {
    answerH2(stream, grpc, GRPC.RESOURCE_EXHAUSTED, 'ROLLGATE_HEADERS_TOO_LARGE', `the request headers are over ${H2_MAX_HEADER_LIST_SIZE / 1024} KiB`);
    return;
  }
  // CONNECT asks for a tunnel (RFC 9113 §8.5): no version can answer it, so none is blamed for it.
  if (headers[':method'] === 'CONNECT') {
    answerH2(stream, grpc, GRPC.UNIMPLEMENTED, 'ROLLGATE_MALFORMED_REQUEST', 'CONNECT is not served: the data plane is not a forward proxy');
    return;
  }
  const route = table.match(path);
  if (route === null) {
    const q = path.indexOf('?');
    const message = `no route matches path ${(q === -1 ? path : path.slice(0, q)).slice(0, 200)}`;
    answerH2(stream, grpc, GRPC.UNIMPLEMENTED, 'ROLLGATE_NO_ROUTE', message);
    return;
  }
  const state = route.picker.state;
  const toCandidate = route.picker.pickCandidate(headers);
  const upstream = toCandidate ? (state.candidate as Upstream) : state.stable;
  const given = headers['x-request-id'];
  const hasId = typeof given === 'string' && given !== '';
  const requestId = hasId ? given : ids.next();
  if (upstream.h2 === null && !grpc) {
    const replay = toCandidate && route.config.retryOnStable && state.stable.h2 === null ? state.stable : null;
    const method = headers[':method'] ?? 'GET';
    const replayIfReceived = replay === null || route.replayMethods === null || route.replayMethods.has(method);
    const plan = { toCandidate, upstream, replay, replayIfReceived, bufferLimit: replay === null ? SMALL_BODY_BYTES : route.bufferLimit, requestId, hasId, remoteAddress, startedAt };
    new H2Http1Exchange(ctx, route, stream, plan).start(headers, plan);
    return;
  }
  if (upstream.h2 === null) {
    const message = `version ${upstream.label} of route ${route.name} speaks HTTP/1.1 (protocol: http1); HTTP/2 calls need protocol h2c or h2`;
    answerH2(stream, grpc, GRPC.UNIMPLEMENTED, 'ROLLGATE_UPSTREAM_ERROR', message, { 'x-rollgate-route': route.name, 'x-rollgate-version': upstream.label });
    return;
  }
  const replayTo = toCandidate && route.config.retryOnStable ? state.stable : null;
  const replay = replayTo !== null && replayTo.h2 !== null ? replayTo : null;
  const origin = new URL(upstream.h2.origin);
  const request = h2RequestHeaders(headers, requestId, remoteAddress, route.dataHeader, origin.host, origin.protocol.slice(0, -1));
  const plan = { toCandidate, upstream, replay, limit: route.config.maxReplayBodyBytes, responseMs: route.config.timeouts.responseMs, requestId, startedAt };
  new H2Exchange(ctx, route, stream, grpc, request, path, plan).start();
}

/** A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2): names, values, 32 octets each. */
function headerListSize(headers: IncomingHttpHeaders): number {
  let size = 0;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (typeof v === 'string') size += name.length + v.length + 32;
    else for (const one of v) size += name.length + one.length + 32;
  }
  return size;
}
