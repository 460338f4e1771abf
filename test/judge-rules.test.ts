import t from 'tap';
import { DEFAULT_ROLLBACK } from '../src/config/defaults.js';
import type { RollbackRules } from '../src/config/types.js';
import { ruleAlphas } from '../src/judge/alpha.js';
import { FleetTally } from '../src/judge/fleet-delta.js';
import { BaselineLatency, baselineError } from '../src/judge/rules/baseline.js';
import { ConsecutiveFailures, SHARED_CAUSE_MS } from '../src/judge/rules/consecutive-failures.js';
import { ErrorAbsolute } from '../src/judge/rules/error-absolute.js';
import { ErrorRelative } from '../src/judge/rules/error-relative.js';
import { Latency } from '../src/judge/rules/latency.js';
import { PairedLatency } from '../src/judge/rules/paired-latency.js';
import type { JudgeEvent, Rule } from '../src/judge/rules/rule.js';
import { SlidingWindow } from '../src/stats/window.js';

// Each rule on its own: decisive evidence crosses with the rule's reason and detail; evidence
// that is the same for both versions (or at the null) never does.

const rules: RollbackRules = DEFAULT_ROLLBACK;
const alphas = ruleAlphas(rules);
const ANSWER: JudgeEvent = { kind: 'answer', role: 'candidate', now: 0, latencyMs: 10, failed: false, counted: 0, share: 0.5, paired: false, pairedMs: Number.NaN, pastWarmup: true };

/** Feeds `n` events; returns the index of the first that crossed (-1 if none did). */
function feed(rule: Rule, n: number, event: (i: number) => Partial<JudgeEvent>): number {
  for (let i = 0; i < n; i++) {
    if (rule.observe({ ...ANSWER, now: i, ...event(i) }) && rule.crossing() !== null) return i;
  }
  return -1;
}

/** A stable window whose latencies are all about 10 ms, as of time 0. */
function stableWindow(): SlidingWindow {
  const w = new SlidingWindow(rules.windowMs, -1000);
  for (let i = 0; i < 500; i++) w.record(-1000 + i, 10, i % 100 === 0 ? 'status' : null);
  return w;
}

t.test('consecutive failures: a run of candidate failures trips; failures shared with stable do not count', async (t) => {
  const latch = new ConsecutiveFailures(3);
  t.equal(feed(latch, 10, () => ({ failed: true })), 2);
  t.same(latch.crossing(), { statistic: 3, boundary: 3, detail: {} });
  t.equal(latch.reason, 'consecutive_failures');
  const shared = new ConsecutiveFailures(3);
  t.equal(feed(shared, 100, (i) => ({ role: i % 2 === 0 ? 'stable' : 'candidate', failed: true, now: (i * SHARED_CAUSE_MS) / 10 })), -1);
});

t.test('relative error rate: failures only from the candidate trip; failures alike from both never do', async (t) => {
  const rule = new ErrorRelative(rules, alphas.errorRelative, 0);
  t.ok(feed(rule, 200, () => ({ failed: true })) > 0);
  t.match(rule.crossing(), { detail: { test: 'relative', tolerance: rules.errorRate.tolerance, share: 0.5, stableFailures: 0, alpha: alphas.errorRelative } });
  t.equal(rule.reason, 'error_rate');
  const alike = new ErrorRelative(rules, alphas.errorRelative, 0);
  t.equal(feed(alike, 5000, (i) => ({ role: i % 2 === 0 ? 'stable' : 'candidate', failed: true })), -1);
});

t.test('absolute error rate: a failing candidate trips; one at half maxAbsolute never does', async (t) => {
  const rule = new ErrorAbsolute(rules, alphas.errorAbsolute, 0);
  t.ok(feed(rule, 200, () => ({ failed: true })) > 0);
  t.match(rule.crossing(), { detail: { test: 'absolute', maxAbsolute: rules.errorRate.maxAbsolute, alpha: alphas.errorAbsolute } });
  const healthy = new ErrorAbsolute(rules, alphas.errorAbsolute, 0);
  const every = Math.round(2 / rules.errorRate.maxAbsolute);
  t.equal(feed(healthy, 10_000, (i) => ({ failed: i % every === every - 1 })), -1);
});

t.test('latency: only the candidate slow trips; both versions slow alike never does', async (t) => {
  const w = stableWindow();
  const rule = new Latency(rules, alphas.latency, 0, w, new FleetTally(rules.latency.quantiles).counts);
  t.ok(feed(rule, 200, () => ({ latencyMs: 100 })) > 0);
  t.match(rule.crossing(), { detail: { test: 'latency', q: 0.5, share: 0.5, stableSlow: 0, alpha: alphas.latency } });
  t.equal(rule.reason, 'latency');
  const alike = new Latency(rules, alphas.latency, 0, w, new FleetTally(rules.latency.quantiles).counts);
  t.equal(feed(alike, 5000, (i) => ({ role: i % 2 === 0 ? 'stable' : 'candidate', latencyMs: 100 })), -1);
});

t.test('paired latency: a copy slower on every pair trips; pairs won alike never do', async (t) => {
  const rule = new PairedLatency(rules, alphas.paired);
  t.equal(rule.crossing(), null, 'no pairs, no tests');
  // One request per second, so that no two slow answers share a stall.
  t.ok(feed(rule, 200, (i) => ({ now: i * 1000, paired: true, latencyMs: 100, pairedMs: 10 })) > 0);
  t.match(rule.crossing(), { detail: { test: 'paired', candidateSlower: Number, stableSlower: 0, alpha: alphas.paired } });
  const alike = new PairedLatency(rules, alphas.paired);
  const pair = (i: number): Partial<JudgeEvent> => ({ now: i * 1000, paired: true, latencyMs: i % 2 === 0 ? 100 : 10, pairedMs: i % 2 === 0 ? 10 : 100 });
  t.equal(feed(alike, 5000, pair), -1);
});

t.test('blue-green baseline: a candidate failing or slow trips; one like stable before the switch never does', async (t) => {
  const w = stableWindow();
  const latency = new Latency(rules, alphas.latency, 0, w, new FleetTally(rules.latency.quantiles).counts);
  latency.refresh(0);
  const error = baselineError(rules, alphas.errorRelative, 0, w.snapshot(0, rules.latency.quantiles));
  if (error === null) throw new Error('stable failing 1% leaves room below maxAbsolute');
  t.ok(feed(error, 500, (i) => ({ failed: i % 2 === 0 })) > 0);
  t.match(error.crossing(), { detail: { test: 'baseline', stableRequests: 500, stableFailureRate: 0.01 } });
  const slow = new BaselineLatency(rules, alphas.latency, 0, latency.thresholds);
  t.ok(feed(slow, 500, () => ({ latencyMs: 100 })) > 0);
  // At most 1% of answers may pass stable's p99: that test is the first to cross.
  t.match(slow.crossing(), { detail: { test: 'baseline', q: 0.99, alpha: alphas.latency } });
  const same = baselineError(rules, alphas.errorRelative, 0, w.snapshot(0, rules.latency.quantiles)) as Rule;
  t.equal(feed(same, 5000, (i) => ({ failed: i % 100 === 0 })), -1);
  const asFast = new BaselineLatency(rules, alphas.latency, 0, latency.thresholds);
  t.equal(feed(asFast, 5000, () => ({ latencyMs: 10 })), -1);
});

t.test('a rule ignores events it does not judge', async (t) => {
  const absolute = new ErrorAbsolute(rules, alphas.errorAbsolute, 0);
  t.equal(feed(absolute, 500, () => ({ role: 'stable', failed: true })), -1);
  t.equal(feed(absolute, 500, () => ({ kind: 'slow', latencyMs: 1e6 })), -1);
  const latency = new Latency(rules, alphas.latency, 0, stableWindow(), new FleetTally(rules.latency.quantiles).counts);
  t.equal(feed(latency, 500, () => ({ latencyMs: 100, pastWarmup: false })), -1, 'the warmup feeds no latency test');
  t.equal(feed(latency, 500, () => ({ latencyMs: 100, paired: true })), -1, 'a shadow copy is judged on its pair');
});
