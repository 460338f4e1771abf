import type { VersionRole } from '../proxy/outcome.js';

/**
 * One replica's evidence over a short interval: requests, counted failures and slow events per
 * version (slow against that replica's thresholds, one count per latency quantile).
 */
export interface FleetDelta {
  stable: { requests: number; failures: number; slow: number[] };
  candidate: { requests: number; failures: number; slow: number[] };
}

/**
 * What a route judge saw since the fleet last took it. Counting is O(1) and allocation-free;
 * only `take()`, on the fleet's schedule, copies.
 */
export class FleetTally {
  /** The running counts; the latency rule adds its slow events here itself. */
  readonly counts: FleetDelta;

  /** `quantiles`: the latency rule's, one slow count each. */
  constructor(quantiles: readonly number[]) {
    const zeros = (): number[] => quantiles.map(() => 0);
    this.counts = { stable: { requests: 0, failures: 0, slow: zeros() }, candidate: { requests: 0, failures: 0, slow: zeros() } };
  }

  /** A finished request of `role`. */
  answer(role: VersionRole, failed: boolean): void {
    const v = role === 'candidate' ? this.counts.candidate : this.counts.stable;
    v.requests++;
    if (failed) v.failures++;
  }

  /** The counts since the last call (null when there were none), starting afresh. */
  take(): FleetDelta | null {
    const d = this.counts;
    if (d.stable.requests + d.candidate.requests + d.stable.slow.reduce((a, b) => a + b, 0) + d.candidate.slow.reduce((a, b) => a + b, 0) === 0) return null;
    const out: FleetDelta = { stable: { ...d.stable, slow: [...d.stable.slow] }, candidate: { ...d.candidate, slow: [...d.candidate.slow] } };
    for (const v of [d.stable, d.candidate]) {
      v.requests = 0;
      v.failures = 0;
      v.slow.fill(0);
    }
    return out;
  }
}
