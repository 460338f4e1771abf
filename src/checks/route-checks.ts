import type { ValidateFunction } from 'ajv';
import type { RouteConfig } from '../config/types.js';
import { compileSchema } from './json-schema.js';
import { parsePointer } from './pointer.js';

/** A route's checks and agreement, compiled once when the route is built (null: it has neither). */
export interface RouteChecks {
  json: { validate: ValidateFunction; holdForReplay: boolean } | null;
  llm: boolean;
  /** Bytes of an answer kept to check or compare it; a larger answer is not checked. */
  maxBytes: number;
  agreement: { tokens: string[]; tolerance: number; mirrorPercent: number } | null;
}

/** Bytes kept of an answer for an `llm` check or an agreement when no `json` check says otherwise. */
export const DEFAULT_KEEP_BYTES = 262_144;

export function routeChecks(config: RouteConfig): RouteChecks | null {
  const { json, llm } = config.checks;
  const a = config.agreement;
  if (json === null && llm === null && a === null) return null;
  return {
    json: json === null ? null : { validate: compileSchema(json.schema), holdForReplay: json.holdForReplay },
    llm: llm !== null,
    maxBytes: json?.maxBytes ?? DEFAULT_KEEP_BYTES,
    agreement: a === null ? null : { tokens: parsePointer(a.pointer) ?? [], tolerance: a.numericTolerance, mirrorPercent: a.mirrorPercent },
  };
}
