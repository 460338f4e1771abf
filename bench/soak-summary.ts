/** The soak's sample lines, and what the summary makes of them: slopes and the targets. */

export interface SampleLine {
  kind: 'sample';
  /** Seconds since the load started. */
  t: number;
  rssMiB: number;
  heapAfterGcMiB: number;
  /** Open descriptors: the mean of the interval's one-second readings, and the most. */
  fds: number;
  fdsMax: number;
  /** Sockets from the gateway to each model server, by its name: the means of the readings. */
  socketsByUpstream: Record<string, number>;
  /** The most sockets to all model servers together in one reading. */
  socketsMax: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** The gateway's CPU time over the interval, in % of one core. */
  cpuPct: number;
  /** How much of the interval the event-loop thread was runnable but waited for a CPU (other processes), %. */
  runQueueWaitPct: number | null;
  /** Client answers so far, and the errors among them. */
  requests: number;
  errors: { expected: number; unexpected: number };
}

export const TARGETS = {
  /** Heap after a forced collection grows by less than this per 10 minutes. */
  heapMiBPer10Min: 1,
  /**
   * Open descriptors and sockets to the model servers: flat, a least-squares slope within this
   * either way per 10 minutes. The readings swing with the candidates coming and going (a slope's
   * standard error is about 1.6 per 10 minutes); one descriptor leaked per trip would be +230.
   */
  fdsPer10Min: 8,
  socketsPer10Min: 8,
  /** The worst 10-second event-loop delay p99 after the warm-up. */
  eventLoopP99Ms: 20,
} as const;

/**
 * The steady state the targets are judged on: the last 8 minutes, or the last 80% of a shorter
 * run (the first part is the warm-up: code being compiled, pools and windows filling).
 */
export const SLOPE_WINDOW_S = 480;

const round = (n: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/** Least-squares slope of y over x; NaN with fewer than two distinct x. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

const totalSockets = (s: SampleLine): number => Object.values(s.socketsByUpstream).reduce((a, b) => a + b, 0);

/** Per 10 minutes, from samples whose t is in seconds. */
const per10Min = (samples: SampleLine[], y: (s: SampleLine) => number): number => round(slope(samples.map((s) => [s.t, y(s)])) * 600);

export interface SlopeFigures {
  window: { fromS: number; toS: number; samples: number };
  heapMiBPer10Min: number;
  rssMiBPer10Min: number;
  fdsPer10Min: number;
  socketsPer10Min: number;
  socketsPer10MinByUpstream: Record<string, number>;
  first: { heapAfterGcMiB: number; rssMiB: number; fds: number; sockets: number };
  last: { heapAfterGcMiB: number; rssMiB: number; fds: number; sockets: number };
  /** The worst event-loop figures in the window, and over the whole run (with the warm-up). */
  eventLoopP99MaxMs: number;
  eventLoopMaxMs: number;
  eventLoopP99MaxMsWithWarmUp: number;
  /** How much of the window the gateway's event-loop thread waited for a CPU, on average (%). */
  runQueueWaitPctMean: number | null;
  cpuPctMean: number;
}

/** Slopes and the worst event-loop delay over the window at the end of a run of `runS` seconds. */
export function slopes(samples: SampleLine[], runS: number): SlopeFigures {
  const fromS = runS - Math.min(SLOPE_WINDOW_S, 0.8 * runS);
  const w = samples.filter((s) => s.t >= fromS - 1e-6);
  if (w.length < 2) throw new Error(`too few samples to fit a slope: ${w.length}`);
  const upstreams = Object.keys(w[0]!.socketsByUpstream);
  const point = (s: SampleLine) => ({ heapAfterGcMiB: s.heapAfterGcMiB, rssMiB: s.rssMiB, fds: s.fds, sockets: totalSockets(s) });
  return {
    window: { fromS: w[0]!.t, toS: w[w.length - 1]!.t, samples: w.length },
    heapMiBPer10Min: per10Min(w, (s) => s.heapAfterGcMiB),
    rssMiBPer10Min: per10Min(w, (s) => s.rssMiB),
    fdsPer10Min: per10Min(w, (s) => s.fds),
    socketsPer10Min: per10Min(w, totalSockets),
    socketsPer10MinByUpstream: Object.fromEntries(upstreams.map((u) => [u, per10Min(w, (s) => s.socketsByUpstream[u] ?? 0)])),
    first: point(w[0]!),
    last: point(w[w.length - 1]!),
    eventLoopP99MaxMs: round(Math.max(...w.map((s) => s.eventLoopP99Ms))),
    eventLoopMaxMs: round(Math.max(...w.map((s) => s.eventLoopMaxMs))),
    eventLoopP99MaxMsWithWarmUp: round(Math.max(...samples.map((s) => s.eventLoopP99Ms))),
    runQueueWaitPctMean: w.some((s) => s.runQueueWaitPct === null) ? null : round(mean(w.map((s) => s.runQueueWaitPct as number))),
    cpuPctMean: round(mean(w.map((s) => s.cpuPct))),
  };
}

/** Which resource targets a run met. */
export function resourcePass(f: SlopeFigures): { heap: boolean; fds: boolean; sockets: boolean; eventLoop: boolean } {
  return {
    heap: f.heapMiBPer10Min < TARGETS.heapMiBPer10Min,
    fds: Math.abs(f.fdsPer10Min) <= TARGETS.fdsPer10Min,
    sockets: Math.abs(f.socketsPer10Min) <= TARGETS.socketsPer10Min,
    eventLoop: f.eventLoopP99MaxMs < TARGETS.eventLoopP99Ms,
  };
}
