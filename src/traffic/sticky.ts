/**
 * Sticky routing: a key's bucket in [0, BUCKETS) is a pure function of (route, key), and a key
 * is on the candidate exactly when its bucket is below the weight in basis points. Raising the
 * weight therefore only ever adds keys to the candidate and lowering it only ever removes them.
 */
export const BUCKETS = 10_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnv1a(seed: number, s: string): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

// murmur3's finaliser: FNV alone leaves similar keys (user-1, user-2) in neighbouring buckets.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The hash state after the route name and a separator; computed once per route. */
export function routeSeed(route: string): number {
  return Math.imul(fnv1a(FNV_OFFSET, route) ^ 0xff, FNV_PRIME);
}

/** The key's bucket in [0, BUCKETS) for a route seed from `routeSeed()`. */
export function stickyBucket(seed: number, key: string): number {
  return fmix32(fnv1a(seed, key)) % BUCKETS;
}

/** Weight in percent (two decimals) to basis points, the unit buckets are compared with. */
export function weightToBasisPoints(weight: number): number {
  return Math.min(BUCKETS, Math.max(0, Math.round(weight * 100)));
}

/** The value of cookie `name` in a Cookie header, or undefined; no allocation but the result. */
export function cookieValue(header: string, name: string): string | undefined {
  let i = 0;
  const n = header.length;
  while (i < n) {
    while (i < n && (header.charCodeAt(i) === 32 || header.charCodeAt(i) === 59)) i++;
    if (header.startsWith(name, i) && header.charCodeAt(i + name.length) === 61) {
      const start = i + name.length + 1;
      let end = header.indexOf(';', start);
      if (end === -1) end = n;
      let value = header.slice(start, end).trim();
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) {
        value = value.slice(1, -1);
      }
      return value;
    }
    const next = header.indexOf(';', i);
    if (next === -1) return undefined;
    i = next + 1;
  }
  return undefined;
}
