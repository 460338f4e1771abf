import t from 'tap';
import { Pool } from 'undici';
import { FakeClock } from './helpers/fake-clock.js';
import { config, startGateway, startLabelled } from './helpers/servers.js';

// Sticky sessions across a step schedule (SPEC §4): a user on the candidate stays there as the
// weight climbs, and the candidate's share of users is the step's weight, round after round.

t.test('sticky users across steps: monotone, and the share stays at each step weight', async (t) => {
  const clock = new FakeClock();
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const gw = await startGateway(
    config([
      {
        name: 'm',
        match: { pathPrefix: '/m' },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: candidate.url },
        sticky: { header: 'x-user-id' },
        steps: [
          { weight: 10, bake: '1m' },
          { weight: 25, bake: '1m' },
          { weight: 50, bake: '1m' },
        ],
        autoPromote: false,
      },
    ]),
    { timers: clock },
  );
  const pool = new Pool(gw.url, { connections: 8 });
  t.teardown(async () => {
    await pool.close();
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const users = Array.from({ length: 2_000 }, (_, i) => `user-${i}`);
  /** One request per user; the set of users the candidate served. */
  const round = async (): Promise<Set<string>> => {
    const onCandidate = new Set<string>();
    for (let i = 0; i < users.length; i += 100) {
      await Promise.all(
        users.slice(i, i + 100).map(async (u) => {
          const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}', headers: { 'x-user-id': u } });
          await r.body.dump();
          if (r.headers['x-rollgate-version'] === 'v2') onCandidate.add(u);
        }),
      );
    }
    return onCandidate;
  };
  const controller = gw.rollouts.route('m')!;
  let previous = new Set<string>();
  for (const [index, weight] of [10, 25, 50].entries()) {
    t.equal(controller.state().step?.index, index, `step ${index + 1}`);
    const rounds = [await round(), await round(), await round()];
    for (const [k, r] of rounds.entries()) {
      const share = r.size / users.length;
      t.ok(Math.abs(share - weight / 100) < 0.03, `step ${index + 1} round ${k + 1}: ${(share * 100).toFixed(1)}% of users on the candidate (weight ${weight}%)`);
    }
    t.same([...rounds[2]!].sort(), [...rounds[0]!].sort(), 'the same users, round after round: no drift');
    t.same([...previous].filter((u) => !rounds[0]!.has(u)), [], 'every user who was on the candidate is still on it');
    previous = rounds[0]!;
    clock.advance(60_000);
  }
  t.match(controller.state(), { weight: 50, step: { index: 2 } }, 'held at the last step');
});
