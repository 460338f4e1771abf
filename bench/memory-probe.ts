import { GCProfiler, getHeapSpaceStatistics } from 'node:v8';

/**
 * Loaded into each measured gateway before rollgate itself, with
 * `node --import <this module> dist/src/cli/main.js serve ...` and an IPC channel: it answers each
 * `{ op: 'memory-sample' }` with the process's heap as V8 tells it and what the collector has done
 * so far. Unlike the soak probe it never forces a collection, so a sample does not change what
 * the next one measures. Nothing in rollgate knows it is there.
 */

export interface MemoryRequest {
  op: 'memory-sample';
}

export interface MemorySample {
  op: 'memory-sample';
  /**
   * Bytes allocated on the V8 heap since start: each collection's heap before it less the heap
   * left by the one before, plus what was added since the last. Good to the size of the objects
   * that die before any collection sees them, which is all of them.
   */
  allocatedBytes: number;
  /** Young-generation collections (scavenges) so far, and their pauses in ms. */
  scavenges: number;
  scavengeMs: number;
  /** Full collections (mark-compact) so far, and their pauses in ms. */
  fullGcs: number;
  fullGcMs: number;
  heapTotalBytes: number;
  heapUsedBytes: number;
  /** What the young generation has committed (its semi-spaces) right now. */
  newSpaceBytes: number;
  /** The largest heap (all spaces committed) any collection so far found before or after it. */
  peakHeapTotalBytes: number;
}

const profiler = new GCProfiler();
profiler.start();
const totals = { allocatedBytes: 0, scavenges: 0, scavengeMs: 0, fullGcs: 0, fullGcMs: 0, peakHeapTotalBytes: 0 };
let lastUsed = process.memoryUsage().heapUsed;

interface HeapState {
  heapStatistics: { usedHeapSize: number; totalHeapSize: number };
}

function sample(): MemorySample {
  // stop() hands over what was profiled since start(); starting again at once loses nothing.
  const { statistics } = profiler.stop() as { statistics: { gcType: string; cost: number; beforeGC: HeapState; afterGC: HeapState }[] };
  profiler.start();
  for (const gc of statistics) {
    totals.allocatedBytes += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - lastUsed);
    lastUsed = gc.afterGC.heapStatistics.usedHeapSize;
    totals.peakHeapTotalBytes = Math.max(totals.peakHeapTotalBytes, gc.beforeGC.heapStatistics.totalHeapSize, gc.afterGC.heapStatistics.totalHeapSize);
    if (gc.gcType === 'Scavenge' || gc.gcType === 'MinorMarkCompact') {
      totals.scavenges++;
      totals.scavengeMs += gc.cost / 1000;
    } else if (gc.gcType === 'MarkSweepCompact') {
      totals.fullGcs++;
      totals.fullGcMs += gc.cost / 1000;
    }
  }
  const mem = process.memoryUsage();
  totals.allocatedBytes += Math.max(0, mem.heapUsed - lastUsed);
  lastUsed = mem.heapUsed;
  totals.peakHeapTotalBytes = Math.max(totals.peakHeapTotalBytes, mem.heapTotal);
  const newSpaceBytes = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;
  return { op: 'memory-sample', ...totals, heapTotalBytes: mem.heapTotal, heapUsedBytes: mem.heapUsed, newSpaceBytes };
}

if (process.send !== undefined) {
  process.on('message', (m: MemoryRequest) => {
    if (m?.op !== 'memory-sample') return;
    process.send?.(sample());
  });
  process.channel?.unref();
}
