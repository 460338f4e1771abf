import type { RollbackRules } from '../config/types.js';
import { absoluteErrorTests, relativeErrorTests, ruleAlphas, slowEventTests } from './alpha.js';
import type { Trip, TripEvidence, TripReason } from './decide.js';
import type { FleetDelta } from './fleet-delta.js';
import { crossing, type ConditionalTest, type Crossing, type RateAboveTest, type SpendingTests } from './sequential.js';

export type { FleetDelta } from './fleet-delta.js';

const num = (x: number): string => String(Number(x.toPrecision(4)));

/**
 * The fleet's tests: the same rules as a route judge, fed with every replica's deltas, so that
 * replicas that each see little traffic decide together. Each delta's failures and slow events
 * are judged at that delta's own traffic share. It runs at the alpha it is given (the fleet's
 * half of the rule's alpha) on one replica at a time.
 */
export class FleetJudge {
  readonly rules: RollbackRules;
  readonly stableLabel: string;
  readonly candidateLabel: string;
  readonly #errorRelative: SpendingTests<ConditionalTest>;
  readonly #errorAbsolute: SpendingTests<RateAboveTest>;
  readonly #latency: { q: number; tests: SpendingTests<ConditionalTest> }[];
  readonly #alpha: number;
  readonly #replicas = new Set<string>();
  readonly #totals = { stable: { requests: 0, failures: 0 }, candidate: { requests: 0, failures: 0 } };
  #tripped: Trip | null = null;

  constructor(rules: RollbackRules, alpha: number, stableLabel: string, candidateLabel: string, now: number) {
    this.rules = rules;
    this.#alpha = alpha;
    this.stableLabel = stableLabel;
    this.candidateLabel = candidateLabel;
    const alphas = ruleAlphas(rules, alpha);
    this.#errorRelative = relativeErrorTests(rules, alphas.errorRelative, now);
    this.#errorAbsolute = absoluteErrorTests(rules, alphas.errorAbsolute, now);
    this.#latency = rules.latency.quantiles.map((q) => ({ q, tests: slowEventTests(rules, alphas.latency, now) }));
  }

  get tripped(): Trip | null {
    return this.#tripped;
  }

  /** Feeds one replica's delta; returns the trip it caused, if any (once). */
  add(replica: string, d: FleetDelta, now: number): Trip | null {
    if (this.#tripped !== null) return null;
    this.#replicas.add(replica);
    this.#totals.stable.requests += d.stable.requests;
    this.#totals.stable.failures += d.stable.failures;
    this.#totals.candidate.requests += d.candidate.requests;
    this.#totals.candidate.failures += d.candidate.failures;
    this.#errorRelative.tick(now);
    this.#errorAbsolute.tick(now);
    for (const l of this.#latency) l.tests.tick(now);
    const total = d.stable.requests + d.candidate.requests;
    const share = total === 0 ? 0 : d.candidate.requests / total;
    for (const [t] of this.#errorAbsolute.live()) {
      t.n += d.candidate.requests;
      t.k += d.candidate.failures;
    }
    if (share > 0 && share < 1) {
      feed(this.#errorRelative, share, d.candidate.failures, d.stable.failures);
      this.#latency.forEach((l, i) => feed(l.tests, share, d.candidate.slow[i] ?? 0, d.stable.slow[i] ?? 0));
    }
    return this.#check(now);
  }

  #check(now: number): Trip | null {
    let reason: TripReason | null = null;
    let hit: Crossing<unknown> | null;
    let what = '';
    if ((hit = crossing(this.#errorRelative)) !== null) {
      reason = 'error_rate';
      what = `the candidate fails credibly more than ${this.rules.errorRate.tolerance}x as often as stable`;
    } else if ((hit = crossing(this.#errorAbsolute)) !== null) {
      reason = 'error_rate';
      what = `the candidate fails credibly more often than maxAbsolute ${this.rules.errorRate.maxAbsolute * 100}%`;
    } else {
      for (const l of this.#latency) {
        if ((hit = crossing(l.tests)) !== null) {
          reason = 'latency';
          what = `the candidate is credibly slower than stable at p${l.q * 100}`;
          break;
        }
      }
    }
    if (reason === null || hit === null) return null;
    const { stable: s, candidate: c } = this.#totals;
    const version = (label: string, v: { requests: number; failures: number }) => ({
      version: label,
      count: v.requests,
      failures: v.failures,
      failuresByKind: {} as TripEvidence['stable']['failuresByKind'],
      failureRate: v.requests === 0 ? 0 : v.failures / v.requests,
      rate: 0,
      latencyMs: {},
    });
    const evidence: TripEvidence = {
      stable: version(this.stableLabel, s),
      candidate: version(this.candidateLabel, c),
      statistic: Math.round(hit.statistic * 1000) / 1000,
      boundary: Math.round(hit.boundary * 1000) / 1000,
      test: 'fleet',
      replicas: [...this.#replicas].sort(),
      alpha: this.#alpha,
    };
    const message =
      `on the fleet's evidence (${this.#replicas.size} replicas), ${what}: candidate ${this.candidateLabel} ${c.failures} of ${c.requests} failed, ` +
      `stable ${this.stableLabel} ${s.failures} of ${s.requests}; evidence ${evidence.statistic} nats passed the boundary ${evidence.boundary} (alpha ${num(this.#alpha)})`;
    this.#tripped = { reason, at: now, message, evidence };
    return this.#tripped;
  }
}

function feed(tests: SpendingTests<ConditionalTest>, share: number, fromCandidate: number, fromStable: number): void {
  for (const [t] of tests.live()) {
    t.setShare(share);
    for (let i = 0; i < fromCandidate; i++) t.event(true);
    for (let i = 0; i < fromStable; i++) t.event(false);
  }
}
