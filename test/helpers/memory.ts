/** Live memory (heap + Buffers) sampled after forced GCs while `work` runs; returns the peak growth. */
export async function peakGrowth(work: Promise<unknown>): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  // V8 frees dead Buffers' memory on a background sweeper after a GC: let it finish and collect
  // again, so that what is measured is what is alive.
  const live = async (): Promise<number> => {
    gc();
    await new Promise((r) => setTimeout(r, 5));
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = await live();
  let peak = base;
  let done = false;
  void work.finally(() => (done = true));
  while (!done) {
    await new Promise((r) => setTimeout(r, 50));
    peak = Math.max(peak, await live());
  }
  await work;
  return peak - base;
}
