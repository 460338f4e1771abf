import t from 'tap';
import { fleet, replica } from './helpers/replica-fleet.js';
import { eventually } from './helpers/servers.js';

// Replicas sharing route state through a real, private Redis (SPEC §3 `store: redis`).


t.test('a weight set through one replica is the weight on all', async (t) => {
  const f = await fleet(t);
  const [a, b, c] = [await replica(t, f), await replica(t, f), await replica(t, f)];
  a.controller.setWeight(30, 'manual');
  t.ok(await eventually(() => [b, c].every((r) => r.controller.state().weight === 30 && r.traffic().weightBp === 3_000)), 'the other two route 30% to the candidate');
  t.match(b.controller.events[0], { type: 'weight', cause: 'manual' }, 'with the deciding replica\'s event in their history');
  t.ok(a.sync.shared && b.sync.shared, 'state is shared');
});

t.test('a trip on one replica rolls the candidate back on all, with reason peer; a replica started later comes up rolled back', async (t) => {
  const f = await fleet(t);
  const [a, b, c] = [await replica(t, f), await replica(t, f), await replica(t, f)];
  // The candidate fails only the traffic that reaches it through A.
  for (let i = 0; i < 200 && a.controller.phase !== 'rolled_back'; i++) await a.send({ 'x-fail': '1' });
  t.equal(a.controller.phase, 'rolled_back', 'A tripped on its own traffic');
  const reason = a.controller.state().lastDecision?.reason;
  t.ok(await eventually(() => [b, c].every((r) => r.controller.phase === 'rolled_back' && r.traffic().weightBp === 0 && !r.traffic().candidateRoutable)), 'B and C send the candidate nothing');
  for (const r of [b, c]) {
    t.match(r.controller.state().lastDecision, { reason: 'peer', evidence: { replica: a.sync.id, reason } }, 'reason peer, with the deciding replica and its reason');
  }
  const versions = await Promise.all(Array.from({ length: 50 }, () => b.send()));
  t.same(new Set(versions.map((v) => v.version)), new Set(['v1']), 'B serves stable only');

  const d = await replica(t, f);
  t.match(d.controller.state(), { phase: 'rolled_back', weight: 0, candidate: { version: 'v2' } }, 'a replica started after the trip comes up rolled back');
  const fromD = await Promise.all(Array.from({ length: 50 }, () => d.send()));
  t.same(new Set(fromD.map((v) => v.version)), new Set(['v1']), 'and never routes to the candidate');
});

t.test('Redis killed mid-traffic: no client request fails; a trip made meanwhile reaches the others when it is back', async (t) => {
  const f = await fleet(t);
  const [a, b] = [await replica(t, f), await replica(t, f)];
  let stop = false;
  const failures: string[] = [];
  let served = 0;
  const load = (async () => {
    while (!stop) {
      for (const r of [a, b]) {
        const x = await r.send().catch((err: Error) => ({ status: 0, version: err.message }));
        if (x.status !== 200) failures.push(`${x.status} ${x.version}`);
        served++;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  await f.redis.kill();
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(a.sync.shared, 'A knows its state is not shared now');
  for (let i = 0; i < 200 && a.controller.phase !== 'rolled_back'; i++) await a.send({ 'x-fail': '1' }).catch(() => null);
  t.equal(a.controller.phase, 'rolled_back', 'A trips locally while Redis is down');
  t.equal(b.controller.phase, 'progressing', 'B cannot know yet');
  await f.redis.restart();
  t.ok(await eventually(() => b.controller.phase === 'rolled_back', 10_000), 'once Redis is back, B applies the trip');
  t.ok(await eventually(() => a.sync.shared, 5_000), 'and A says its state is shared again');
  stop = true;
  await load;
  t.ok(served > 100, `${served} requests during the run`);
  t.same(failures.filter((x) => !x.startsWith('200')), [], 'none failed because of Redis');
});

t.test('two admin calls racing on two replicas end in one state on all; a rollback wins over a weight change', async (t) => {
  const f = await fleet(t);
  const [a, b, c] = [await replica(t, f), await replica(t, f), await replica(t, f)];
  a.controller.setWeight(30, 'manual');
  b.controller.setWeight(70, 'manual');
  const same = () => {
    const w = [a, b, c].map((r) => r.controller.state().weight);
    return w[0] === w[1] && w[1] === w[2] && (w[0] === 30 || w[0] === 70) && [a, b, c].every((r) => r.traffic().weightBp === (w[0] as number) * 100);
  };
  t.ok(await eventually(same, 5_000), `one weight on all: ${[a, b, c].map((r) => r.controller.state().weight)}`);

  a.controller.rollback('manual');
  b.controller.setWeight(80, 'manual');
  t.ok(await eventually(() => [a, b, c].every((r) => r.controller.phase === 'rolled_back' && r.traffic().weightBp === 0), 5_000), 'the rollback holds on every replica');
});

t.test('replicas that each see too little to decide, decide together on the fleet\'s evidence', async (t) => {
  const f = await fleet(t);
  const rs = [await replica(t, f, { weight: 100, fleetEvidence: true }), await replica(t, f, { weight: 100, fleetEvidence: true }), await replica(t, f, { weight: 100, fleetEvidence: true })];
  t.ok(await eventually(() => rs.filter((r) => r.evidence.holding('m')).length === 1, 5_000), 'one replica holds the fleet lease');
  // 20% failures, 40 requests per replica: too little for any replica's own tests.
  for (const r of rs) for (let i = 0; i < 40; i++) await r.send(i % 5 === 4 ? { 'x-fail': '1' } : {});
  t.ok(await eventually(() => rs.every((r) => r.controller.phase === 'rolled_back'), 5_000), 'rolled back on every replica');
  const holder = rs.find((r) => r.evidence.holding('m') || r.controller.state().lastDecision?.reason !== 'peer')!;
  t.match(holder.controller.state().lastDecision, { reason: 'error_rate', evidence: { test: 'fleet', replicas: [String, String, String] }, message: /on the fleet's evidence \(3 replicas\)/ });
  const others = rs.filter((r) => r !== holder);
  for (const r of others) t.match(r.controller.state().lastDecision, { reason: 'peer', evidence: { reason: 'error_rate', test: 'fleet' } });

  // The same traffic on one replica alone does not trip its own tests.
  const g = await fleet(t);
  const alone = await replica(t, g, { weight: 100 });
  for (let i = 0; i < 40; i++) await alone.send(i % 5 === 4 ? { 'x-fail': '1' } : {});
  t.equal(alone.controller.phase, 'progressing', 'one replica\'s 40 requests are not enough on their own');
});

t.test('when the lease holder stops, another replica runs the fleet\'s tests as the next term', async (t) => {
  const f = await fleet(t);
  const rs = [await replica(t, f, { fleetEvidence: true }), await replica(t, f, { fleetEvidence: true })];
  t.ok(await eventually(() => rs.some((r) => r.evidence.holding('m')), 5_000));
  const first = rs.find((r) => r.evidence.holding('m'))!;
  const other = rs.find((r) => r !== first)!;
  t.equal(first.evidence.term('m'), 1, 'the first term');
  first.evidence.close();
  t.ok(await eventually(() => other.evidence.holding('m'), 5_000), 'the other replica takes the lease once it lapses');
  t.equal(other.evidence.term('m'), 2, 'as term 2, at 1/6 of the fleet\'s alpha (term 1 had 1/2)');
});
