import t from 'tap';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BINS, MAX_MS, MIN_MS, RELATIVE_ERROR, binOf, quantileOf, valueOf } from '../src/stats/histogram.js';
import { BUCKETS_PER_WINDOW, type FAILURE_KINDS, SlidingWindow } from '../src/stats/window.js';

// Floating point may put a value on a bin edge into the next bin: allow that much beyond the 2%.
const RELATIVE_LIMIT = RELATIVE_ERROR + 1e-9;
const relativeError = (got: number, want: number): number => Math.abs(got - want) / want;

function gc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

t.test('every value in range comes back within 2%', async (t) => {
  let worst = 0;
  for (let x = MIN_MS * 1.0001; x < MAX_MS; x *= 1.0037) worst = Math.max(worst, relativeError(valueOf(binOf(x)), x));
  t.ok(worst <= RELATIVE_LIMIT, `worst relative error ${worst}`);
  t.ok(worst > RELATIVE_ERROR * 0.9, 'the bins are as coarse as the error allows, no finer');
  t.equal(binOf(MIN_MS / 2), 0, 'below the smallest latency: bin 0');
  t.equal(binOf(MAX_MS * 10), BINS - 1, 'above the largest: the last bin');
});

t.test('quantiles of known data are within 2% of the exact order statistic', async (t) => {
  // A skewed set over five decades: 0.1 ms to 10 s.
  const values = Array.from({ length: 20_000 }, (_, i) => 0.1 * 1e5 ** (((i * 7919) % 20_000) / 19_999));
  const sorted = [...values].sort((a, b) => a - b);
  const w = new SlidingWindow(60_000, 0);
  values.forEach((v) => w.record(10, v, null));
  const bins = new Uint32Array(BINS);
  values.forEach((v) => bins[binOf(v)]!++);
  for (const q of [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999]) {
    const exact = sorted[Math.floor(q * (sorted.length - 1))] as number;
    t.ok(relativeError(w.quantile(10, q), exact) <= RELATIVE_LIMIT, `window p${q * 100}: ${w.quantile(10, q)} vs ${exact}`);
    t.ok(relativeError(quantileOf(bins, values.length, q), exact) <= RELATIVE_LIMIT, `histogram p${q * 100}`);
  }
  t.ok(Number.isNaN(quantileOf(new Uint32Array(BINS), 0, 0.5)), 'an empty histogram has no quantile');
});

t.test('rotation drops a bucket exactly when it leaves the window', async (t) => {
  const w = new SlidingWindow(60_000, 0);
  t.equal(w.bucketMs, 1_000);
  w.record(500, 10, 'status');
  w.record(30_500, 1_000, null);
  t.equal(w.count, 2);
  t.equal(w.failures(59_999), 1, 'the first bucket still counts at 59.999 s');
  t.equal(w.failures(60_000), 0, 'and is gone at 60 s');
  t.equal(w.count, 1);
  t.equal(w.quantile(60_000, 0.5), valueOf(binOf(1_000)), 'its latency went with it');
  t.equal(w.snapshot(90_000 - 1, [0.5]).count, 1);
  t.equal(w.snapshot(90_000, [0.5]).count, 0);

  w.record(100_000, 5, 'timeout');
  t.equal(w.snapshot(100_000 + 10 * 60_000, [0.5]).count, 0, 'a jump of many windows clears everything');
  w.record(100_000 + 10 * 60_000, 5, null);
  t.equal(w.failures(100_000 + 10 * 60_000), 0);
  t.equal(w.count, 1);
});

t.test('counts and failures by kind, and the snapshot fields', async (t) => {
  const w = new SlidingWindow(60_000, 1_000);
  const kinds: (typeof FAILURE_KINDS)[number][] = ['status', 'status', 'connect', 'timeout', 'stream', 'reset', 'protocol'];
  for (let i = 0; i < 93; i++) w.record(1_000 + i * 100, 40, null);
  kinds.forEach((k, i) => w.record(10_000 + i, 400, k));
  const s = w.snapshot(11_000, [0.5, 0.99]);
  t.equal(s.count, 100);
  t.equal(s.failures, 7);
  t.same(s.failuresByKind, { status: 2, connect: 1, reset: 1, timeout: 1, stream: 1, protocol: 1, invalid: 0, truncated: 0, empty: 0, stream_error: 0 });
  t.equal(s.failureRate, 0.07);
  t.equal(s.rate, 10, '100 requests in the 10 s since the window began');
  t.same(Object.keys(s.latencyMs), ['0.5', '0.99']);
  t.ok(relativeError(s.latencyMs['0.5'] as number, 40) <= RELATIVE_LIMIT);
  t.ok(relativeError(s.latencyMs['0.99'] as number, 400) <= RELATIVE_LIMIT);
  t.same(new SlidingWindow(60_000, 0).snapshot(5_000, [0.5]).latencyMs, { '0.5': null }, 'null when empty');
  t.equal(new SlidingWindow(60_000, 0).snapshot(5_000, [0.5]).failureRate, 0);
});

t.test('recentCount sums the newest buckets only', async (t) => {
  const w = new SlidingWindow(60_000, 0);
  for (let s = 0; s < 10; s++) for (let i = 0; i <= s; i++) w.record(s * 1_000 + i, 1, null);
  // Second s held s + 1 requests.
  t.equal(w.recentCount(9_500, 1), 10);
  t.equal(w.recentCount(9_500, 2), 19);
  t.equal(w.recentCount(9_500, BUCKETS_PER_WINDOW), 55);
  t.equal(w.recentCount(10_000, 2), 10, 'a new, empty bucket began');
  t.equal(w.recentCount(12_000, 2), 0);
  t.equal(w.count, 55, 'the whole window still holds them');
});

t.test('memory is fixed: a million records retain nothing', async (t) => {
  const collect = gc();
  const w = new SlidingWindow(5 * 60_000, 0);
  const latencies = Float64Array.from({ length: 4096 }, (_, i) => 1 + ((i * 37) % 4096) * 0.7);
  const record = (from: number, to: number): void => {
    for (let i = from; i < to; i++) w.record(i * 0.5, latencies[i & 4095] as number, (i & 127) === 0 ? 'status' : null);
  };
  record(0, 100_000);
  collect();
  const before = process.memoryUsage().heapUsed;
  record(100_000, 1_100_000);
  collect();
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < 256 * 1024, `heap grew ${grown} bytes over 1e6 records`);
  t.equal(w.count, 600_000, 'five minutes at 2,000 per second');
});

t.test('record() allocates nothing: a million records run without a minor collection', async (t) => {
  const w = new SlidingWindow(5 * 60_000, 0);
  // Integer arguments: a non-integer number passed to a call that is not inlined is boxed by the caller.
  const record = (from: number, to: number): void => {
    for (let i = from; i < to; i++) w.record(i >> 1, (i & 4095) + 1, (i & 127) === 0 ? 'status' : null);
  };
  record(0, 100_000);
  gc()();
  let minor = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
  });
  observer.observe({ entryTypes: ['gc'] });
  record(100_000, 1_100_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  t.equal(minor, 0, 'no young-generation collection while recording');
});
