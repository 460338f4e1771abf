import type { RouteConfig } from '../config/types.js';
import { BUCKETS, cookieValue, routeSeed, stickyBucket, weightToBasisPoints } from './sticky.js';

/**
 * What one route routes to right now. Swapped as a whole, never mutated, so that a rollback is
 * one assignment and the next `pick()` sees it.
 */
export interface TrafficState<U> {
  readonly stable: U;
  /** null when the route has no candidate. */
  readonly candidate: U | null;
  /** The candidate's share of live traffic in basis points, 0..10000. */
  readonly weightBp: number;
  /** False when the candidate must get nothing at all, not even overridden requests (rolled back). */
  readonly candidateRoutable: boolean;
  readonly stableLabel: string;
  readonly candidateLabel: string | null;
  /** Shadow: the share of requests (basis points) copied to the candidate; 0 when none are. */
  readonly mirrorBp: number;
}

export function trafficState<U>(
  stable: U,
  stableLabel: string,
  candidate: U | null,
  candidateLabel: string | null,
  weight: number,
  candidateRoutable = candidate !== null,
  mirrorPercent = 0,
): TrafficState<U> {
  return {
    mirrorBp: candidate === null || !candidateRoutable ? 0 : weightToBasisPoints(mirrorPercent),
    stable,
    candidate,
    weightBp: candidate === null || !candidateRoutable ? 0 : weightToBasisPoints(weight),
    candidateRoutable: candidate !== null && candidateRoutable,
    stableLabel,
    candidateLabel: candidate === null ? null : candidateLabel,
  };
}

export type Rng = () => number;

export const OVERRIDE_HEADER = 'x-rollgate-version';

type Headers = Record<string, string | string[] | undefined>;

/** The weighted picker of one route: override header, then sticky key, then the RNG. */
export class Picker<U> {
  state: TrafficState<U>;
  readonly #seed: number;
  readonly #rng: Rng;
  readonly #allowOverride: boolean;
  readonly #stickyHeader: string | null;
  readonly #stickyCookie: string | null;

  constructor(route: RouteConfig, initial: TrafficState<U>, rng: Rng = Math.random) {
    this.state = initial;
    this.#seed = routeSeed(route.name);
    this.#rng = rng;
    this.#allowOverride = route.allowOverride;
    this.#stickyHeader = route.sticky?.kind === 'header' ? route.sticky.name : null;
    this.#stickyCookie = route.sticky?.kind === 'cookie' ? route.sticky.name : null;
  }

  /** True when this request goes to the candidate. */
  pickCandidate(headers: Headers): boolean {
    const s = this.state;
    if (s.candidate === null) return false;
    if (this.#allowOverride) {
      const o = headers[OVERRIDE_HEADER];
      if (typeof o === 'string') {
        if (o === 'stable' || o === s.stableLabel) return false;
        if (o === 'candidate' || o === s.candidateLabel) return s.candidateRoutable;
      }
    }
    if (s.weightBp === 0) return false;
    if (s.weightBp >= BUCKETS) return true;
    const key = this.#stickyKey(headers);
    if (key !== undefined) return stickyBucket(this.#seed, key) < s.weightBp;
    return this.#rng() * BUCKETS < s.weightBp;
  }

  /** Shadow: true when a copy of this request goes to the candidate. */
  pickMirror(): boolean {
    const bp = this.state.mirrorBp;
    if (bp === 0) return false;
    return bp >= BUCKETS || this.#rng() * BUCKETS < bp;
  }

  /** True with probability `bp` / 10000, from the picker's random source. */
  chance(bp: number): boolean {
    return bp >= BUCKETS || this.#rng() * BUCKETS < bp;
  }

  /** A fair coin from the picker's random source. */
  coin(): boolean {
    return this.#rng() < 0.5;
  }

  #stickyKey(headers: Headers): string | undefined {
    if (this.#stickyHeader !== null) {
      const v = headers[this.#stickyHeader];
      const key = Array.isArray(v) ? v[0] : v;
      return key === '' ? undefined : key;
    }
    if (this.#stickyCookie !== null) {
      const c = headers.cookie;
      if (typeof c !== 'string') return undefined;
      const key = cookieValue(c, this.#stickyCookie);
      return key === '' ? undefined : key;
    }
    return undefined;
  }
}
