import { agrees, exampleOf } from '../checks/compare.js';
import { valueAt } from '../checks/pointer.js';

/** One compared pair: whether the two answers agree at the pointer, and the values when they do not. */
export interface AgreementResult {
  agree: boolean;
  /** The compared values as JSON cut to a bounded size; null when they agree. */
  stable: string | null;
  candidate: string | null;
}

/** Where every compared pair goes, with its route. */
export type AgreementSink = (route: string, result: AgreementResult) => void;

const AGREED: AgreementResult = Object.freeze({ agree: true, stable: null, candidate: null });

/**
 * Compares stable's and the candidate's parsed answers at the agreement's pointer; null when
 * either answer was not kept (not JSON, or over the bound), so there is nothing to compare.
 */
export function compareAnswers(a: { tokens: readonly string[]; tolerance: number }, stable: unknown, candidate: unknown): AgreementResult | null {
  if (stable === undefined || candidate === undefined) return null;
  const s = valueAt(stable, a.tokens);
  const c = valueAt(candidate, a.tokens);
  if (agrees(s, c, a.tolerance)) return AGREED;
  return { agree: false, stable: exampleOf(s), candidate: exampleOf(c) };
}
