import t from 'tap';
import { RolloutRefusal } from '../src/errors.js';
import { allowed, TRANSITIONS, type Move, type MoveContext } from '../src/rollout/phases.js';
import type { Phase } from '../src/shapes.js';
import { controllerOnFakeClock } from './helpers/controller.js';

// The phase table (rollout/phases.ts): every move from every phase, allowed or refused, through
// the controller a user's admin call reaches; a refused move changes nothing.

const CANDIDATE = { version: 'v2', url: 'http://127.0.0.1:9002', weight: 10 };

/** A route in each phase, reached the way a user gets there. */
const SETUPS: Record<Phase, () => ReturnType<typeof controllerOnFakeClock>> = {
  stable: () => controllerOnFakeClock({}),
  progressing: () => controllerOnFakeClock({ candidate: CANDIDATE }),
  shadowing: () => controllerOnFakeClock({ candidate: CANDIDATE, strategy: 'shadow', shadow: { mirrorPercent: 100, bake: '1h' } }),
  paused: () => {
    const s = controllerOnFakeClock({ candidate: CANDIDATE });
    s.c.pause();
    return s;
  },
  rolled_back: () => {
    const s = controllerOnFakeClock({ candidate: CANDIDATE });
    s.c.rollback();
    return s;
  },
};

type Call = 'deploy' | 'weight' | 'promote' | 'rollback' | 'rollbackTo' | 'pause' | 'resume';
const CALLS: Record<Call, (c: ReturnType<typeof controllerOnFakeClock>['c']) => void> = {
  deploy: (c) => c.deploy('v3', 'http://127.0.0.1:9003', 5),
  weight: (c) => c.setWeight(20),
  promote: (c) => c.promote(),
  rollback: (c) => c.rollback(),
  rollbackTo: (c) => c.rollbackTo('v1'),
  pause: (c) => c.pause(),
  resume: (c) => c.resume(),
};

/** The phase after each move from each phase, or null where it is refused (409). */
const EXPECTED: Record<Phase, Record<Call, Phase | null>> = {
  stable: { deploy: 'progressing', weight: null, promote: null, rollback: null, rollbackTo: 'stable', pause: null, resume: null },
  progressing: { deploy: 'progressing', weight: 'progressing', promote: 'stable', rollback: 'rolled_back', rollbackTo: 'stable', pause: 'paused', resume: null },
  // A deploy takes the route's strategy: this route shadows.
  shadowing: { deploy: 'shadowing', weight: 'progressing', promote: 'stable', rollback: 'rolled_back', rollbackTo: 'stable', pause: 'paused', resume: null },
  paused: { deploy: 'progressing', weight: 'paused', promote: 'stable', rollback: 'rolled_back', rollbackTo: 'stable', pause: null, resume: 'progressing' },
  rolled_back: { deploy: 'progressing', weight: null, promote: null, rollback: null, rollbackTo: 'stable', pause: null, resume: null },
};

for (const [from, row] of Object.entries(EXPECTED) as [Phase, Record<Call, Phase | null>][]) {
  t.test(`from ${from}`, async (t) => {
    for (const [call, to] of Object.entries(row) as [Call, Phase | null][]) {
      const { c } = SETUPS[from]();
      t.equal(c.phase, from, `set up in ${from}`);
      const before = JSON.stringify({ state: c.state(), events: c.events.length, generation: c.generation });
      if (to === null) {
        t.throws(() => CALLS[call](c), RolloutRefusal, `${call} is refused`);
        t.equal(JSON.stringify({ state: c.state(), events: c.events.length, generation: c.generation }), before, `a refused ${call} changes nothing`);
      } else {
        CALLS[call](c);
        t.equal(c.phase, to, `${call}: ${from} -> ${to}`);
        t.equal(c.generation, JSON.parse(before).generation + 1, `${call} emits one event`);
        t.equal(c.events[0]?.type, TRANSITIONS[call === 'rollbackTo' ? 'rollbackTo' : call].emits, `${call} emits what the table says`);
      }
    }
  });
}

t.test('the table itself: allowed() agrees with the phases a candidate can be in', async (t) => {
  const ctx = (phase: Phase, candidate: string | null): MoveContext => ({ route: 'm', phase, candidate, strategy: 'canary', pausedFrom: phase === 'paused' ? 'shadowing' : null, hasSteps: true });
  for (const move of Object.keys(TRANSITIONS) as Move[]) {
    t.notOk(TRANSITIONS[move].needsCandidate && allowed(move, ctx('progressing', null)), `${move} needs a candidate when the table says so`);
    t.notOk(allowed(move, ctx('rolled_back', 'v2')) && !['deploy', 'rollbackTo'].includes(move), `${move} is refused on a rolled-back candidate`);
  }
  t.equal(TRANSITIONS.shadowBaked.to(ctx('shadowing', 'v2')), 'progressing', 'a clean shadow bake with steps goes on as a canary');
  t.equal(TRANSITIONS.shadowBaked.to({ ...ctx('shadowing', 'v2'), hasSteps: false }), 'shadowing', 'without steps it waits in shadowing');
  t.equal(TRANSITIONS.resume.to(ctx('paused', 'v2')), 'shadowing', 'resume goes back to the phase it was paused from');
  t.equal(TRANSITIONS.trip.to(ctx('progressing', 'v2')), 'rolled_back');
});
