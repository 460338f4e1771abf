/**
 * What the health checks (SPEC §3 `healthCheck`) have said of a route's two versions. Pure: the
 * controller acts on what `report()` returns.
 */
export type HealthChange =
  /** The candidate passed its first check since it was unhealthy: its plan may start. */
  | 'candidate_healthy'
  /** The candidate failed `unhealthyAfter` checks in a row: roll it back. */
  | 'candidate_failed'
  | 'stable_unhealthy'
  | 'stable_recovered'
  | null;

export class HealthTracker {
  readonly #limit: number;
  /** The candidate passed a health check (always true without one). */
  candidateHealthy = true;
  candidateFailures = 0;
  stableHealthy = true;
  stableFailures = 0;
  /** The candidate's beforeTraffic hooks are done (always true without any). */
  dataReady = true;

  constructor(unhealthyAfter: number) {
    this.#limit = unhealthyAfter;
  }

  /**
   * A new candidate: healthy at once without checks, else after its first pass; its data ready
   * at once without beforeTraffic hooks, else once they are done.
   */
  resetCandidate(checked: boolean, gated: boolean): void {
    this.candidateHealthy = !checked;
    this.candidateFailures = 0;
    this.dataReady = !gated;
  }

  /** The candidate may take traffic (or copies): healthy, and its data ready. */
  get candidateReady(): boolean {
    return this.candidateHealthy && this.dataReady;
  }

  /** The candidate becomes stable: its health goes with it. */
  promoted(): void {
    this.stableHealthy = this.candidateHealthy;
    this.stableFailures = this.candidateFailures;
  }

  /** Another version became stable (a rollback to it): it is presumed healthy. */
  newStable(): void {
    this.stableHealthy = true;
    this.stableFailures = 0;
  }

  /** The candidate as the route state shows it: healthy and no failed check since. */
  get candidateShownHealthy(): boolean {
    return this.candidateHealthy && this.candidateFailures === 0;
  }

  report(role: 'stable' | 'candidate', ok: boolean): HealthChange {
    if (role === 'stable') {
      if (ok) {
        this.stableFailures = 0;
        if (this.stableHealthy) return null;
        this.stableHealthy = true;
        return 'stable_recovered';
      }
      if (++this.stableFailures >= this.#limit && this.stableHealthy) {
        this.stableHealthy = false;
        return 'stable_unhealthy';
      }
      return null;
    }
    if (ok) {
      this.candidateFailures = 0;
      if (this.candidateHealthy) return null;
      this.candidateHealthy = true;
      return 'candidate_healthy';
    }
    return ++this.candidateFailures >= this.#limit ? 'candidate_failed' : null;
  }
}
