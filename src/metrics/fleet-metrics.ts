import { AggregatorRegistry, type Registry } from 'prom-client';
import type { IpcChannel } from '../store/hub-ipc.js';
import { talliesOf, type VersionTally } from './recorder.js';

/** Every message of this protocol carries this tag, so it shares the channel with any other. */
const TAG = 'rollgate-metrics';

/**
 * What the primary shows for the fleet: the route state it holds, and the windows merged from its
 * workers' (worker-windows.ts); never one value per worker added up.
 */
const PRIMARY_ONLY = new Set(['rollgate_candidate_weight', 'rollgate_window_error_rate', 'rollgate_window_latency_seconds']);
/** Kept from a worker that exited: the counts it had made (its gauges died with it). */
const KEPT_TYPES = new Set(['counter', 'histogram']);

type Json = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** A worker's side: answers its primary's requests for this process's metrics. */
export function answerMetricRequests(registry: Registry, channel: IpcChannel): void {
  channel.on('message', (raw: unknown) => {
    const m = raw as { t?: unknown; id?: unknown } | null;
    if (m === null || typeof m !== 'object' || m.t !== TAG || typeof m.id !== 'number') return;
    const id = m.id;
    void registry.getMetricsAsJSON().then(
      (metrics) => channel.connected && channel.send({ t: TAG, id, metrics }),
      (err: Error) => channel.connected && channel.send({ t: TAG, id, error: err.message }),
    );
  });
}

/**
 * The fleet's metrics in the primary of `listen.workers`: its own registry (route state and
 * windows, every rollback, its process) and every live worker's (traffic, their processes), asked
 * over IPC at each scrape and aggregated as prom-client's cluster mode does (counters and
 * histograms summed). A worker that does not answer within `timeoutMs` is left out of that
 * scrape; a worker that exited leaves its counts as last scraped, so the fleet's counters do not
 * go back when a worker is restarted.
 */
export class FleetMetrics {
  readonly #own: Registry;
  readonly #workers: () => Iterable<{ id: number; channel: IpcChannel }>;
  readonly #timeoutMs: number;
  readonly #last = new Map<number, Json>();
  #retired: Json = [];
  #retiring: Promise<void> = Promise.resolve();
  #next = 0;
  readonly registry: { metrics(): Promise<string>; readonly contentType: string };

  constructor(own: Registry, workers: () => Iterable<{ id: number; channel: IpcChannel }>, timeoutMs = 2_000) {
    this.#own = own;
    this.#workers = workers;
    this.#timeoutMs = timeoutMs;
    this.registry = { metrics: async () => (await this.#aggregate()).metrics(), contentType: own.contentType };
  }

  async tallies(): Promise<VersionTally[]> {
    return talliesOf((await (await this.#aggregate()).getMetricsAsJSON()));
  }

  /** A worker exited: its last counts stay in the fleet's. */
  retire(id: number): void {
    const last = this.#last.get(id);
    this.#last.delete(id);
    if (last === undefined) return;
    const kept = last.filter((m) => KEPT_TYPES.has(String(m.type)));
    // One summed snapshot for every worker that exited, however many did.
    this.#retiring = this.#retiring.then(async () => {
      this.#retired = this.#retired.length === 0 ? kept : await AggregatorRegistry.aggregate([this.#retired, kept]).getMetricsAsJSON();
    });
  }

  async #aggregate(): Promise<Registry> {
    const own = await this.#own.getMetricsAsJSON();
    const answers = await Promise.all([...this.#workers()].map((w) => this.#ask(w)));
    await this.#retiring;
    const workers = answers.filter((a): a is Json => a !== null).map((metrics) => metrics.filter((m) => !PRIMARY_ONLY.has(m.name)));
    return AggregatorRegistry.aggregate([own, ...workers, ...(this.#retired.length > 0 ? [this.#retired] : [])]);
  }

  #ask(worker: { id: number; channel: IpcChannel }): Promise<Json | null> {
    const { channel } = worker;
    if (!channel.connected) return Promise.resolve(null);
    const id = ++this.#next;
    return new Promise((resolve) => {
      const done = (value: Json | null): void => {
        clearTimeout(timer);
        channel.off('message', onMessage);
        if (value !== null) this.#last.set(worker.id, value);
        resolve(value);
      };
      const onMessage = (raw: unknown): void => {
        const m = raw as { t?: unknown; id?: unknown; metrics?: Json } | null;
        if (m !== null && typeof m === 'object' && m.t === TAG && m.id === id) done(Array.isArray(m.metrics) ? m.metrics : null);
      };
      const timer = setTimeout(() => done(null), this.#timeoutMs);
      channel.on('message', onMessage);
      channel.send({ t: TAG, id });
    });
  }
}
