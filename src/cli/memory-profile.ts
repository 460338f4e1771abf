import { setFlagsFromString, getHeapSpaceStatistics } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import type { MemoryProfile } from '../config/types.js';

/*
 * `listen.memory`: how `rollgate serve` sets V8 for its processes (`bench:memory` measures both).
 *
 * - `lean` (the default; the sidecar case): the young generation is held at two semi-spaces of
 *   4 MB (V8 grows it to 2 x 16 MB under load), it stays at V8's initial size until the planes
 *   listen, the old generation grows by at most 30% between full collections and takes only
 *   what outlives two young collections (no allocation-site pretenuring: under load V8 would
 *   start allocating requests' short-lived objects there), and WebAssembly
 *   runs on Liftoff only. The last is undici's HTTP parser: V8's optimising tier compiles it
 *   the first time it runs hot, which takes about 35 MiB of memory for a quarter of a second
 *   and keeps 10 MiB, to save about 2 us per upstream request.
 * - `fast`: V8's own defaults.
 *
 * A flag given to node (on its command line or in NODE_OPTIONS) wins over the profile's.
 *
 * V8 reads its semi-space maximum only when the process starts; its growth factor is read each
 * time the young generation may grow. So the cap is kept by growth on (factor 2) under it and
 * off (factor 1) at it: never a look per request (capYoungGeneration).
 */

/** Two semi-spaces of 4 MB: where lean stops the young generation growing. */
export const LEAN_NEW_SPACE_BYTES = 8 * 2 ** 20;
const LEAN_HEAP_GROWING_PERCENT = 30;
const CAP_CHECK_MS = 1_000;

/** Each of lean's settings: the flags that, given to node, leave it to them; lean's and fast's value. */
const SETTINGS = [
  { own: ['--heap-growing-percent', '--optimize-for-size'], lean: `--heap-growing-percent=${LEAN_HEAP_GROWING_PERCENT}`, fast: '--heap-growing-percent=0' },
  { own: ['--allocation-site-pretenuring', '--no-allocation-site-pretenuring'], lean: '--no-allocation-site-pretenuring', fast: '--allocation-site-pretenuring' },
  { own: ['--liftoff-only', '--no-liftoff-only', '--liftoff', '--no-liftoff'], lean: '--liftoff-only', fast: '--no-liftoff-only' },
] as const;
const SEMI_SPACE_FLAGS = ['--max-semi-space-size', '--min-semi-space-size', '--semi-space-growth-factor', '--optimize-for-size'];

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
 * Called first thing in `rollgate serve` (and in each process of `listen.workers`), before the
 * gateway's modules load: lean's settings from the start, so that the old generation's first
 * limit is set by lean's growth (a limit set by V8's own lets the heap reach about 40 MB under
 * load before its first full collection), and the young generation at V8's initial size while
 * the gateway starts. `applyMemoryProfile` then keeps them or takes them back.
 */
export function startLean(): void {
  if (!given(SEMI_SPACE_FLAGS)) setGrowth(1);
  for (const s of SETTINGS) if (!given(s.own)) setFlagsFromString(s.lean);
}

export interface AppliedProfile {
  /** Called once both planes listen: from here the young generation may grow (up to the cap). */
  started(): void;
}

/** Sets V8 as the config's `listen.memory` says; before undici makes its first connection. */
export function applyMemoryProfile(profile: MemoryProfile): AppliedProfile {
  startLean();
  const ownSemi = given(SEMI_SPACE_FLAGS);
  if (profile === 'fast') {
    if (!ownSemi) setGrowth(2);
    for (const s of SETTINGS) if (!given(s.own)) setFlagsFromString(s.fast);
    return { started: () => undefined };
  }
  return {
    started: () => {
      if (ownSemi) return;
      capYoungGeneration();
      setInterval(capYoungGeneration, CAP_CHECK_MS).unref();
    },
  };
}

let observer: PerformanceObserver | null = null;

/**
 * Lets the young generation grow only as far as the cap. While it is under the cap, a look
 * after each collection (V8 grows it only at a young collection, by the factor) sets growth on
 * (2) or off (1) once the cap is reached; at the cap the observer is let go, so a process under
 * steady load looks at nothing. A look every second takes it up again if V8 has shrunk the young
 * generation meanwhile (it does when allocation stops).
 */
function capYoungGeneration(): void {
  let size = 0;
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') size = s.space_size;
  if (size >= LEAN_NEW_SPACE_BYTES) {
    setGrowth(1);
    observer?.disconnect();
    observer = null;
    return;
  }
  setGrowth(2);
  if (observer === null) {
    observer = new PerformanceObserver(capYoungGeneration);
    observer.observe({ entryTypes: ['gc'] });
  }
}
