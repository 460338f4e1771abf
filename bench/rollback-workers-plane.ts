import { createRollgate } from '../src/app.js';
import { joinShared } from '../src/cli/serve-share.js';
import { parseConfig } from '../src/config/load.js';
import type { Outcome } from '../src/proxy/outcome.js';
import type { Rollouts } from '../src/rollout/rollouts.js';
import { hubClient, type IpcChannel } from '../src/store/hub-ipc.js';
import type { TrafficState } from '../src/traffic/picker.js';

/**
 * One data-plane process of the workers scenario of bench:rollback, wired as `rollgate serve`
 * wires a worker of `listen.workers` (the gateway, its own judges at its share of alpha, a
 * ReplicaSync and FleetEvidence over the primary's hub through this process's IPC channel), plus
 * what the bench reads: when the route's picker stopped sending the candidate anything (the
 * assignment of a traffic state with weight 0, the swap itself), what caused it, and when the hub
 * news that led to it arrived. Times are epoch ms (performance.timeOrigin + performance.now()),
 * comparable across the processes of one machine.
 */

export const ROUTE = 'm';
export const PATH_PREFIX = '/m';

export interface PlaneSetup {
  index: number;
  workers: number;
  stable: string;
  candidate: string;
  weight: number;
}

/** One cut of the candidate in this process. */
export interface Cut {
  /** The candidate version whose traffic stopped. */
  version: string;
  at: number;
  /** 'own': this process's judge tripped; 'peer': another process's state was applied. */
  via: 'own' | 'peer' | 'unknown';
  /** Own trips: the deciding sample's end (the judge's decision time). */
  decidedAt: number | null;
  /** When the rollback event reached the 'persist' stage, just before ReplicaSync writes it. */
  publishedAt: number | null;
  /** When this process began its first write to the hub after the cut (handed to the IPC channel). */
  writeSentAt: number | null;
  /** The last hub change news this process received before the cut, and its generation. */
  newsAt: number | null;
  newsGeneration: number | null;
}

export type ToPlane = { cmd: 'state' } | { cmd: 'clock' } | { cmd: 'cuts' };
export type FromPlane =
  | { ready: number }
  | { state: { phase: string; version: string | null; weightBp: number; candidateSamples: number } }
  | { clock: number }
  | { cuts: Cut[] };

const HUB_TAG = 'rollgate-hub';
const epoch = (): number => performance.timeOrigin + performance.now();

async function plane(setup: PlaneSetup): Promise<void> {
  const config = parseConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    routes: [
      {
        name: ROUTE,
        match: { pathPrefix: PATH_PREFIX },
        stable: { version: 'v1', url: setup.stable },
        candidate: { version: 'v2', url: setup.candidate, weight: setup.weight },
        // Only the candidate's errors decide here: a loaded, shared machine must not trip on latency.
        rollback: { latency: { minDelta: '10s' } },
      },
    ],
  });
  const channel = process as unknown as IpcChannel;
  // The hub client's writes, stamped as they are handed to the channel: the message's
  // serialization and the pipe write count in the hop to the primary.
  const send = channel.send.bind(channel);
  channel.send = (m: unknown): boolean => {
    const w = m as { t?: string; op?: string };
    const cut = cuts.at(-1);
    if (w.t === HUB_TAG && w.op === 'write' && cut !== undefined && cut.writeSentAt === null) cut.writeSentAt = epoch();
    return send(m);
  };
  // Registered before the hub client's listener: the stamp is taken before the news is handled.
  let newsAt: number | null = null;
  let newsGeneration: number | null = null;
  channel.on('message', (m) => {
    const n = m as { t?: string; news?: string; generation?: number };
    // A change's news, or a trip's notice (which comes ahead of the record and leads to the cut).
    if (n.t === HUB_TAG && (n.news === 'change' || n.news === 'trip')) {
      newsAt = epoch();
      newsGeneration = n.generation ?? null;
    }
  });
  let candidateSamples = 0;
  let counted: string | null = null;
  const onOutcome = (o: Outcome): void => {
    if (o.role !== 'candidate') return;
    if (o.version !== counted) {
      counted = o.version;
      candidateSamples = 0;
    }
    candidateSamples++;
  };
  // As serveWorker does: this process's own tests at its share of alpha (ownAlphaScale).
  const { gateway, rollouts } = createRollgate(config, { alphaScale: 1 / (2 * setup.workers), workers: 'worker', onOutcome });
  const controller = rollouts.route(ROUTE)!;
  const cuts: Cut[] = [];
  watchSwaps(gateway.routes.get(ROUTE)!.picker, (from, at) => {
    cuts.push({ version: from.candidateLabel ?? '', at, via: 'unknown', decidedAt: null, publishedAt: null, writeSentAt: null, newsAt, newsGeneration });
  });
  // Registered before ReplicaSync's listener (joinShared, below): stamped just before the write.
  rollouts.on('persist', (e) => {
    if (e.type !== 'rollback') return;
    const publishedAt = epoch();
    const cut = cuts.findLast((c) => c.via === 'unknown');
    if (cut === undefined) return;
    cut.via = e.cause === 'peer' ? 'peer' : 'own';
    cut.publishedAt = publishedAt;
    const tripped = controller.judge?.tripped ?? null;
    if (cut.via === 'own' && tripped !== null) cut.decidedAt = performance.timeOrigin + tripped.at;
  });
  const log = { info: () => undefined, warn: () => undefined };
  const shared = await joinShared(rollouts as Rollouts<unknown>, hubClient(channel), log, `worker${setup.index + 1}`);
  const { port } = await gateway.listen();
  channel.on('message', (raw) => {
    const m = raw as ToPlane;
    if (m.cmd === 'clock') process.send?.({ clock: epoch() } satisfies FromPlane);
    else if (m.cmd === 'cuts') process.send?.({ cuts: cuts.splice(0) } satisfies FromPlane);
    else if (m.cmd === 'state') {
      const s = gateway.routes.get(ROUTE)!.traffic;
      process.send?.({ state: { phase: controller.phase, version: s.candidateLabel, weightBp: s.weightBp, candidateSamples: s.candidateLabel === counted ? candidateSamples : 0 } } satisfies FromPlane);
    }
  });
  process.send?.({ ready: port } satisfies FromPlane);
  process.once('disconnect', () => {
    shared.fleet.close();
    void shared.sync.close().then(() => gateway.close(0)).then(() => process.exit(0));
  });
}

/**
 * Calls `onCut` at the assignment that takes the candidate's weight from above 0 to 0: the
 * moment the next pick can no longer choose the candidate. The picker's `state` becomes an
 * accessor over the same value, so every read and write of the data plane goes on unchanged.
 */
function watchSwaps<U>(picker: { state: TrafficState<U> }, onCut: (from: TrafficState<U>, at: number) => void): void {
  let current = picker.state;
  Object.defineProperty(picker, 'state', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (next: TrafficState<U>) => {
      const at = epoch();
      const from = current;
      current = next;
      if (from.weightBp > 0 && next.weightBp === 0) onCut(from, at);
    },
  });
}

if (process.argv[2] === 'plane' && process.send !== undefined) {
  void plane(JSON.parse(process.argv[3] ?? '{}') as PlaneSetup);
}
