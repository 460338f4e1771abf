const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;

// `ms` must come before `m` in the alternation, or `250ms` would read as `250m` + garbage.
const PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

/**
 * Parses a duration such as `250ms`, `5s`, `2m`, `1h`, `1.5s` or `1m30s` into milliseconds.
 * Units are `ms`, `s`, `m` and `h`; every number needs a unit, so a bare `30` (ambiguous) or
 * `5 minutes` gives `null`. Negative durations are not accepted.
 */
export function parseDuration(s: string): number | null {
  if (typeof s !== 'string' || s.length === 0) return null;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const m = PART.exec(s);
    if (m === null) return null;
    total += Number(m[1]) * UNIT_MS[m[2] as Unit];
  }
  // Microsecond resolution: absorbs float noise such as 1.234 * 1000 = 1233.9999999999998.
  const ms = Math.round(total * 1000) / 1000;
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Formats milliseconds as the shortest duration string `parseDuration` reads back to the same
 * value (to the microsecond): `300000` is `5m`, `5400000` is `1h30m`, `1500` is `1.5s`,
 * `250` is `250ms`.
 * @throws RangeError for a negative or non-finite number.
 */
export function formatDuration(value: number): string {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`not a duration: ${value}`);
  const ms = Math.round(value * 1000) / 1000;
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / UNIT_MS.h);
  const m = Math.floor((ms - h * UNIT_MS.h) / UNIT_MS.m);
  const rest = Math.round((ms - h * UNIT_MS.h - m * UNIT_MS.m) * 1000) / 1000;
  let out = '';
  if (h > 0) out += `${h}h`;
  if (m > 0) out += `${m}m`;
  if (rest >= 1000) out += `${rest / 1000}s`;
  else if (rest > 0) out += `${rest}ms`;
  return out;
}
