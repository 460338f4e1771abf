import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteChecks } from '../checks/route-checks.js';
import type { InFlight } from './inflight.js';
import type { ExchangeRecord } from './exchange-record.js';
import type { OutcomeSink } from './outcome.js';
import type { MappedError } from './upstream-errors.js';

/**
 * The pieces of an exchange that are not the exchange: the listeners every request shares (no
 * closure per request; they find their exchange under a symbol on the request or response), and
 * the shapes the gateway hands it.
 */

/** What the shared listeners call on the exchange a request or response belongs to. */
export interface ExchangeListenerTarget {
  bodyChunk(chunk: Buffer, req: IncomingMessage): void;
  bodyEnd(): void;
  clientClosed(): void;
  resumeUpstream(): void;
}

export const kExchange = Symbol('rollgate.exchange');

export type WithExchange = ServerResponse & { [kExchange]?: ExchangeListenerTarget };
export type WithRequestExchange = IncomingMessage & { [kExchange]?: ExchangeListenerTarget };

/** Bodies up to this size are read whole before the request goes upstream. */
export const SMALL_BODY_BYTES = 64 * 1024;

export function onRequestData(this: WithRequestExchange, chunk: Buffer): void {
  this[kExchange]?.bodyChunk(chunk, this);
}

export function onRequestEnd(this: WithRequestExchange): void {
  this[kExchange]?.bodyEnd();
}

// Shared listener (no closure per request): the response closes before it finished when the
// client went away; the upstream request is then aborted.
export function onResponseClose(this: WithExchange): void {
  const ex = this[kExchange];
  if (ex !== undefined) ex.clientClosed();
}

function resumeUpstream(ex: ExchangeListenerTarget): void {
  ex.resumeUpstream();
}

// Shared listener: the client's socket drained, so the upstream's answer may flow again. Node
// emits 'drain' synchronously when a pipelined response is given the socket as the one before it
// ends, which can be inside undici's parse of another connection's answer; undici's parsers must
// not be resumed inside one another, so the resume waits for the stack to unwind.
export function onResponseDrain(this: WithExchange): void {
  const ex = this[kExchange];
  if (ex !== undefined) process.nextTick(resumeUpstream, ex);
}

export interface SentRequest {
  method: string;
  path: string;
  headers: string[];
  body: Buffer | null;
}

/** Shared with the gateway: once draining, every response tells the client the connection closes. */
export interface DrainState {
  draining: boolean;
}

/** Called once per upstream failure, so the gateway can log it at warn without a flood. */
export type UpstreamErrorReporter = (ex: ExchangeRecord & { readonly upstreamUrl: string }, mapped: MappedError, err: Error) => void;

/** What every exchange of one gateway shares. */
export interface ExchangeContext {
  sink: OutcomeSink;
  onUpstreamError: UpstreamErrorReporter;
  drain: DrainState;
}

/** The route an exchange belongs to: its name and its in-flight lists. */
export interface ExchangeRoute {
  readonly name: string;
  readonly dataHeader: string;
  /** The route's checks, compiled; null when it has none. */
  readonly checks: RouteChecks | null;
  readonly inflight: { readonly stable: InFlight; readonly candidate: InFlight };
}

