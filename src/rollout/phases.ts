import { RolloutRefusal } from '../errors.js';
import type { Phase, Strategy } from '../shapes.js';
import type { RouteEvent } from './types.js';

export type { Phase } from '../shapes.js';

/** What an operator, the schedule or the judge can do to a route. */
export type Move = 'deploy' | 'weight' | 'promote' | 'rollback' | 'trip' | 'rollbackTo' | 'pause' | 'resume' | 'shadowBaked';

/** What a guard and a target look at. */
export interface MoveContext {
  route: string;
  phase: Phase;
  /** The candidate's label, or null when the route has none. */
  candidate: string | null;
  /** The strategy the move starts or continues. */
  strategy: Strategy;
  /** The phase a paused route was paused from. */
  pausedFrom: Phase | null;
  /** With steps: the schedule goes on after a clean shadow bake. */
  hasSteps: boolean;
}

export interface Transition {
  /** The phases the move is allowed from (with a candidate where `needsCandidate`). */
  readonly from: readonly Phase[];
  readonly needsCandidate: boolean;
  /** The phase after the move. */
  readonly to: (c: MoveContext) => Phase;
  /** The event the move emits. */
  readonly emits: RouteEvent['type'];
  /** Why the move is refused, in the words the admin API answers with (409). */
  readonly refusal: (c: MoveContext) => string;
}

const LIVE: readonly Phase[] = ['progressing', 'shadowing', 'paused'];
const ALL: readonly Phase[] = ['stable', 'shadowing', 'progressing', 'paused', 'rolled_back'];
const rolledBack = (c: MoveContext, then: string): string | null => (c.phase === 'rolled_back' && c.candidate !== null ? `route ${c.route}: candidate ${c.candidate} ${then}` : null);

/**
 * Every move a route's phase allows (SPEC §1, §3, §5), its guard and what it emits. The
 * controller asks `guard()` before it changes anything, so a refused move changes nothing.
 */
export const TRANSITIONS: Readonly<Record<Move, Transition>> = {
  deploy: {
    from: ALL,
    needsCandidate: false,
    to: (c) => (c.strategy === 'shadow' ? 'shadowing' : 'progressing'),
    emits: 'deploy',
    refusal: () => '',
  },
  weight: {
    from: LIVE,
    needsCandidate: true,
    // A shadowing route becomes a canary at the weight set.
    to: (c) => (c.phase === 'shadowing' ? 'progressing' : c.phase),
    emits: 'weight',
    refusal: (c) => rolledBack(c, 'was rolled back; deploy a new candidate first') ?? `route ${c.route} has no candidate`,
  },
  promote: {
    from: LIVE,
    needsCandidate: true,
    to: () => 'stable',
    emits: 'promote',
    refusal: (c) => rolledBack(c, 'was rolled back and cannot be promoted') ?? `route ${c.route} has no candidate to promote`,
  },
  rollback: {
    from: LIVE,
    needsCandidate: true,
    to: () => 'rolled_back',
    emits: 'rollback',
    refusal: (c) => `route ${c.route} has no candidate to roll back`,
  },
  trip: {
    from: LIVE,
    needsCandidate: true,
    to: () => 'rolled_back',
    emits: 'rollback',
    refusal: (c) => `route ${c.route} has no live candidate to trip`,
  },
  rollbackTo: {
    from: ALL,
    needsCandidate: false,
    to: () => 'stable',
    emits: 'rollback',
    refusal: () => '',
  },
  pause: {
    from: ['progressing', 'shadowing'],
    needsCandidate: true,
    to: () => 'paused',
    emits: 'pause',
    refusal: (c) => `route ${c.route} has no progressing candidate to pause`,
  },
  resume: {
    from: ['paused'],
    needsCandidate: true,
    to: (c) => c.pausedFrom ?? 'progressing',
    emits: 'resume',
    refusal: (c) => `route ${c.route} has no paused candidate to resume`,
  },
  shadowBaked: {
    from: ['shadowing', 'paused'],
    needsCandidate: true,
    // With steps, a canary from here (a paused route stays paused); without, it waits in shadowing.
    to: (c) => (c.phase === 'paused' || !c.hasSteps ? c.phase : 'progressing'),
    emits: 'step',
    refusal: (c) => `route ${c.route} is not shadowing`,
  },
};

/** Whether the move is allowed from the context's phase. */
export function allowed(move: Move, c: MoveContext): boolean {
  const t = TRANSITIONS[move];
  return t.from.includes(c.phase) && (!t.needsCandidate || c.candidate !== null);
}

/** The phase after `move`, or a RolloutRefusal (409) naming why not. */
export function guard(move: Move, c: MoveContext): Phase {
  const t = TRANSITIONS[move];
  if (!allowed(move, c)) throw new RolloutRefusal(t.refusal(c));
  return t.to(c);
}
