import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { startModelServer, type ModelBehaviour, type ModelServer } from '../src/demo/model-server.js';

/**
 * The far side of the rollback bench, in a process of its own so the gateway's event loop holds
 * only the gateway: the stable and candidate model servers (real HTTP servers on loopback) and
 * the load generator (one undici Pool, a fixed number of requests in flight). The bench drives
 * it over the IPC channel; times cross the process boundary as epoch milliseconds
 * (performance.timeOrigin + performance.now()), corrected by a measured clock offset.
 */

export const REQUEST_PATH = '/v1/models/sentiment:predict';
const REQUEST_BODY = JSON.stringify({ instances: [{ text: 'The delivery was late, but support sorted it out quickly.' }] });
const REQUEST_HEADERS = { 'content-type': 'application/json' };

export type Command =
  | { op: 'clock' }
  | { op: 'start'; behaviour: ModelBehaviour }
  | { op: 'load'; url: string; concurrency: number }
  | { op: 'flip'; fault: { close: true } | { behaviour: ModelBehaviour } }
  | { op: 'stop' }
  | { op: 'close' };

/** A response the client saw as an error (status >= 500, or status 0: no response at all). */
export interface ClientError {
  /** When the client had the whole answer (or the error), epoch ms. */
  end: number;
  status: number;
  /** `x-rollgate-version` of the answer, null when there was none. */
  version: string | null;
  message?: string;
}

export interface LoadReport {
  requests: number;
  /** Errors before the flip (the versions' baseline failure rate). */
  errorsBeforeFlip: number;
  afterFlip: { responses: number; byVersion: Record<string, number>; errors: ClientError[] };
  /** When requests reached the candidate server after the flip, epoch ms. */
  candidateArrivals: number[];
}

export interface Replies {
  clock: { now: number };
  start: { stable: string; candidate: string };
  load: Record<string, never>;
  flip: { at: number };
  stop: LoadReport;
  close: Record<string, never>;
}

type Envelope = { id: number } & ({ ok: true; body: unknown } | { ok: false; error: string });

const epoch = (): number => performance.timeOrigin + performance.now();

/** The parent's handle on the driver process. */
export class Driver {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #next = 1;
  #exited: Error | null = null;
  /** Driver epoch minus this process's epoch, ms (set by syncClock). */
  offsetMs = 0;
  /** Round trip of the best clock probe, ms. */
  clockRttMs = Number.NaN;

  constructor(cpu: number | null) {
    this.#child = fork(fileURLToPath(import.meta.url), ['driver'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (cpu !== null && this.#child.pid !== undefined) {
      spawnSync('taskset', ['-a', '-cp', String(cpu), String(this.#child.pid)], { stdio: 'ignore' });
    }
    this.#child.on('message', (m: Envelope) => {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.body);
      else p.reject(new Error(`driver: ${m.error}`));
    });
    this.#child.once('exit', (code, signal) => {
      this.#exited = new Error(`driver process exited (code ${code}, signal ${signal})`);
      for (const p of this.#pending.values()) p.reject(this.#exited);
      this.#pending.clear();
    });
  }

  call<C extends Command>(cmd: C): Promise<Replies[C['op']]> {
    if (this.#exited !== null) return Promise.reject(this.#exited);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve, reject });
      this.#child.send({ id, cmd });
    });
  }

  /** Estimates the offset between the two processes' epoch clocks from the fastest of `n` probes. */
  async syncClock(n = 20): Promise<void> {
    let best = Infinity;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const { now } = await this.call({ op: 'clock' });
      const t1 = performance.now();
      if (t1 - t0 < best) {
        best = t1 - t0;
        this.offsetMs = now - (performance.timeOrigin + (t0 + t1) / 2);
      }
    }
    this.clockRttMs = best;
  }

  /** A driver epoch time on this process's performance.now() scale. */
  local(driverEpoch: number): number {
    return driverEpoch - this.offsetMs - performance.timeOrigin;
  }

  kill(): void {
    if (this.#exited === null) this.#child.kill('SIGKILL');
  }
}

// ---- the driver process ----

interface Load {
  pool: Pool;
  running: boolean;
  workers: Promise<void>[];
  flipAt: number;
  report: LoadReport;
}

function runDriver(): void {
  let stable: ModelServer | null = null;
  let candidate: ModelServer | null = null;
  let load: Load | null = null;
  let flippedAt = Infinity;
  let arrivals: number[] = [];

  const record = (l: Load, status: number, version: string | null, message?: string): void => {
    const end = epoch();
    const r = l.report;
    r.requests++;
    const failed = status === 0 || status >= 500;
    if (end <= l.flipAt) {
      if (failed) r.errorsBeforeFlip++;
      return;
    }
    r.afterFlip.responses++;
    const key = version ?? 'none';
    r.afterFlip.byVersion[key] = (r.afterFlip.byVersion[key] ?? 0) + 1;
    if (failed) r.afterFlip.errors.push({ end, status, version, ...(message !== undefined ? { message } : {}) });
  };

  const worker = async (l: Load): Promise<void> => {
    while (l.running) {
      try {
        const res = await l.pool.request({ path: REQUEST_PATH, method: 'POST', headers: REQUEST_HEADERS, body: REQUEST_BODY });
        await res.body.dump();
        const v = res.headers['x-rollgate-version'];
        record(l, res.statusCode, typeof v === 'string' ? v : null);
      } catch (err) {
        record(l, 0, null, err instanceof Error ? err.message : String(err));
        // A gateway that is gone must not turn this loop into a busy spin.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };

  const stopLoad = async (): Promise<LoadReport | null> => {
    const l = load;
    if (l === null) return null;
    load = null;
    l.running = false;
    await Promise.all(l.workers);
    await l.pool.close().catch(() => undefined);
    return l.report;
  };

  const handle = async (cmd: Command): Promise<unknown> => {
    switch (cmd.op) {
      case 'clock':
        return { now: epoch() };
      case 'start':
        if (stable !== null || candidate !== null) throw new Error('upstreams already running');
        stable = await startModelServer('v1', { ...cmd.behaviour });
        candidate = await startModelServer('v2', { ...cmd.behaviour });
        flippedAt = Infinity;
        arrivals = [];
        candidate.server.on('request', () => {
          const now = epoch();
          if (now > flippedAt) arrivals.push(now);
        });
        return { stable: stable.url, candidate: candidate.url };
      case 'load': {
        if (load !== null) throw new Error('load already running');
        const l: Load = {
          pool: new Pool(cmd.url, { connections: cmd.concurrency, pipelining: 1 }),
          running: true,
          workers: [],
          flipAt: Infinity,
          report: { requests: 0, errorsBeforeFlip: 0, afterFlip: { responses: 0, byVersion: {}, errors: [] }, candidateArrivals: [] },
        };
        for (let i = 0; i < cmd.concurrency; i++) l.workers.push(worker(l));
        load = l;
        return {};
      }
      case 'flip': {
        const c = candidate;
        if (c === null) throw new Error('no candidate to flip');
        const at = epoch();
        flippedAt = at;
        if (load !== null) load.flipAt = at;
        if ('close' in cmd.fault) {
          // What a crashed model server looks like: open connections reset, new ones refused.
          candidate = null;
          void c.close();
        } else {
          c.behaviour = { ...cmd.fault.behaviour };
        }
        return { at };
      }
      case 'stop': {
        const report = await stopLoad();
        if (report === null) throw new Error('no load running');
        report.candidateArrivals = arrivals;
        return report;
      }
      case 'close': {
        await stopLoad();
        const servers = [stable, candidate].filter((s): s is ModelServer => s !== null);
        stable = candidate = null;
        await Promise.all(servers.map((s) => s.close()));
        return {};
      }
    }
  };

  process.on('message', (m: { id: number; cmd: Command }) => {
    handle(m.cmd).then(
      (body) => process.send?.({ id: m.id, ok: true, body }),
      (err: unknown) => process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  // The bench is gone (finished or killed): nothing here outlives it.
  process.once('disconnect', () => process.exit(0));
}

if (process.argv[2] === 'driver' && process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  runDriver();
}
