/**
 * What the checks of one answer found, as the judge and the metrics read it from an outcome.
 * `pass`, the failure kind, or `unchecked` (an answer over `maxBytes`).
 */
export type CheckOutcome = 'pass' | 'invalid' | 'truncated' | 'empty' | 'stream_error' | 'unchecked';

export const CHECK_OUTCOMES: readonly CheckOutcome[] = ['pass', 'invalid', 'truncated', 'empty', 'stream_error', 'unchecked'];

export interface CheckReport {
  /** The `json` check's outcome; null when it did not run on this answer. */
  readonly json: CheckOutcome | null;
  /** The `llm` check's outcome; null when it did not run on this answer. */
  readonly llm: CheckOutcome | null;
  /** Time to first token (ms from the request's arrival); NaN when not measured. */
  readonly ttftMs: number;
  /** Mean gap between content events (ms); NaN with fewer than two. */
  readonly tpotMs: number;
  /** Why a check failed: the schema error's path and message, or the stream's error. */
  readonly detail: string | null;
}
