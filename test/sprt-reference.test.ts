import fc from 'fast-check';
import t, { type Test } from 'tap';
import {
  eventShare,
  eventsReference,
  fixedRateReference,
  klBernoulli,
  logNormalQuantile,
  logNormalTail,
  normalQuantile,
  normalUpperTail,
  slowRates,
  sprtSampleSize,
  stableReference,
} from '../bench/sprt.js';

/** `actual` within `rel` (relative) of `expected`. */
const close = (t: Test, actual: number, expected: number, rel: number, what: string): void => {
  t.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${what}: ${actual} ~ ${expected}`);
};

t.test('KL divergence of Bernoulli observations', async (t) => {
  t.equal(klBernoulli(0.3, 0.3), 0);
  close(t, klBernoulli(0.02, 0.0125), 0.02 * Math.log(1.6) + 0.98 * Math.log(0.98 / 0.9875), 1e-12, 'KL(2% || 1.25%)');
  t.equal(klBernoulli(0.02, 0), Infinity, 'a rate the null rules out');
  close(t, klBernoulli(1, 0.05), Math.log(20), 1e-12, 'KL(1 || p0) = ln(1/p0)');
  close(t, klBernoulli(0, 0.05), Math.log(1 / 0.95), 1e-12, 'KL(0 || p0) = ln(1/(1-p0))');
  fc.assert(
    fc.property(fc.double({ min: 0.001, max: 0.999, noNaN: true }), fc.double({ min: 0.001, max: 0.999, noNaN: true }), (a, b) => klBernoulli(a, b) >= -1e-15),
  );
});

t.test("Wald's sample size", async (t) => {
  // The README's figure: 1% -> 2% at tolerance 1.25 against a test that knows stable's rate
  // and spends all of alpha 0.001 on it needs about 3,600 candidate requests.
  close(t, sprtSampleSize(0.001, 0.02, 0.0125), 3583, 0.001, '1% -> 2% at tolerance 1.25');
  t.equal(sprtSampleSize(0.001, 0.0125, 0.0125), Infinity, 'no test of "at most p0" rejects at p0');
  t.equal(sprtSampleSize(0.001, 0.01, 0.0125), Infinity, 'nor below it');
  t.equal(sprtSampleSize(0.001, 0.02, 0), 50, 'against a rate of 0, one event decides: 1/p1 requests');
  t.equal(sprtSampleSize(0.001, 0.05, 0), 20);
  t.equal(sprtSampleSize(0.5, 1, 0.01), 1, 'never under the wait for the first event');
  // Disagreement 10% against maxDisagreement 5%, at the agreement's tenth of alpha 0.001.
  close(t, fixedRateReference(0.0001, 0.1, 0.05), Math.log(10_000) / (0.1 * Math.log(2) + 0.9 * Math.log(0.9 / 0.95)), 1e-12, 'agreement');
  close(t, fixedRateReference(0.0001, 0.1, 0.05), 445.9, 0.001, 'agreement, 445.9 pairs');
});

t.test('the SPRT on which version each event came from', async (t) => {
  t.equal(eventShare(0.05, 1), 0.05, 'at a ratio of 1 the events split as the traffic');
  // Stable's rate 0: every event is the candidate's; ln(1/alpha) / ln(1/q0) events, each 1/p1 requests apart.
  const q0 = eventShare(0.05, 1.25);
  close(t, eventsReference(0.00045, 0.02, 0, 1.25, 0.05), Math.log(1 / 0.00045) / Math.log(1 / q0) / 0.02, 1e-12, 'invalid 0% -> 2%');
  // 1% -> 20% at tolerance 1.25: q1 = 0.05 x 20 / (0.05 x 20 + 0.95); 0.39 events per candidate request.
  const q1 = eventShare(0.05, 20);
  const events = Math.log(1 / 0.00045) / klBernoulli(q1, q0);
  close(t, eventsReference(0.00045, 0.2, 0.01, 1.25, 0.05), events / ((0.05 * 0.2 + 0.95 * 0.01) / 0.05), 1e-12, '1% -> 20%');
  t.equal(eventsReference(0.00045, 0.0125, 0.01, 1.25, 0.05), Infinity, 'at the null ratio');
});

t.test('a test against stable is held to the larger reference, and the one knowing stable never needs more', async (t) => {
  const r = stableReference(0.00045, 0.02, 0, 1.25, 0.05);
  t.equal(r.knownStable, 50);
  t.equal(r.used, 'events');
  t.equal(r.requests, r.events);
  fc.assert(
    fc.property(
      fc.double({ min: 0.001, max: 0.5, noNaN: true }),
      fc.double({ min: 1.05, max: 50, noNaN: true }),
      fc.constantFrom(1, 1.25, 2),
      fc.double({ min: 0.01, max: 0.5, noNaN: true }),
      (ps, ratio, tolerance, share) => {
        const p1 = Math.min(1, ps * ratio);
        const ref = stableReference(0.001, p1, ps, tolerance, share);
        if (p1 <= ps * tolerance) return ref.knownStable === Infinity && ref.events === Infinity;
        // Within a hair of the null both are astronomical, and rounding decides their order.
        fc.pre(p1 >= 1.01 * ps * tolerance);
        return ref.events >= ref.knownStable * (1 - 1e-9) && ref.requests === Math.max(ref.events, ref.knownStable);
      },
    ),
    { numRuns: 2_000 },
  );
});

t.test('normal and log-normal tails', async (t) => {
  close(t, normalUpperTail(0), 0.5, 1e-7, 'P(Z > 0)');
  close(t, normalUpperTail(1.959963984540054), 0.025, 1e-6, 'P(Z > 1.96)');
  close(t, normalUpperTail(-2.3263478740408408), 0.99, 1e-7, 'P(Z > -2.33)');
  close(t, normalUpperTail(5), 2.866515718791939e-7, 1e-6, 'far tail');
  close(t, normalQuantile(0.99), 2.3263478740408408, 1e-6, 'z of 0.99');
  t.ok(Math.abs(normalQuantile(0.5)) < 1e-6, 'z of 0.5');
  t.ok(Math.abs(normalUpperTail(normalQuantile(0.3)) - 0.7) < 1e-12, 'the quantile inverts the tail it is computed from');
  const d = { medianMs: 40, sigma: 0.5 };
  close(t, logNormalQuantile(d, 0.5), 40, 1e-6, 'median');
  close(t, logNormalTail(d, logNormalQuantile(d, 0.99)), 0.01, 1e-5, 'p99 tail');
});

t.test('latency tests: thresholds and slow rates from the distributions', async (t) => {
  const stable = { medianMs: 40, sigma: 0.5 };
  const same = slowRates(stable, stable, 0.5, 1.25, 5);
  close(t, same.thresholdMs, 50, 1e-6, 'max(40 x 1.25, 40 + 5)');
  t.equal(same.ps, same.p1, 'the same distribution is as often slow');
  close(t, same.ps, normalUpperTail(Math.log(1.25) / 0.5), 1e-6, "stable's slow rate");
  close(t, slowRates({ medianMs: 10, sigma: 0.5 }, stable, 0.5, 1.25, 5).thresholdMs, 15, 1e-6, 'minDelta when larger');
  const slower = slowRates(stable, { medianMs: 60, sigma: 0.5 }, 0.5, 1.25, 5);
  t.ok(slower.p1 > slower.ps);
  // x1.5 on the median test at alpha 0.00025: about 40 candidate requests knowing stable's rate, 75 on events.
  const ref = stableReference(0.00025, slower.p1, slower.ps, 1, 0.05);
  close(t, ref.knownStable, 40.2, 0.01, 'known stable');
  close(t, ref.events, 75.3, 0.01, 'events');
});
