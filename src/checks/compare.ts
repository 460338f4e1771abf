/**
 * Whether two answers agree at the compared value: strings, booleans and null exactly, numbers
 * within `tolerance` (absolute), arrays element by element (the same length), objects key by key
 * (the same keys). A value missing from either answer agrees with nothing.
 */
export function agrees(a: unknown, b: unknown, tolerance: number): boolean {
  if (a === undefined || b === undefined) return false;
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= tolerance;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!agrees(a[i], b[i], tolerance)) return false;
    return true;
  }
  if (typeof a === 'object' && a !== null) {
    if (typeof b !== 'object' || b === null || Array.isArray(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) if (!Object.hasOwn(b, k) || !agrees((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], tolerance)) return false;
    return true;
  }
  return a === b;
}

/** At most this many characters of a compared value go into a trip's example pairs. */
export const EXAMPLE_CHARS = 200;

/** A compared value as an example shows it: its JSON, cut to EXAMPLE_CHARS. */
export function exampleOf(v: unknown): string {
  const s = v === undefined ? '(missing)' : JSON.stringify(v);
  return s.length <= EXAMPLE_CHARS ? s : `${s.slice(0, EXAMPLE_CHARS - 1)}…`;
}
