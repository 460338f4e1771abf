import type { RouteConfig } from '../config/types.js';
import type { AnswerSignals } from '../judge/answer-signals.js';
import type { SlidingWindow } from '../stats/window.js';
import type { AnswersState } from './types.js';

/**
 * The `answers` of a route's state (SPEC §9): its checks from the config, and what the judge's
 * answer signals hold (no judge: no pair counted, no time per token). A few quantile reads of
 * histograms, no pass over requests: it is built on every admin read.
 */
export function answersView(config: RouteConfig, signals: AnswerSignals | null, hasCandidate: boolean, now: number): AnswersState | null {
  const { checks, agreement } = config;
  if (checks.json === null && checks.llm === null && agreement === null) return null;
  const qs = config.rollback.latency.quantiles;
  const tpot = (w: SlidingWindow | null | undefined): Record<string, number | null> | null => (w === null || w === undefined ? null : w.snapshot(now, qs).latencyMs);
  const empty = (): Record<string, number | null> => Object.fromEntries(qs.map((q) => [String(q), null]));
  return {
    checks: [...(checks.json === null ? [] : ['json' as const]), ...(checks.llm === null ? [] : ['llm' as const])],
    latency: checks.llm === null ? 'response' : 'ttft',
    tpotMs: checks.llm === null ? null : { stable: tpot(signals?.tpotStable) ?? empty(), candidate: hasCandidate ? tpot(signals?.tpotCandidate) : null },
    agreement:
      agreement === null
        ? null
        : { pointer: agreement.pointer, maxDisagreement: agreement.maxDisagreement, pairs: signals?.agreement?.pairs ?? 0, disagreements: signals?.agreement?.disagreements ?? 0 },
  };
}
