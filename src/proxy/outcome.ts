import type { CheckReport } from '../checks/report.js';

/**
 * What the gateway learned from one finished request: the seam between the data plane and the
 * sliding windows. Handed synchronously to one sink per gateway; the object may be reused after
 * the call returns, so a sink copies what it keeps.
 */
export type VersionRole = 'stable' | 'candidate';

/**
 * - `none`: the upstream answered and the answer reached the client (any status below 500);
 * - `status`: the upstream answered 5xx;
 * - `connect`: no connection (refused, unreachable, DNS);
 * - `reset`: the connection broke before an answer (reset, closed early);
 * - `timeout`: no connection within timeouts.connect or no answer within timeouts.response;
 * - `stream`: the answer broke after it had begun (mid-body reset or idle timeout);
 * - `protocol`: the upstream sent something that is not HTTP;
 * - `aborted`: the client went away first; never counted against a version;
 * - `invalid`, `truncated`, `empty`, `stream_error`: a 2xx answer that failed the route's checks
 *   (SPEC §9): not JSON or not the schema's; an LLM stream cut short; no content; an error inside.
 */
export type FailureKind = 'none' | 'status' | 'connect' | 'reset' | 'timeout' | 'stream' | 'protocol' | 'aborted' | 'invalid' | 'truncated' | 'empty' | 'stream_error';

export interface Outcome {
  readonly route: string;
  readonly role: VersionRole;
  /** The version label that served (or failed) it. */
  readonly version: string;
  /** Upstream status code, 0 when there was none. */
  readonly status: number;
  readonly failure: FailureKind;
  /** Request arrival to the upstream's last byte (or the failure), on the gateway's clock, in ms. */
  readonly latencyMs: number;
  /** Request arrival to the upstream's response head, in ms; NaN when none came. */
  readonly ttfbMs: number;
  /** Time of arrival, performance.now() scale. */
  readonly startedAt: number;
  /** The answer streams (event stream, or no content-length): its time to first byte is its latency. */
  readonly streaming: boolean;
  /** A candidate failure replayed on stable (retryOnStable): the client got stable's answer instead. */
  readonly replayed: boolean;
  /** The latency tests that already counted this request as slow while it was in flight (bit i: quantile i). */
  readonly slowMask?: number;
  /** The x-request-id the client got. */
  readonly requestId?: string;
  /**
   * Shadow copies only: stable's judged latency (ms) for the same request, NaN when stable gave
   * no good answer. The judge compares the two answers to one request with each other.
   */
  readonly pairedMs?: number;
  /** What the route's checks found of the answer; null (or absent) on a route without checks. */
  readonly check?: CheckReport | null;
}

export type OutcomeSink = (outcome: Outcome) => void;
