import type { Rollouts } from '../rollout/rollouts.js';
import type { RouteState } from '../rollout/types.js';
import type { WindowSnapshot } from '../stats/window.js';
import type { IpcChannel } from '../store/hub-ipc.js';

/** Every message of this protocol carries this tag, so it shares the channel with any other. */
const TAG = 'rollgate-windows';
/** How often each worker sends its windows to the primary. */
export const WINDOWS_INTERVAL_MS = 500;

type Side = { version: string; window: WindowSnapshot } | null;
type Windows = Record<string, { stable: Side; candidate: Side }>;

/**
 * A worker's side: every `intervalMs`, each route's windows (over this worker's traffic, with the
 * versions they are of) go to the primary, which shows the fleet's. Off the request path.
 */
export function sendWindows(rollouts: Rollouts<unknown>, channel: IpcChannel, intervalMs = WINDOWS_INTERVAL_MS): () => void {
  const timer = setInterval(() => {
    if (!channel.connected) return;
    const windows: Windows = {};
    for (const c of rollouts.routes()) {
      const s = c.state();
      windows[s.name] = {
        stable: s.windows.stable === null ? null : { version: s.stable.version, window: s.windows.stable },
        candidate: s.windows.candidate === null || s.candidate === null ? null : { version: s.candidate.version, window: s.windows.candidate },
      };
    }
    channel.send({ t: TAG, windows });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The primary's side: the latest windows of each worker, merged per route for the admin view and
 * the window gauges. Counts, failures and rates add up; each latency quantile is the mean of the
 * workers' weighted by their counts (node:cluster spreads connections evenly, so the workers see
 * alike traffic; the merged quantile is an estimate, not a quantile of the pooled samples).
 */
export class FleetWindows {
  readonly #latest = new Map<number, Windows>();

  /** Takes a worker's message if it is one of this protocol's. */
  receive(worker: number, raw: unknown): void {
    const m = raw as { t?: unknown; windows?: unknown } | null;
    if (m === null || typeof m !== 'object' || m.t !== TAG || typeof m.windows !== 'object' || m.windows === null) return;
    this.#latest.set(worker, m.windows as Windows);
  }

  forget(worker: number): void {
    this.#latest.delete(worker);
  }

  /** Shows the merged windows in every route's view of `rollouts`. */
  showIn(rollouts: Rollouts<unknown>): void {
    for (const c of rollouts.routes()) c.showWindows((stable, candidate) => this.#merged(c.name, stable, candidate));
  }

  /** The workers' windows of the versions the route has now (a worker may not have applied a change yet). */
  #merged(route: string, stable: string, candidate: string | null): RouteState['windows'] | null {
    if (this.#latest.size === 0) return null;
    const sides: { stable: WindowSnapshot[]; candidate: WindowSnapshot[] } = { stable: [], candidate: [] };
    for (const w of this.#latest.values()) {
      const r = w[route];
      if (r === undefined) continue;
      if (r.stable !== null && r.stable.version === stable) sides.stable.push(r.stable.window);
      if (r.candidate !== null && r.candidate.version === candidate) sides.candidate.push(r.candidate.window);
    }
    return { stable: merge(sides.stable), candidate: merge(sides.candidate) };
  }
}

function merge(windows: WindowSnapshot[]): WindowSnapshot | null {
  const first = windows[0];
  if (first === undefined) return null;
  const out: WindowSnapshot = { count: 0, failures: 0, failuresByKind: { ...first.failuresByKind }, failureRate: 0, rate: 0, latencyMs: {} };
  for (const k of Object.keys(out.failuresByKind) as (keyof WindowSnapshot['failuresByKind'])[]) out.failuresByKind[k] = 0;
  const weighted: Record<string, { sum: number; n: number }> = {};
  for (const w of windows) {
    out.count += w.count;
    out.failures += w.failures;
    out.rate += w.rate;
    for (const [k, n] of Object.entries(w.failuresByKind)) out.failuresByKind[k as keyof WindowSnapshot['failuresByKind']] += n;
    for (const [q, ms] of Object.entries(w.latencyMs)) {
      const acc = (weighted[q] ??= { sum: 0, n: 0 });
      if (ms !== null && w.count > 0) {
        acc.sum += ms * w.count;
        acc.n += w.count;
      }
    }
  }
  out.failureRate = out.count > 0 ? out.failures / out.count : 0;
  for (const [q, acc] of Object.entries(weighted)) out.latencyMs[q] = acc.n > 0 ? Math.round((acc.sum / acc.n) * 1000) / 1000 : null;
  return out;
}
