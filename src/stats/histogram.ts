/**
 * Log-bucketed latency histogram with bounded relative error (the DDSketch mapping): a value x
 * lands in bin ceil(log_gamma(x / MIN)), so any quantile it reports is within RELATIVE_ERROR of
 * a value that was recorded. Fixed size, allocation-free `add()`.
 */
export const RELATIVE_ERROR = 0.02;
const GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR);
const LOG_GAMMA = Math.log(GAMMA);
/** Smallest distinguished latency, ms; everything below shares bin 0. */
export const MIN_MS = 0.01;
/** Largest distinguished latency, ms (10 minutes); everything above shares the last bin. */
export const MAX_MS = 600_000;
export const BINS = Math.ceil(Math.log(MAX_MS / MIN_MS) / LOG_GAMMA) + 1;

export function binOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  const i = Math.ceil(Math.log(ms / MIN_MS) / LOG_GAMMA);
  return i < BINS ? i : BINS - 1;
}

/** The representative value of a bin: within RELATIVE_ERROR of every value in it. */
export function valueOf(bin: number): number {
  if (bin <= 0) return MIN_MS;
  return (MIN_MS * 2 * GAMMA ** bin) / (GAMMA + 1);
}

/** The q-quantile (0 < q < 1) of counts in `bins` holding `total` values; NaN when empty. */
export function quantileOf(bins: Uint32Array, total: number, q: number): number {
  if (total === 0) return Number.NaN;
  const rank = q * (total - 1);
  let seen = 0;
  for (let i = 0; i < bins.length; i++) {
    seen += bins[i] as number;
    if (seen > rank) return valueOf(i);
  }
  return valueOf(bins.length - 1);
}
