import { Counter, Histogram, type Registry } from 'prom-client';
import { CHECK_OUTCOMES, type CheckOutcome, type CheckReport } from '../checks/report.js';

/** The children of one (route, version), bound once: the data plane only increments them. */
interface Bound {
  json: Record<CheckOutcome, Counter.Internal>;
  llm: Record<CheckOutcome, Counter.Internal>;
  ttft: Histogram.Internal<'route' | 'version'>;
  tpot: Histogram.Internal<'route' | 'version'>;
}

/** The routes' checks and agreements, as the metrics read them at scrape time. */
export interface AnswerRoute {
  name: string;
  versions: string[];
  /** `json`, `llm`: the checks the route runs. */
  checks: ('json' | 'llm')[];
  agreement: boolean;
}

/**
 * What the checks found of the answers (SPEC §9): `rollgate_response_checks_total{route,version,
 * check,outcome}`, `rollgate_ttft_seconds` and `rollgate_tpot_seconds{route,version}`, and
 * `rollgate_agreement_total{route,outcome}`. Only routes with checks or an agreement have series;
 * theirs start at 0, so the first failure is a change that `increase()` sees.
 */
export class AnswerMetrics {
  readonly #checks: Counter<'route' | 'version' | 'check' | 'outcome'>;
  readonly #ttft: Histogram<'route' | 'version'>;
  readonly #tpot: Histogram<'route' | 'version'>;
  readonly #agreement: Counter<'route' | 'outcome'>;
  readonly #bound = new Map<string, Map<string, Bound>>();

  constructor(registry: Registry, routes: () => readonly AnswerRoute[]) {
    const registers = [registry];
    this.#checks = new Counter({
      name: 'rollgate_response_checks_total',
      help: 'Checked 2xx answers by route, version, check (json, llm) and outcome: pass, invalid, truncated, empty, stream_error, or unchecked (over maxBytes).',
      labelNames: ['route', 'version', 'check', 'outcome'],
      registers,
      collect() {
        for (const r of routes()) for (const version of r.versions) for (const check of r.checks) for (const outcome of CHECK_OUTCOMES) this.inc({ route: r.name, version, check, outcome }, 0);
      },
    });
    this.#ttft = new Histogram({
      name: 'rollgate_ttft_seconds',
      help: 'Time to first token of LLM answers (the first content or tool-call event; whole answers: the answer), by route and version.',
      labelNames: ['route', 'version'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#tpot = new Histogram({
      name: 'rollgate_tpot_seconds',
      help: 'Time per output token of streamed LLM answers (mean gap between content events), by route and version.',
      labelNames: ['route', 'version'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.#agreement = new Counter({
      name: 'rollgate_agreement_total',
      help: "Pairs of answers to the same request compared for the route's agreement, by outcome: agree, disagree.",
      labelNames: ['route', 'outcome'],
      registers,
      collect() {
        for (const r of routes()) if (r.agreement) for (const outcome of ['agree', 'disagree']) this.inc({ route: r.name, outcome }, 0);
      },
    });
  }

  /** One checked answer. */
  observe(route: string, version: string, c: CheckReport): void {
    const b = this.#children(route, version);
    if (c.json !== null) b.json[c.json].inc();
    if (c.llm !== null) b.llm[c.llm].inc();
    if (!Number.isNaN(c.ttftMs)) b.ttft.observe(c.ttftMs / 1000);
    if (!Number.isNaN(c.tpotMs)) b.tpot.observe(c.tpotMs / 1000);
  }

  #children(route: string, version: string): Bound {
    let byVersion = this.#bound.get(route);
    if (byVersion === undefined) this.#bound.set(route, (byVersion = new Map<string, Bound>()));
    let b = byVersion.get(version);
    if (b === undefined) {
      const outcomes = (check: string) => Object.fromEntries(CHECK_OUTCOMES.map((o) => [o, this.#checks.labels(route, version, check, o)])) as Record<CheckOutcome, Counter.Internal>;
      b = { json: outcomes('json'), llm: outcomes('llm'), ttft: this.#ttft.labels(route, version), tpot: this.#tpot.labels(route, version) };
      byVersion.set(version, b);
    }
    return b;
  }

  agreement(route: string, agree: boolean): void {
    this.#agreement.inc({ route, outcome: agree ? 'agree' : 'disagree' });
  }

  /** A version the route no longer has: its series go. */
  forget(route: string, version: string): void {
    this.#bound.get(route)?.delete(version);
    for (const check of ['json', 'llm']) for (const outcome of CHECK_OUTCOMES) this.#checks.remove({ route, version, check, outcome });
    this.#ttft.remove({ route, version });
    this.#tpot.remove({ route, version });
  }
}
