import { setFlagsFromString, getHeapSpaceStatistics } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import type { MemoryProfile } from '../config/types.js';

/*
 * `listen.memory`: how `rollgate serve` sets V8 for its processes (`bench:memory` measures both).
 *
 * - `lean` (the default; the sidecar case): the young generation is held at two semi-spaces of
 *   4 MB (V8 grows it to 2 x 16 MB under load), it stays at V8's initial size until the planes
 *   listen, the old generation grows by at most 30% between full collections, and WebAssembly
 *   runs on Liftoff only. The last is undici's HTTP parser: V8's optimising tier compiles it
 *   the first time it runs hot, which takes about 35 MiB of memory for a quarter of a second
 *   and keeps 10 MiB, to save about 2 us per upstream request.
 * - `fast`: V8's own defaults.
 *
 * A flag given to node (on its command line or in NODE_OPTIONS) wins over the profile's.
 *
 * V8 reads its semi-space maximum only when the process starts; its growth factor is read each
 * time the young generation may grow. So the cap is kept by allowing growth (factor 2) after a
 * collection that finds it under 4 MB a semi-space and refusing it (factor 1) from there: one
 * look at the heap's spaces per collection, never per request.
 */

/** Two semi-spaces of 4 MB: where lean stops the young generation growing. */
export const LEAN_NEW_SPACE_BYTES = 8 * 2 ** 20;
const LEAN_HEAP_GROWING_PERCENT = 30;

const SEMI_SPACE_FLAGS = ['--max-semi-space-size', '--min-semi-space-size', '--semi-space-growth-factor', '--optimize-for-size'];
const OLD_SPACE_FLAGS = ['--heap-growing-percent', '--optimize-for-size'];
const WASM_FLAGS = ['--liftoff-only', '--no-liftoff-only', '--liftoff', '--no-liftoff'];

/** The V8 and node flags this process was started with, dashes for underscores. */
function startFlags(): string[] {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return given.map((f) => f.split('=')[0]!.replaceAll('_', '-'));
}

function given(flags: readonly string[]): boolean {
  const own = startFlags();
  return flags.some((f) => own.includes(f));
}

let growthFactor = 0;
function setGrowth(factor: number): void {
  if (factor === growthFactor) return;
  growthFactor = factor;
  setFlagsFromString(`--semi-space-growth-factor=${factor}`);
}

/**
 * Called first thing in `rollgate serve` (and in each process of `listen.workers`): the young
 * generation keeps V8's initial size while the gateway starts, unless node was given a flag for
 * it. `applyMemoryProfile` then keeps it there, caps it or lets it go.
 */
export function holdYoungGeneration(): void {
  if (!given(SEMI_SPACE_FLAGS)) setGrowth(1);
}

export interface AppliedProfile {
  /** Called once both planes listen: from here the young generation may grow (up to the cap). */
  started(): void;
}

/** Sets V8 as the config's `listen.memory` says; before undici makes its first connection. */
export function applyMemoryProfile(profile: MemoryProfile): AppliedProfile {
  const ownSemi = given(SEMI_SPACE_FLAGS);
  if (profile === 'fast') {
    if (!ownSemi) setGrowth(2);
    return { started: () => undefined };
  }
  if (!given(WASM_FLAGS)) setFlagsFromString('--liftoff-only');
  if (!given(OLD_SPACE_FLAGS)) setFlagsFromString(`--heap-growing-percent=${LEAN_HEAP_GROWING_PERCENT}`);
  return {
    started: () => {
      if (ownSemi) return;
      capYoungGeneration();
      new PerformanceObserver(capYoungGeneration).observe({ entryTypes: ['gc'] });
    },
  };
}

function capYoungGeneration(): void {
  let size = 0;
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') size = s.space_size;
  setGrowth(size >= LEAN_NEW_SPACE_BYTES ? 1 : 2);
}
