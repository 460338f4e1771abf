import t from 'tap';
import { DEFAULT_ROLLBACK } from '../src/config/defaults.js';
import type { RollbackRules } from '../src/config/types.js';
import type { Trip } from '../src/judge/decide.js';
import { ALPHA_SHARES, RouteJudge, SHARED_CAUSE_MS } from '../src/judge/route-judge.js';
import { SpendingTests } from '../src/judge/sequential.js';
import type { FailureKind, Outcome, VersionRole } from '../src/proxy/outcome.js';

interface Answer {
  failure?: FailureKind;
  status?: number;
  latencyMs?: number;
  /** A streaming answer: its time to first byte, when given, is what the judge times. */
  ttfbMs?: number;
  /** The latency tests that already counted it as slow in flight (bit i: quantile i). */
  slowMask?: number;
}

/**
 * A judge on a fake clock, fed at 2,000 requests a second with every 20th request on the
 * candidate (a 5% share). Stable answers in 40 ms unless told otherwise.
 */
class Traffic {
  readonly judge: RouteJudge;
  now = 0;
  #sent = 0;
  stableCount = 0;
  stableFailures = 0;

  constructor(rules: RollbackRules = DEFAULT_ROLLBACK) {
    this.judge = new RouteJudge(rules, 'v1', 'v2', this.now);
  }

  send(role: VersionRole, a: Answer = {}): Trip | null {
    this.now += 0.5;
    const failure = a.failure ?? 'none';
    const latencyMs = a.latencyMs ?? 40;
    if (role === 'stable' && failure !== 'aborted') {
      this.stableCount++;
      if (failure !== 'none') this.stableFailures++;
    }
    const o: Outcome = {
      route: 'sentiment',
      role,
      version: role === 'stable' ? 'v1' : 'v2',
      status: a.status ?? (failure === 'status' ? 500 : failure === 'none' ? 200 : 0),
      failure,
      latencyMs,
      ttfbMs: a.ttfbMs ?? latencyMs,
      startedAt: this.now - latencyMs,
      streaming: a.ttfbMs !== undefined,
      replayed: false,
      slowMask: a.slowMask ?? 0,
    };
    return this.judge.observe(o, this.now);
  }

  /** Sends requests until `candidates` of them went to the candidate, or until a trip, which it returns. */
  run(candidates: number, candidate: (i: number) => Answer = () => ({}), stable: (i: number) => Answer = () => ({})): Trip | null {
    for (let c = 0, s = 0; c < candidates; ) {
      const onCandidate = ++this.#sent % 20 === 0;
      const trip = onCandidate ? this.send('candidate', candidate(c++)) : this.send('stable', stable(s++));
      if (trip !== null) return trip;
    }
    return null;
  }

  /** Candidate requests (each after 19 stable ones) until a trip; how many it took. */
  untilTrip(candidate: Answer, max = 1_000): { trip: Trip | null; n: number } {
    for (let n = 1; n <= max; n++) {
      const trip = this.run(1, () => candidate);
      if (trip !== null) return { trip, n };
    }
    return { trip: null, n: max };
  }

  /**
   * Four seconds of stable failing 1%, then two clean ones: the tests have a history, and stable's
   * last failure is older than SHARED_CAUSE_MS.
   */
  history(): void {
    this.run(200, () => ({}), (i) => (i % 100 === 0 ? { failure: 'status' } : {}));
    this.run((SHARED_CAUSE_MS * 2) / 10);
  }
}

const FAIL: Answer = { failure: 'status' };

t.test('consecutive candidate failures trip at exactly consecutiveFailures', async (t) => {
  for (const limit of [DEFAULT_ROLLBACK.consecutiveFailures, 3]) {
    const traffic = new Traffic({ ...DEFAULT_ROLLBACK, consecutiveFailures: limit });
    traffic.history();
    t.equal(traffic.judge.tripped, null);
    for (let i = 1; i < limit; i++) t.equal(traffic.run(1, () => FAIL), null, `failure ${i} of ${limit}`);
    const trip = traffic.run(1, () => FAIL);
    t.equal(trip?.reason, 'consecutive_failures', `limit ${limit}`);
    t.equal(trip?.evidence.statistic, limit);
    t.equal(trip?.evidence.boundary, limit);
  }
});

t.test('a candidate success resets the run of failures', async (t) => {
  const traffic = new Traffic();
  traffic.history();
  const limit = DEFAULT_ROLLBACK.consecutiveFailures;
  t.equal(traffic.run(limit - 1, () => FAIL), null);
  t.equal(traffic.run(1), null);
  t.equal(traffic.run(limit - 1, () => FAIL), null);
  t.equal(traffic.judge.tripped, null);
});

t.test('candidate failures while stable fails too do not count toward the latch', async (t) => {
  const traffic = new Traffic();
  traffic.history();
  // A shared outage: both versions fail every request for 200 ms.
  t.equal(traffic.run(10, () => FAIL, () => FAIL), null, '10 candidate failures in a row, stable failing alongside');
  // The outage is over: after SHARED_CAUSE_MS of stable successes (no candidate requests), the latch counts from zero.
  for (let i = 0; i < SHARED_CAUSE_MS * 2 + 2; i++) traffic.send('stable');
  for (let i = 1; i < DEFAULT_ROLLBACK.consecutiveFailures; i++) t.equal(traffic.run(1, () => FAIL), null);
  t.equal(traffic.run(1, () => FAIL)?.reason, 'consecutive_failures');
});

t.test('4xx answers never count against the candidate', async (t) => {
  const traffic = new Traffic();
  t.equal(traffic.run(500, () => ({ status: 404 })), null);
  const c = traffic.judge.snapshot(traffic.now).candidate;
  t.equal(c.count, 500);
  t.equal(c.failures, 0);
});

t.test('aborted outcomes are ignored: no count, no evidence, no reset', async (t) => {
  const traffic = new Traffic();
  t.equal(traffic.run(300, () => ({ failure: 'aborted', latencyMs: 5_000 })), null);
  t.equal(traffic.judge.snapshot(traffic.now).candidate.count, 0);

  traffic.history();
  const limit = DEFAULT_ROLLBACK.consecutiveFailures;
  t.equal(traffic.run(limit - 1, () => FAIL), null);
  t.equal(traffic.run(5, () => ({ failure: 'aborted' })), null, 'aborts in the middle of a run');
  t.equal(traffic.run(1, () => FAIL)?.reason, 'consecutive_failures', 'the run goes on past them');
});

t.test("warmup: the candidate's first requests feed no latency test", async (t) => {
  const tripsAt = (warmup: number): number => {
    const { trip, n } = new Traffic({ ...DEFAULT_ROLLBACK, warmup }).untilTrip({ latencyMs: 2_000 });
    t.equal(trip?.reason, 'latency', `warmup ${warmup}`);
    return n;
  };
  const at0 = tripsAt(0);
  t.equal(tripsAt(50), 50 + at0, `a candidate 50x slower from its first request trips ${at0} requests after a warmup of 50`);
  t.equal(tripsAt(200), 200 + at0, 'and of 200');
  t.ok(at0 <= 10);
});

t.test('the trip message names both versions and the numbers', async (t) => {
  const latch = new Traffic();
  latch.history();
  const trip = latch.run(DEFAULT_ROLLBACK.consecutiveFailures, () => FAIL) as Trip;
  t.match(trip.message, /candidate v2 failed 5 requests in a row \(limit 5\) while stable v1 did not/);
  t.match(trip.message, new RegExp(`stable ${latch.stableFailures} of ${latch.stableCount} `));

  const errors = new Traffic();
  const e = errors.run(2_000, (i) => (i % 3 === 0 ? FAIL : {}), (i) => (i % 100 === 0 ? FAIL : {})) as Trip;
  t.equal(e.reason, 'error_rate');
  for (const word of ['v1', 'v2', String(e.evidence.statistic), String(e.evidence.boundary), 'nats', 'alpha']) {
    t.ok(e.message.includes(word), `error_rate message has ${word}: ${e.message}`);
  }

  const slow = new Traffic();
  const l = slow.run(1_000, () => ({ latencyMs: 400 })) as Trip;
  t.equal(l.reason, 'latency');
  t.match(l.message, /candidate v2 is credibly slower than stable v1 at p50/);
  const threshold = l.evidence.thresholdMs as number;
  t.ok(Math.abs(threshold - 50) <= 1, `threshold ${threshold}: stable's 40 ms x 1.25`);
  t.ok(l.message.includes(`longer than ${threshold.toFixed(1)} ms`));
  t.ok(l.message.includes(`${l.evidence.statistic} nats passed the boundary ${l.evidence.boundary}`));
});

t.test('once tripped, the judge returns null for good', async (t) => {
  const traffic = new Traffic();
  const trip = traffic.run(200, () => FAIL);
  t.ok(trip !== null);
  t.equal(traffic.run(200, () => FAIL), null);
  t.equal(traffic.judge.observeSlow('candidate', 60_000, 0, traffic.now), null);
  t.equal(traffic.judge.tripped, trip, 'the first trip is kept');
});

/** Reports 50 in-flight requests of `role` that are `elapsedMs` old; how many calls tripped. */
function slowTrips(traffic: Traffic, role: VersionRole, elapsedMs: number): number {
  let trips = 0;
  for (let i = 0; i < 50; i++) if (traffic.judge.observeSlow(role, elapsedMs, 0, traffic.now) !== null) trips++;
  return trips;
}

t.test('in-flight candidate requests past the threshold trip latency', async (t) => {
  const early = new Traffic();
  early.run(DEFAULT_ROLLBACK.warmup - 1);
  t.equal(slowTrips(early, 'candidate', 10_000), 0, 'not during warmup');

  const stable = new Traffic();
  stable.run(DEFAULT_ROLLBACK.warmup + 10);
  t.equal(slowTrips(stable, 'stable', 10_000), 0, 'a slow stable never trips');

  const traffic = new Traffic();
  traffic.run(DEFAULT_ROLLBACK.warmup + 10);
  const threshold = traffic.judge.smallestThreshold;
  t.ok(Math.abs(threshold - 50) <= 1, `threshold ${threshold}: stable's 40 ms x 1.25`);
  t.equal(slowTrips(traffic, 'candidate', threshold - 1), 0, 'under the threshold');
  let trip: Trip | null = null;
  let n = 0;
  for (; trip === null && n < 100; n++) trip = traffic.judge.observeSlow('candidate', 10_000, 0, traffic.now);
  t.equal(trip?.reason, 'latency');
  t.ok(n <= 10, `after ${n} slow in-flight requests`);
});

t.test('a request counted slow in flight is not counted again when it ends', async (t) => {
  const inFlight = (mark: boolean): Trip | null => {
    const traffic = new Traffic();
    traffic.run(DEFAULT_ROLLBACK.warmup + 10);
    // Three slow candidate requests: too few to trip on their own, enough if each counted twice.
    for (let i = 0; i < 3; i++) t.equal(traffic.judge.observeSlow('candidate', 10_000, 0, traffic.now), null);
    return traffic.run(3, () => ({ latencyMs: 20_000, slowMask: mark ? traffic.judge.slowMask(10_000) : 0 }));
  };
  t.equal(inFlight(true), null, 'marked: the ends add nothing');
  t.equal(inFlight(false)?.reason, 'latency', 'unmarked, the same six slow answers trip');
});

t.test('the trip evidence holds both windows, the statistic and the boundary', async (t) => {
  const traffic = new Traffic();
  const trip = traffic.run(2_000, (i) => (i % 3 === 0 ? FAIL : {}), (i) => (i % 100 === 0 ? FAIL : {})) as Trip;
  const { stable, candidate, statistic, boundary } = trip.evidence;
  t.equal(trip.reason, 'error_rate');
  t.equal(stable.version, 'v1');
  t.equal(candidate.version, 'v2');
  t.equal(stable.count, traffic.stableCount);
  t.equal(stable.failures, traffic.stableFailures);
  t.equal(stable.failureRate, traffic.stableFailures / traffic.stableCount);
  t.equal(candidate.failures, Math.ceil(candidate.count / 3));
  t.equal(candidate.failureRate, candidate.failures / candidate.count);
  t.equal(candidate.failuresByKind.status, candidate.failures);
  for (const v of [stable, candidate]) {
    t.same(Object.keys(v.latencyMs), ['0.5', '0.99']);
    t.ok(Math.abs((v.latencyMs['0.5'] as number) - 40) <= 0.8, `${v.version} p50 ${v.latencyMs['0.5']}`);
  }
  // The relative error-rate test's lifetime part runs at alpha x 0.35 x 0.75.
  const level = DEFAULT_ROLLBACK.alpha * ALPHA_SHARES.errorRelative * SpendingTests.LIFETIME_SHARE;
  t.equal(boundary, Math.round(Math.log(1 / level) * 1000) / 1000);
  t.ok(statistic >= boundary);
  t.equal(trip.at, traffic.now);
});

t.test('the evidence is as of the deciding sample, however late it is read', async (t) => {
  const traffic = new Traffic();
  const trip = traffic.run(200, () => FAIL) as Trip;
  const atTrip = traffic.judge.snapshot(traffic.now);
  traffic.run(100, () => FAIL);
  t.equal(trip.evidence.candidate.count, atTrip.candidate.count, 'candidate count as at the trip');
  t.equal(trip.evidence.stable.count, atTrip.stable.count, 'stable count as at the trip');
});

t.test('streams are judged on their time to first byte, not on how long they run', async (t) => {
  // The candidate streams for 30 s, but its first token comes as fast as stable's answers.
  const longStreams = new Traffic();
  t.equal(longStreams.run(2_000, () => ({ latencyMs: 30_000, ttfbMs: 40 })), null, 'long streams with a quick first byte never trip');
  // The same streams with a first byte 3x later than stable's answers do.
  const slowFirstByte = new Traffic();
  const trip = slowFirstByte.run(2_000, () => ({ latencyMs: 30_000, ttfbMs: 120 }));
  t.equal(trip?.reason, 'latency', 'a slow first byte trips the latency test');
});
