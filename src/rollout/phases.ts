/** The phases of a route (SPEC §1). */
export type Phase = 'stable' | 'shadowing' | 'progressing' | 'paused' | 'rolled_back';
