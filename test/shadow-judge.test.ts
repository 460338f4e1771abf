import t from 'tap';
import { DEFAULT_ROLLBACK } from '../src/config/defaults.js';
import type { Trip } from '../src/judge/decide.js';
import { RouteJudge } from '../src/judge/route-judge.js';
import type { Outcome } from '../src/proxy/outcome.js';
import { seededRng } from './helpers/servers.js';

// The judge on shadow copies: each copy's latency against stable's answer to the same request.

/** Pairs on a fake clock: 20 requests in flight at 1,000 a second; stable's answer, then the copy's. */
function pairs(n: number, latencies: (i: number, rng: () => number) => { stable: number; copy: number; start?: number }): { trip: Trip | null; at: number } {
  const judge = new RouteJudge(DEFAULT_ROLLBACK, 'v1', 'v2', 0);
  const rng = seededRng(11);
  for (let i = 0; i < n; i++) {
    const { stable, copy, start = i } = latencies(i, rng);
    const base = { route: 'm', status: 200, failure: 'none' as const, streaming: false, replayed: false, slowMask: 0, startedAt: start };
    judge.observe({ ...base, role: 'stable', version: 'v1', latencyMs: stable, ttfbMs: stable } satisfies Outcome, start + stable);
    const trip = judge.observe({ ...base, role: 'candidate', version: 'v2', latencyMs: copy, ttfbMs: copy, pairedMs: stable } satisfies Outcome, start + Math.max(copy, stable));
    if (trip !== null) return { trip, at: i };
  }
  return { trip: null, at: n };
}

const noisy = (rng: () => number) => 8 + rng() * 8;

t.test('a candidate as fast as stable is not rolled back over 20,000 copies', async (t) => {
  t.equal(pairs(20_000, (_, rng) => ({ stable: noisy(rng), copy: noisy(rng) })).trip, null);
});

t.test('one stall of the candidate server (40 copies in flight at once, 60 ms late) is one episode, not 40 pieces of evidence', async (t) => {
  const { trip } = pairs(20_000, (i, rng) => {
    const stable = noisy(rng);
    // Copies 5,000..5,039 start within 40 ms of each other and all wait out the same 60 ms pause.
    if (i >= 5_000 && i < 5_040) return { stable, copy: 60 + noisy(rng) - (i - 5_000) };
    return { stable, copy: noisy(rng) };
  });
  t.equal(trip, null, 'not rolled back');
});

t.test('a candidate 3x slower on the same requests trips latency on the pairs within a second of traffic', async (t) => {
  const { trip, at } = pairs(5_000, (_, rng) => {
    const stable = noisy(rng);
    return { stable, copy: stable * 3 };
  });
  t.ok(trip !== null, 'rolled back');
  // Overlapping slow copies count as one episode, so at 1,000 copies a second evidence comes
  // about once per candidate latency (~36 ms): a second of traffic, not a few dozen copies.
  t.ok(at < 1_000, `after ${at} copies (${at} ms of traffic)`);
  t.match(trip, { reason: 'latency', evidence: { test: 'paired' }, message: /credibly slower than stable v1 on the same requests \(shadow copies\)/ });
});
