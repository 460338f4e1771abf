import t from 'tap';
import { Pool } from 'undici';
import { controllerOnFakeClock } from './helpers/controller.js';
import { config, eventually, startGateway, startLabelled } from './helpers/servers.js';

// Canary step schedules (SPEC §3 `steps`, `autoPromote`), on a fake clock.

const STEPS = [
  { weight: 10, bake: '1m' },
  { weight: 25, bake: '2m' },
  { weight: 50, bake: '2m' },
];

function setup(extra: Record<string, unknown> = {}) {
  const s = controllerOnFakeClock({ candidate: { version: 'v2', url: 'http://127.0.0.1:9002', weight: 7 }, steps: STEPS, ...extra });
  /** Some healthy traffic on both versions, then `ms` later. */
  const bakeWith = (ms: number): void => {
    for (let i = 0; i < 60; i++) {
      s.outcome('stable');
      s.outcome('candidate');
    }
    s.clock.advance(ms);
  };
  return { ...s, bakeWith };
}

t.test('the candidate starts at the first step, not at its weight, and climbs each bake', async (t) => {
  const { c, picker, bakeWith, clock, wallIso } = setup();
  t.match(c.state(), { phase: 'progressing', weight: 10, step: { index: 0, weight: 10, bakeEndsAt: wallIso(60_000), count: 3 }, bake: { stage: 'step', remainingMs: 60_000 } });
  t.equal(picker.state.weightBp, 1_000, 'the data plane sends 10%');

  bakeWith(59_999);
  t.equal(c.state().step?.index, 0, 'a millisecond before the bake ends: still the first step');
  clock.advance(1);
  t.match(c.state(), { weight: 25, step: { index: 1, weight: 25, bakeEndsAt: wallIso(120_000) } }, 'the second step');
  t.equal(picker.state.weightBp, 2_500);
  t.match(c.events[0], { type: 'step', cause: 'schedule', weight: 25, message: /step 2 of 3: candidate v2 at 25% for 2m/ });

  bakeWith(120_000);
  t.match(c.state(), { weight: 50, step: { index: 2, weight: 50 } }, 'the third step');
  bakeWith(120_000);
  t.match(c.state(), { phase: 'stable', weight: 0, stable: { version: 'v2', revision: 2 }, candidate: null, step: null, bake: null }, 'auto-promoted after the last step');
  t.match(c.events[0], { type: 'promote', cause: 'schedule' });
  t.equal(picker.state.candidate, null);
  t.equal(picker.state.stableLabel, 'v2', 'the data plane serves the new stable');
  t.equal(clock.pending, 0, 'no timer left');
});

t.test('pause holds the clock; resume continues with what was left', async (t) => {
  const { c, bakeWith, clock, wallIso } = setup();
  bakeWith(60_000);
  t.equal(c.state().step?.index, 1);
  bakeWith(30_000);
  c.pause('manual');
  t.match(c.state(), { phase: 'paused', weight: 25, step: { index: 1, bakeEndsAt: null }, bake: { stage: 'step', endsAt: null, remainingMs: 90_000 } });
  t.match(c.events[0], { type: 'pause', message: /1\.5m|90s/ });
  bakeWith(10 * 60_000);
  t.match(c.state(), { phase: 'paused', step: { index: 1 } }, 'ten minutes paused: the step has not moved');
  c.resume('manual');
  t.match(c.state(), { phase: 'progressing', step: { index: 1, bakeEndsAt: wallIso(90_000) } });
  bakeWith(89_999);
  t.equal(c.state().step?.index, 1);
  clock.advance(1);
  t.equal(c.state().step?.index, 2, 'the step ends 90 s after the resume');
});

for (const step of [0, 1, 2]) {
  t.test(`a trip in step ${step + 1} rolls back and ends the schedule`, async (t) => {
    const { c, picker, bakeWith, outcome, clock } = setup();
    const bakes = [60_000, 120_000, 120_000];
    for (let i = 0; i < step; i++) bakeWith(bakes[i] as number);
    t.equal(c.state().step?.index, step);
    bakeWith(1_000);
    for (let i = 0; i < 5; i++) outcome('candidate', true);
    t.match(c.state(), { phase: 'rolled_back', weight: 0, step: null, bake: null, lastDecision: { reason: 'consecutive_failures' } });
    t.equal(picker.state.weightBp, 0);
    t.equal(clock.pending, 0, 'the bake timer is cancelled');
    clock.advance(60 * 60_000);
    t.match(c.state(), { phase: 'rolled_back', stable: { version: 'v1' }, candidate: { version: 'v2' } }, 'an hour later: still rolled back, never promoted');
  });
}

t.test('without autoPromote the last step holds until an operator promotes', async (t) => {
  const { c, bakeWith } = setup({ autoPromote: false });
  bakeWith(60_000);
  bakeWith(120_000);
  bakeWith(120_000);
  t.match(c.state(), { phase: 'progressing', weight: 50, step: { index: 2, bakeEndsAt: null }, bake: null });
  t.match(c.events[0], { type: 'step', message: /last step baked clean: candidate v2 stays at 50% until promoted/ });
  c.promote('manual');
  t.match(c.state(), { phase: 'stable', stable: { version: 'v2' } });
});

t.test('a step ends on evidence: a request on the candidate in the step, and warmup requests in all', async (t) => {
  const { c, clock, outcome } = setup();
  clock.advance(60_000);
  t.match(c.state(), { step: { index: 0 } }, 'no evidence on the candidate: the step waits');
  t.match(c.events[0], { type: 'step', message: /too little evidence on candidate v2 \(0 requests in the step, 0 in all; the step ends once it has served one in the step and 50 in all\)/ });
  outcome('stable');
  t.equal(c.state().step?.index, 0, 'a stable request does not count');
  for (let i = 0; i < 49; i++) outcome('candidate');
  t.equal(c.state().step?.index, 0, '49 candidate requests: the judge has not looked at its latency yet');
  outcome('candidate');
  t.match(c.state(), { step: { index: 1, weight: 25 } }, 'the 50th ends the step');
  clock.advance(120_000);
  t.match(c.state(), { step: { index: 1 } }, 'the next step has had no request of its own: it waits');
  outcome('candidate');
  t.match(c.state(), { step: { index: 2 } }, 'its first request ends it');
});

t.test('a manual weight holds until the next step sets its own', async (t) => {
  const { c, picker, bakeWith } = setup();
  c.setWeight(15, 'manual');
  t.match(c.state(), { weight: 15, step: { index: 0 } });
  t.equal(picker.state.weightBp, 1_500);
  bakeWith(60_000);
  t.match(c.state(), { weight: 25, step: { index: 1 } });
});

t.test('a deploy through the admin path starts the schedule afresh', async (t) => {
  const { c, bakeWith, picker } = setup();
  bakeWith(60_000);
  c.deploy('v3', 'http://127.0.0.1:9003', 80, 'manual');
  t.match(c.state(), { phase: 'progressing', weight: 10, candidate: { version: 'v3', revision: 3 }, step: { index: 0 } }, 'step 1, not the weight asked for');
  t.equal(picker.state.candidateLabel, 'v3');
  t.equal(picker.state.weightBp, 1_000);
});

t.test('the schedule survives a restart with what was left of its bake', async (t) => {
  const { c, bakeWith } = setup();
  bakeWith(60_000);
  bakeWith(30_000);
  const saved = c.persisted();
  t.match(saved.plan, { strategy: 'canary', stage: 'step', stepIndex: 1, remainingMs: 90_000 });

  const next = setup();
  next.c.restore(JSON.parse(JSON.stringify(saved)));
  t.match(next.c.state(), { phase: 'progressing', weight: 25, step: { index: 1 }, bake: { remainingMs: 90_000 } });
  t.equal(next.picker.state.weightBp, 2_500);
  next.bakeWith(90_000);
  t.equal(next.c.state().step?.index, 2, 'the step ends when its remaining bake does');
});

t.test('real time: sub-second bakes climb the steps and promote, under live traffic', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const gw = await startGateway(
    config([
      {
        name: 'm',
        match: { pathPrefix: '/m' },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: candidate.url },
        steps: [
          { weight: 20, bake: '300ms' },
          { weight: 60, bake: '300ms' },
        ],
        // The schedule is under test here, not the judge: no latency difference counts.
        rollback: { latency: { minDelta: '10s' } },
      },
    ]),
  );
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(async () => {
    await pool.close();
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const controller = gw.rollouts.route('m')!;
  const seen: { step: number | null; version: string }[] = [];
  let stop = false;
  const load = (async () => {
    while (!stop) {
      const step = controller.state().step?.index ?? null;
      const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}' });
      await r.body.dump();
      seen.push({ step, version: String(r.headers['x-rollgate-version']) });
    }
  })();
  t.ok(await eventually(() => controller.phase === 'stable', 10_000), 'promoted');
  stop = true;
  await load;
  t.equal(controller.state().stable.version, 'v2');
  const share = (step: number) => {
    const during = seen.filter((s) => s.step === step);
    return during.filter((s) => s.version === 'v2').length / Math.max(1, during.length);
  };
  t.ok(seen.filter((s) => s.step === 0).length > 20 && seen.filter((s) => s.step === 1).length > 20, 'traffic in both steps');
  t.ok(share(0) > 0.08 && share(0) < 0.35, `step 1 near 20% (${share(0).toFixed(2)})`);
  t.ok(share(1) > 0.45 && share(1) < 0.75, `step 2 near 60% (${share(1).toFixed(2)})`);
  t.same(
    controller.events.map((e) => `${e.type}:${e.cause}`).slice(0, 2),
    ['promote:schedule', 'step:schedule'],
    'the step to 60%, then the promotion, in the history',
  );
});
