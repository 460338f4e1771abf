import type { Cluster, Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { serveHub, type IpcChannel } from '../store/hub-ipc.js';
import type { SharedHub } from '../store/shared-hub.js';
import { isWorkerMessage, WORKER_TAG, type FromWorker, type ToWorker } from './worker-protocol.js';

export interface PoolLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A worker that dies sooner than this after it started is restarted after a growing delay. */
const EARLY_DEATH_MS = 1_000;
const RESTART_DELAY_MIN_MS = 100;
const RESTART_DELAY_MAX_MS = 5_000;

interface Member {
  worker: Worker;
  startedAt: number;
  listening: boolean;
}

/**
 * The data-plane processes of `rollgate serve` with `listen.workers` (node:cluster: the primary
 * holds the port and hands each connection to a worker). Each worker is given the config at
 * hello, shares state through the primary's hub (when there is one), and reports when it
 * listens; it loads the routes' state before it listens, so a restarted worker never serves from
 * a state older than the others'. A worker that exits is restarted, unless the pool is stopping.
 */
export class WorkerPool {
  readonly #cluster: Cluster;
  readonly #count: number;
  readonly #setup: { text: string; path: string };
  readonly #hub: SharedHub | null;
  readonly #log: PoolLog;
  readonly #onExit: (id: number) => void;
  readonly #onMessage: (id: number, message: unknown) => void;
  readonly #members = new Map<number, Member>();
  #started = false;
  #stopping = false;
  #restartDelayMs = RESTART_DELAY_MIN_MS;
  /** Workers restarted after an exit, since start. */
  restarts = 0;
  #startup: { resolve: (r: AddressInfo | string) => void } | null = null;

  constructor(options: {
    cluster: Cluster;
    count: number;
    setup: { text: string; path: string };
    hub: SharedHub | null;
    log: PoolLog;
    onExit: (id: number) => void;
    onMessage: (id: number, message: unknown) => void;
  }) {
    this.#cluster = options.cluster;
    this.#count = options.count;
    this.#setup = options.setup;
    this.#hub = options.hub;
    this.#log = options.log;
    this.#onExit = options.onExit;
    this.#onMessage = options.onMessage;
  }

  /** Forks every worker; the address once all listen, or why one could not start. */
  start(): Promise<AddressInfo | string> {
    return new Promise((resolve) => {
      this.#startup = { resolve };
      for (let i = 0; i < this.#count; i++) this.#fork();
    });
  }

  /** The workers that listen now, with their channels (the metrics ask them). */
  *listening(): Iterable<{ id: number; channel: IpcChannel }> {
    for (const [id, m] of this.#members) if (m.listening) yield { id, channel: m.worker.process };
  }

  get size(): number {
    return [...this.listening()].length;
  }

  /** Pids of the live workers (tests and benchmarks). */
  pids(): number[] {
    return [...this.#members.values()].flatMap((m) => (m.worker.process.pid === undefined ? [] : [m.worker.process.pid]));
  }

  /** Tells every worker to drain and stop; resolves once all exited (killed after `deadlineMs`). */
  stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#members.values()].map(
      (m) =>
        new Promise<void>((resolve) => {
          if (m.worker.isDead()) return resolve();
          m.worker.once('exit', () => resolve());
          this.#send(m.worker, { t: WORKER_TAG, stop: true });
        }),
    );
    const kill = setTimeout(() => {
      for (const m of this.#members.values()) if (!m.worker.isDead()) m.worker.process.kill('SIGKILL');
    }, deadlineMs);
    return Promise.all(exits).then(() => clearTimeout(kill));
  }

  #fork(): void {
    const worker = this.#cluster.fork();
    const member: Member = { worker, startedAt: performance.now(), listening: false };
    this.#members.set(worker.id, member);
    if (this.#hub !== null) serveHub(this.#hub, worker.process);
    worker.on('message', (raw: unknown) => {
      if (!isWorkerMessage<FromWorker>(raw)) return this.#onMessage(worker.id, raw);
      if ('hello' in raw) this.#send(worker, { t: WORKER_TAG, setup: this.#setup });
      else if ('listening' in raw) this.#listening(member, raw.listening);
      else if ('failed' in raw) this.#failed(raw.failed);
    });
    worker.on('exit', (code, signal) => this.#exited(member, code, signal));
  }

  #listening(member: Member, address: { address: string; port: number }): void {
    member.listening = true;
    if (this.#started) this.#log.info({ worker: member.worker.id, pid: member.worker.process.pid }, `worker ${member.worker.id} listening with the current route state`);
    if (this.#started || this.#startup === null) return;
    if ([...this.#members.values()].every((m) => m.listening)) {
      this.#started = true;
      this.#startup.resolve({ address: address.address, port: address.port, family: address.address.includes(':') ? 'IPv6' : 'IPv4' });
      this.#startup = null;
    }
  }

  #failed(why: string): void {
    if (this.#started) {
      this.#log.warn({ err: why }, 'a restarted worker could not start');
      return;
    }
    this.#startup?.resolve(why);
    this.#startup = null;
  }

  #exited(member: Member, code: number | null, signal: string | null): void {
    const id = member.worker.id;
    this.#members.delete(id);
    this.#onExit(id);
    if (this.#stopping) return;
    if (!this.#started) {
      this.#failed(`a worker exited before it listened (${signal ?? `code ${code}`})`);
      return;
    }
    const lived = performance.now() - member.startedAt;
    const delay = lived < EARLY_DEATH_MS ? this.#restartDelayMs : 0;
    this.#restartDelayMs = lived < EARLY_DEATH_MS ? Math.min(RESTART_DELAY_MAX_MS, this.#restartDelayMs * 2) : RESTART_DELAY_MIN_MS;
    this.#log.warn({ worker: id, pid: member.worker.process.pid, code, signal, restartInMs: delay }, `worker ${id} exited (${signal ?? `code ${code}`}); starting another`);
    setTimeout(() => {
      if (this.#stopping) return;
      this.restarts++;
      this.#fork();
    }, delay).unref();
  }

  #send(worker: Worker, m: ToWorker): void {
    if (worker.isConnected()) worker.send(m);
  }
}
