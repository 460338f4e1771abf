/** The phases of a route (SPEC §1) and the moves between them. */
export const PHASES = ['stable', 'shadowing', 'progressing', 'paused', 'rolled_back'] as const;
export type Phase = (typeof PHASES)[number];

const ALLOWED: Record<Phase, readonly Phase[]> = {
  stable: ['progressing', 'shadowing'],
  shadowing: ['progressing', 'rolled_back', 'stable', 'paused'],
  progressing: ['paused', 'rolled_back', 'stable', 'progressing'],
  paused: ['progressing', 'rolled_back', 'stable'],
  rolled_back: ['progressing', 'shadowing', 'stable'],
};

export function canMove(from: Phase, to: Phase): boolean {
  return ALLOWED[from].includes(to);
}
