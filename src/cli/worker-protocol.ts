/** The messages between `rollgate serve`'s primary and its workers (`listen.workers`), beside the hub's and the metrics'. */
export const WORKER_TAG = 'rollgate-worker';

/** What a worker is given once it says hello: the config text the primary accepted, and where it was read. */
export interface WorkerSetup {
  t: typeof WORKER_TAG;
  setup: { text: string; path: string };
}

export type FromWorker =
  | { t: typeof WORKER_TAG; hello: true }
  | { t: typeof WORKER_TAG; listening: { address: string; port: number } }
  | { t: typeof WORKER_TAG; failed: string };

export type ToWorker = WorkerSetup | { t: typeof WORKER_TAG; stop: true };

export const isWorkerMessage = <M extends { t: typeof WORKER_TAG }>(m: unknown): m is M => typeof m === 'object' && m !== null && (m as { t?: unknown }).t === WORKER_TAG;
