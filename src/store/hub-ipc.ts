import type { PersistedRoute } from '../rollout/types.js';
import type { SharedRoute } from './records.js';
import { storedRoute, type SharedHub, type StoredRoute } from './shared-hub.js';
import type { ChangeListener, SharedState, TripListener, WriteResult } from './shared-state.js';

/** What a process's IPC channel offers (a node:cluster worker, a forked child, `process` inside it). */
export interface IpcChannel {
  send(message: unknown): boolean;
  on(event: 'message', fn: (message: unknown) => void): unknown;
  on(event: 'disconnect', fn: () => void): unknown;
  off(event: 'message', fn: (message: unknown) => void): unknown;
  readonly connected: boolean;
}

/** Every message of this protocol carries this tag, so it shares the channel with any other. */
const TAG = 'rollgate-hub';

type Ask =
  | { op: 'read'; route: string }
  | { op: 'write'; name: string; expected: number; generation: number; by: string; route: PersistedRoute }
  | { op: 'lease'; route: string; revision: number; holder: string; ms: number };
type Request =
  | (Ask & { t: typeof TAG; id: number })
  | { t: typeof TAG; op: 'subscribe' | 'subscribeEvidence' }
  | { t: typeof TAG; op: 'publish'; message: string }
  | { t: typeof TAG; op: 'trip'; route: string; revision: number; by: string };
type Reply = { t: typeof TAG; id: number; result?: unknown; error?: string };
type News =
  | { t: typeof TAG; news: 'change'; route: string; generation: number; by: string; record?: StoredRoute }
  | { t: typeof TAG; news: 'evidence'; message: string }
  | { t: typeof TAG; news: 'trip'; route: string; revision: number; by: string };

const ours = (m: unknown): m is Record<string, unknown> => typeof m === 'object' && m !== null && (m as { t?: unknown }).t === TAG;

/**
 * The primary's side: answers one process's hub requests over its channel and forwards the
 * news it subscribed to, until the channel disconnects. A write's news carries the record
 * written: the process applies it as it arrives, without asking for it (one round trip less
 * between a trip in one process and the others' swaps).
 */
export function serveHub(hub: SharedHub, channel: IpcChannel): void {
  const client = hub.client();
  let unrelay: (() => void) | null = null;
  let untrips: (() => void) | null = null;
  const send = (m: Reply | News): void => {
    if (channel.connected) channel.send(m);
  };
  const onMessage = (raw: unknown): void => {
    if (!ours(raw)) return;
    const m = raw as Request;
    try {
      if (m.op === 'read') send({ t: TAG, id: m.id, result: hub.read(m.route) });
      else if (m.op === 'write') send({ t: TAG, id: m.id, result: hub.write(m.name, m.expected, m.generation, m.by, m.route) });
      else if (m.op === 'lease') send({ t: TAG, id: m.id, result: hub.lease(m.route, m.revision, m.holder, m.ms) });
      else if (m.op === 'subscribe') {
        unrelay ??= hub.relayChanges((route, generation, by, record) => send({ t: TAG, news: 'change', route, generation, by, record }));
        untrips ??= hub.listenTrips((route, revision, by) => send({ t: TAG, news: 'trip', route, revision, by }));
      } else if (m.op === 'trip') hub.noticeTrip(m.route, m.revision, m.by);
      else if (m.op === 'subscribeEvidence') void client.subscribeEvidence((message) => send({ t: TAG, news: 'evidence', message }));
      else if (m.op === 'publish') hub.publishEvidence(m.message);
    } catch (err) {
      if ('id' in m) send({ t: TAG, id: m.id, error: (err as Error).message });
    }
  };
  channel.on('message', onMessage);
  channel.on('disconnect', () => {
    channel.off('message', onMessage);
    unrelay?.();
    untrips?.();
    void client.close();
  });
}

/** A data-plane process's side: the shared state of the hub in its primary, over `channel`. */
export function hubClient(channel: IpcChannel): SharedState {
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const changes: ChangeListener[] = [];
  const evidence: ((message: string, channel: string) => void)[] = [];
  const trips: TripListener[] = [];
  const onMessage = (raw: unknown): void => {
    if (!ours(raw)) return;
    const m = raw as Reply | News;
    if ('news' in m) {
      // Each listener checks its own copy of the record, as its read would; a record that fails
      // the check is not passed on, and the listener's read refuses it.
      if (m.news === 'change') for (const fn of changes) fn(m.route, m.generation, m.by, m.record === undefined ? undefined : storedRoute(m.route, m.record));
      else if (m.news === 'trip') for (const fn of trips) fn(m.route, m.revision, m.by);
      else for (const fn of evidence) fn(m.message, 'evidence');
      return;
    }
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(m.error));
    else p?.resolve(m.result);
  };
  channel.on('message', onMessage);
  const ask = <R>(request: Ask): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      if (!channel.connected) return reject(new Error('the primary is gone'));
      const id = ++next;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      channel.send({ ...request, t: TAG, id });
    });
  return {
    get ready() {
      return channel.connected;
    },
    connect: () => Promise.resolve(),
    onReady: () => undefined,
    read: (route) => ask<SharedRoute | null>({ op: 'read', route }),
    write: (name, expected, generation, by, route) => ask<WriteResult>({ op: 'write', name, expected, generation, by, route }),
    lease: (route, revision, holder, ms) => ask<{ state: 'kept' | 'taken' | 'other'; term: number }>({ op: 'lease', route, revision, holder, ms }),
    subscribe: (onChange) => {
      changes.push(onChange);
      channel.send({ t: TAG, op: 'subscribe' });
      return Promise.resolve();
    },
    subscribeEvidence: (onEvidence) => {
      evidence.push(onEvidence);
      channel.send({ t: TAG, op: 'subscribeEvidence' });
      return Promise.resolve();
    },
    publishEvidence: (message) => {
      if (channel.connected) channel.send({ t: TAG, op: 'publish', message });
    },
    noticeTrip: (route, revision, by) => {
      if (channel.connected) channel.send({ t: TAG, op: 'trip', route, revision, by });
    },
    subscribeTrips: (onTrip) => {
      trips.push(onTrip);
    },
    close: () => {
      channel.off('message', onMessage);
      for (const p of pending.values()) p.reject(new Error('closed'));
      pending.clear();
      return Promise.resolve();
    },
  };
}
