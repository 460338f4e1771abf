import type { RouteController } from '../rollout/route-controller.js';
import { HealthChecker } from './checker.js';

/** One route's health checkers, kept on the versions the route has now. */
export class RouteHealthChecks<U> {
  readonly route: string;
  readonly #controller: RouteController<U>;
  readonly #checkers = new Map<'stable' | 'candidate', { version: string; url: string; checker: HealthChecker }>();

  constructor(controller: RouteController<U>) {
    this.route = controller.name;
    this.#controller = controller;
  }

  /** Starts, moves or stops the checkers after a change of the route's versions. */
  sync(): void {
    const s = this.#controller.state();
    this.#keep('stable', { version: s.stable.version, url: s.stable.url });
    this.#keep('candidate', s.candidate !== null && s.phase !== 'rolled_back' ? { version: s.candidate.version, url: s.candidate.url } : null);
  }

  stop(): void {
    for (const c of this.#checkers.values()) c.checker.stop();
    this.#checkers.clear();
  }

  #keep(role: 'stable' | 'candidate', want: { version: string; url: string } | null): void {
    const have = this.#checkers.get(role);
    if (have !== undefined && want !== null && have.version === want.version && have.url === want.url) return;
    have?.checker.stop();
    this.#checkers.delete(role);
    const hc = this.#controller.config.healthCheck;
    if (want === null || hc === null) return;
    const checker = new HealthChecker({ url: want.url, path: hc.path, intervalMs: hc.intervalMs, timeoutMs: hc.timeoutMs }, (ok, detail) =>
      this.#controller.reportHealth(role, want.version, ok, detail),
    );
    this.#checkers.set(role, { ...want, checker });
    checker.start();
  }
}
