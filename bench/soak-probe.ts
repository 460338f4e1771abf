import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Loaded into the soaked gateway before rollgate itself, with
 * `node --expose-gc --import <this module> dist/src/cli/main.js serve ...` and an IPC channel:
 * it answers each `{ op: 'soak-sample' }` message with what only the process itself can tell
 * (its heap after a forced collection, its event-loop delay). Nothing in rollgate knows it is
 * there; the channel is unref'd, so the gateway still exits when everything it opened is closed.
 * Descriptors and sockets are read from outside (soak-proc.ts), at no cost to the gateway.
 */

export interface SampleRequest {
  op: 'soak-sample';
}

export interface ProbeSample {
  op: 'soak-sample';
  rssBytes: number;
  /** heapUsed right after a full, forced collection. */
  heapAfterGcBytes: number;
  externalBytes: number;
  /** Event-loop delay since the previous sample (the sample's own work excluded). */
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** User + system CPU time of the process so far, microseconds. */
  cpuMicros: number;
  /**
   * Time the main thread (the event loop) has spent runnable but waiting for a CPU so far, ns
   * (/proc/self/schedstat; null where there is none): a loop delayed by other processes on a
   * shared machine shows here, one delayed by its own work does not.
   */
  runQueueWaitNs: number | null;
}

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

function runQueueWaitNs(): number | null {
  try {
    const n = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

function sample(): ProbeSample {
  // Read the loop's delay first: the collection below blocks the loop and is the probe's doing.
  const eventLoopP99Ms = delay.percentile(99) / 1e6;
  const eventLoopMaxMs = delay.max / 1e6;
  const waitNs = runQueueWaitNs();
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('soak probe: start node with --expose-gc');
  gc();
  const mem = process.memoryUsage();
  delay.reset();
  const cpu = process.cpuUsage();
  return {
    op: 'soak-sample',
    rssBytes: mem.rss,
    heapAfterGcBytes: mem.heapUsed,
    externalBytes: mem.external,
    eventLoopP99Ms,
    eventLoopMaxMs,
    cpuMicros: cpu.user + cpu.system,
    runQueueWaitNs: waitNs,
  };
}

if (process.send !== undefined) {
  process.on('message', (m: SampleRequest) => {
    if (m?.op !== 'soak-sample') return;
    process.send?.(sample());
  });
  // The bench is gone (finished or killed): the gateway it started goes too, by its own shutdown.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.channel?.unref();
}
