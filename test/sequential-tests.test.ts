import fc from 'fast-check';
import t from 'tap';
import { ConditionalTest, RateAboveTest, SpendingTests } from '../src/judge/sequential.js';
import { seededRng } from '../src/traffic/seeded-rng.js';

const rng = seededRng;

/**
 * The smallest k with P(X >= k) <= tail for X ~ Binomial(n, p): a count of crossings at or above
 * it would be a fluke with probability at most `tail` if the true crossing rate were p.
 */
function binomialCritical(n: number, p: number, tail: number): number {
  const pmf: number[] = [(1 - p) ** n];
  for (let i = 0; i < n; i++) pmf.push(((pmf[i] as number) * (n - i) * p) / ((i + 1) * (1 - p)));
  let upper = 0;
  for (let k = n; k >= 0; k--) {
    upper += pmf[k] as number;
    if (upper > tail) return k + 1;
  }
  return 0;
}

/** The candidate's share of events when it has `ratio` times stable's event rate. */
const eventShare = (share: number, ratio: number): number => (share * ratio) / (share * ratio + 1 - share);

t.test('RateAboveTest: failures at exactly the null rate never cross', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 200 }), fc.integer({ min: 1, max: 40 }), (k, blocks) => {
      const test = new RateAboveTest(1 / k);
      for (let b = 0; b < blocks; b++) {
        // The failure closes each block, so the running rate never exceeds 1/k.
        for (let i = 1; i <= k; i++) {
          test.add(i === k);
          if (test.logLR() > 1e-9) return false;
        }
      }
      return test.n === k * blocks && test.k === blocks;
    }),
  );
});

t.test('RateAboveTest: a failure rate far above the null crosses ln(1/alpha) quickly', async (t) => {
  const boundary = Math.log(1 / 0.001);
  const allFail = new RateAboveTest(0.05);
  let n = 0;
  for (; allFail.logLR() < boundary && n < 100; n++) allFail.add(true);
  t.ok(n <= 5, `every request failing crosses within 5 requests (took ${n})`);

  // 1 failure in 5 against a null of 5%.
  const fifth = new RateAboveTest(0.05);
  for (n = 1; n <= 1000; n++) {
    fifth.add(n % 5 === 0);
    if (fifth.logLR() >= boundary) break;
  }
  t.ok(n < 300, `a 20% failure rate crosses within 300 requests (took ${n})`);
  t.equal(fifth.k, Math.floor(n / 5));

  const success = new RateAboveTest(0.05);
  for (let i = 0; i < 1000; i++) success.add(false);
  t.ok(success.logLR() < 0, 'successes alone are evidence for the null');
});

t.test('ConditionalTest: events in proportion to the share never cross, whatever the shares', async () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 2, max: 100 }), { minLength: 1, maxLength: 30 }),
      fc.double({ min: 1, max: 3, noNaN: true }),
      fc.double({ min: 1e-9, max: 0.5, noNaN: true }),
      (blockSizes, ratio, alpha) => {
        const test = new ConditionalTest(ratio);
        for (const k of blockSizes) {
          // Share 1/k with one candidate event per k events: both versions have the same event rate.
          test.setShare(1 / k);
          for (let i = 1; i <= k; i++) {
            test.event(i === k);
            const llr = test.logLR();
            if (llr > 1e-9 || llr >= Math.log(1 / alpha)) return false;
          }
        }
        return test.candidateEvents === blockSizes.length;
      },
    ),
  );
});

t.test('ConditionalTest: strongly unbalanced evidence crosses ln(1/alpha)', async (t) => {
  const boundary = Math.log(1 / 0.001);
  const onlyCandidate = new ConditionalTest(1.25);
  onlyCandidate.setShare(0.05);
  let n = 0;
  for (; onlyCandidate.logLR() < boundary && n < 100; n++) onlyCandidate.event(true);
  t.ok(n <= 6, `every event from a 5% share crosses within 6 events (took ${n})`);

  // One event in four from the candidate at a 5% share: about 6x stable's rate.
  const quarter = new ConditionalTest(1.25);
  quarter.setShare(0.05);
  for (n = 1; n <= 1000; n++) {
    quarter.event(n % 4 === 0);
    if (quarter.logLR() >= boundary) break;
  }
  t.ok(n < 200, `crosses within 200 events (took ${n})`);

  const onlyStable = new ConditionalTest(1.25);
  onlyStable.setShare(0.05);
  for (let i = 0; i < 200; i++) onlyStable.event(false);
  t.ok(onlyStable.logLR() < 0, 'events only from stable are evidence for the null');

  const noShare = new ConditionalTest(1);
  noShare.setShare(1);
  for (let i = 0; i < 50; i++) noShare.event(true);
  t.equal(noShare.logLR(), 0, 'at a share of 1 the origin of an event says nothing');
});

t.test('ConditionalTest: folding across share changes loses and adds nothing', async () => {
  const shares = fc.double({ min: 0.001, max: 0.9, noNaN: true });
  fc.assert(
    fc.property(fc.array(fc.boolean(), { maxLength: 200 }), shares, shares, (events, share, other) => {
      const once = new ConditionalTest(1.25);
      once.setShare(share);
      const folded = new ConditionalTest(1.25);
      for (const e of events) {
        once.event(e);
        // A detour to another share with no events under it must leave the evidence as it was.
        folded.setShare(other);
        folded.setShare(share);
        folded.event(e);
        if (Math.abs(once.logLR() - folded.logLR()) > 1e-9) return false;
      }
      return true;
    }),
  );
  fc.assert(
    fc.property(fc.array(fc.boolean(), { maxLength: 100 }), fc.array(fc.boolean(), { maxLength: 100 }), shares, shares, (a, b, s1, s2) => {
      // Evidence gathered under two shares adds up the same in either order.
      const forward = new ConditionalTest(1);
      const backward = new ConditionalTest(1);
      forward.setShare(s1);
      a.forEach((e) => forward.event(e));
      forward.setShare(s2);
      b.forEach((e) => forward.event(e));
      backward.setShare(s2);
      b.forEach((e) => backward.event(e));
      backward.setShare(s1);
      a.forEach((e) => backward.event(e));
      return Math.abs(forward.logLR() - backward.logLR()) < 1e-9;
    }),
  );
});

t.test('SpendingTests: the lifetime test and the epoch tests spend at most alpha in all', async (t) => {
  const alpha = 0.001;
  const share = SpendingTests.LIFETIME_SHARE;
  const e = new SpendingTests(alpha, 60_000, 0, () => ({}));
  t.equal(e.lifetimeBoundary, Math.log(1 / (alpha * share)), 'lifetime at alpha x LIFETIME_SHARE');
  for (let j = 1; j <= 5; j++) t.equal(e.epochBoundary(j), Math.log((j * (j + 1)) / (alpha * (1 - share))), `epoch ${j}`);
  let spent = Math.exp(-e.lifetimeBoundary);
  for (let j = 1; j <= 100_000; j++) spent += Math.exp(-e.epochBoundary(j));
  t.ok(spent <= alpha, `sum of levels ${spent} <= ${alpha}`);
  t.ok(spent > alpha * 0.999, 'and nearly all of it is spent');
});

t.test('SpendingTests: epochs roll with the clock, also across idle gaps; the lifetime test stays', async (t) => {
  let made = 0;
  const alpha = 0.01;
  const rest = alpha * (1 - SpendingTests.LIFETIME_SHARE);
  const e = new SpendingTests(alpha, 60_000, 1_000, () => ({ id: ++made }));
  const lifetime = [{ id: 1 }, Math.log(1 / (alpha * SpendingTests.LIFETIME_SHARE))];
  t.same(e.live(), [lifetime, [{ id: 2 }, Math.log(2 / rest)]]);
  t.equal(e.tick(60_999), false, 'not over before epochMs has passed');
  t.equal(e.epoch, 1);
  t.equal(e.tick(61_000), true, 'over at epochMs');
  t.equal(e.epoch, 2);
  t.same(e.live(), [lifetime, [{ id: 3 }, Math.log(6 / rest)]]);
  t.equal(e.tick(100_000), false, 'epochs keep their grid: the next begins at 121 s');
  t.equal(e.tick(421_000), true, 'an idle gap of several epochs');
  t.equal(e.epoch, 8, 'counts every epoch that passed, so no level is spent twice');
  t.same(e.live(), [lifetime, [{ id: 4 }, Math.log(72 / rest)]]);
  t.equal(made, 4);
});

t.test('healthy streams cross ln(1/alpha) at a rate within alpha', async (t) => {
  // A large alpha, many streams at the edge of the null: a test that crossed too often shows up.
  const alpha = 0.05;
  const streams = 1500;
  const length = 1500;
  const critical = binomialCritical(streams, alpha, 1e-6);
  const seeds = fc.sample(fc.integer({ min: 0, max: 0xffffffff }), { seed: 20251130, numRuns: streams });
  const boundary = Math.log(1 / alpha);

  const crossings = (crosses: (seed: number) => boolean): number => seeds.filter(crosses).length;

  const absolute = crossings((seed) => {
    const next = rng(seed);
    const test = new RateAboveTest(0.05);
    for (let i = 0; i < length; i++) {
      test.add(next() < 0.05);
      if (test.logLR() >= boundary) return true;
    }
    return false;
  });
  t.ok(absolute < critical, `RateAboveTest at p = p0: ${absolute} of ${streams} crossed (critical ${critical})`);

  for (const ratio of [1, 1.25]) {
    const share = 0.1;
    const crossed = crossings((seed) => {
      const next = rng(seed);
      const test = new ConditionalTest(ratio);
      test.setShare(share);
      for (let i = 0; i < length; i++) {
        test.event(next() < eventShare(share, ratio));
        if (test.logLR() >= boundary) return true;
      }
      return false;
    });
    t.ok(crossed < critical, `ConditionalTest(${ratio}) at r = ${ratio}: ${crossed} of ${streams} crossed (critical ${critical})`);
  }

  // Short epochs, so a stream spans fifteen of them and both live tests are checked at each step.
  const spending = crossings((seed) => {
    const next = rng(seed);
    const e = new SpendingTests(alpha, 100, 0, () => {
      const c = new ConditionalTest(1);
      c.setShare(0.1);
      return c;
    });
    for (let i = 0; i < length; i++) {
      e.tick(i);
      const fromCandidate = next() < 0.1;
      for (const [test] of e.live()) test.event(fromCandidate);
      for (const [test, b] of e.live()) if (test.logLR() >= b) return true;
    }
    return false;
  });
  t.ok(spending < critical, `SpendingTests over 15 epochs: ${spending} of ${streams} crossed (critical ${critical})`);

  // The same harness does see a candidate that is twice as bad.
  const worse = crossings((seed) => {
    const next = rng(seed);
    const test = new ConditionalTest(1);
    test.setShare(0.1);
    for (let i = 0; i < length; i++) {
      test.event(next() < eventShare(0.1, 2));
      if (test.logLR() >= boundary) return true;
    }
    return false;
  });
  t.ok(worse > streams * 0.9, `a doubled event rate crosses in ${worse} of ${streams} streams`);
});
