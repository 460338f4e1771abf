import t, { type Test } from 'tap';
import { SharedHub } from '../src/store/shared-hub.js';
import { fleetConfig, joinFleet } from './helpers/replica-fleet.js';
import { eventually, startFailingOnHeader, startGateway, startLabelled, type TestUpstream } from './helpers/servers.js';

// Processes acting as one through a SharedHub instead of Redis: the same ReplicaSync and
// FleetEvidence, over the in-memory transport the data-plane workers will share.

async function models(t: Test): Promise<{ stable: TestUpstream; candidate: TestUpstream }> {
  const stable = await startLabelled('v1');
  const candidate = await startFailingOnHeader();
  t.teardown(async () => {
    await stable.close();
    await candidate.close();
  });
  return { stable, candidate };
}

async function participant(t: Test, hub: SharedHub, m: { stable: TestUpstream; candidate: TestUpstream }, options: { weight?: number; fleetEvidence?: boolean; soleHolder?: boolean } = {}) {
  const gw = await startGateway(fleetConfig(m.stable.url, m.candidate.url, options.weight), { alphaScale: 1 / 16 });
  const p = await joinFleet(t, gw, hub.client(), options);
  return { ...p, send: async (headers: Record<string, string> = {}) => (await p.send(headers)).version };
}

t.test('through a SharedHub, a weight set on one is the weight on all, and a trip on one rolls back all', async (t) => {
  const hub = new SharedHub();
  const m = await models(t);
  const [a, b, c] = [await participant(t, hub, m), await participant(t, hub, m), await participant(t, hub, m)];
  a.controller.setWeight(30, 'manual');
  t.ok(await eventually(() => [b, c].every((r) => r.controller.state().weight === 30 && r.traffic().weightBp === 3_000)), 'the others route 30% to the candidate');
  t.ok(a.sync.shared && b.sync.shared && c.sync.shared, 'state is shared');

  for (let i = 0; i < 200 && a.controller.phase !== 'rolled_back'; i++) await a.send({ 'x-fail': '1' });
  t.equal(a.controller.phase, 'rolled_back', 'A tripped on its own traffic');
  t.ok(await eventually(() => [b, c].every((r) => r.controller.phase === 'rolled_back' && r.traffic().weightBp === 0)), 'B and C send the candidate nothing');
  t.match(b.controller.state().lastDecision, { reason: 'peer', evidence: { replica: a.sync.id } }, 'reason peer, naming the deciding participant');
  t.same(new Set(await Promise.all(Array.from({ length: 30 }, () => b.send()))), new Set(['v1']), 'B serves stable only');

  const d = await participant(t, hub, m);
  t.match(d.controller.state(), { phase: 'rolled_back', weight: 0 }, 'one started after the trip comes up rolled back');
});

t.test('through a SharedHub, racing changes end in one state, and a rollback wins', async (t) => {
  const hub = new SharedHub();
  const m = await models(t);
  const [a, b] = [await participant(t, hub, m), await participant(t, hub, m)];
  a.controller.setWeight(30, 'manual');
  b.controller.setWeight(70, 'manual');
  t.ok(await eventually(() => {
    const [wa, wb] = [a.controller.state().weight, b.controller.state().weight];
    return wa === wb && (wa === 30 || wa === 70) && a.traffic().weightBp === wa * 100 && b.traffic().weightBp === wa * 100;
  }), 'one weight on both');
  a.controller.rollback('manual');
  b.controller.setWeight(80, 'manual');
  t.ok(await eventually(() => [a, b].every((r) => r.controller.phase === 'rolled_back' && r.traffic().weightBp === 0)), 'the rollback holds on both');
});

t.test('through a SharedHub, participants that each see too little decide together on the pooled evidence', async (t) => {
  const hub = new SharedHub();
  const m = await models(t);
  const rs = [await participant(t, hub, m, { weight: 100, fleetEvidence: true }), await participant(t, hub, m, { weight: 100, fleetEvidence: true }), await participant(t, hub, m, { weight: 100, fleetEvidence: true })];
  t.ok(await eventually(() => rs.filter((r) => r.evidence.holding('m')).length === 1), 'one holds the lease on the pooled tests');
  for (const r of rs) for (let i = 0; i < 40; i++) await r.send(i % 5 === 4 ? { 'x-fail': '1' } : {});
  t.ok(await eventually(() => rs.every((r) => r.controller.phase === 'rolled_back')), 'rolled back on every participant');
  const holder = rs.find((r) => r.controller.state().lastDecision?.reason !== 'peer')!;
  t.match(holder.controller.state().lastDecision, { reason: 'error_rate', evidence: { test: 'fleet' } }, 'decided by the pooled test');
});

t.test('a preferred participant (the primary) runs the pooled tests on the evidence of the others, which see too little', async (t) => {
  const hub = new SharedHub();
  const m = await models(t);
  const workers = [await participant(t, hub, m, { weight: 100, fleetEvidence: true }), await participant(t, hub, m, { weight: 100, fleetEvidence: true })];
  t.ok(await eventually(() => workers.some((r) => r.evidence.holding('m'))), 'a worker holds the lease at first');
  const primary = await participant(t, hub, m, { weight: 100, fleetEvidence: true });
  hub.prefer(primary.sync.id);
  t.ok(await eventually(() => primary.evidence.holding('m') && workers.every((r) => !r.evidence.holding('m'))), 'the preferred one takes the lease, and the workers let it go');
  for (const r of workers) for (let i = 0; i < 60; i++) await r.send(i % 5 === 4 ? { 'x-fail': '1' } : {});
  t.ok(await eventually(() => [primary, ...workers].every((r) => r.controller.phase === 'rolled_back')), 'rolled back everywhere');
  t.match(primary.controller.state().lastDecision, { reason: 'error_rate', evidence: { test: 'fleet' } }, 'decided by the preferred one, which served no request, on the pooled evidence');
  for (const r of workers) t.match(r.controller.state().lastDecision, { reason: 'peer' }, 'the workers took it as a peer\'s decision');
});

t.test('the primary, sole holder of the leases, runs one pooled test per deployment at the whole fleet share, through a lapse of its lease', async (t) => {
  let clock = 0;
  const hub = new SharedHub(() => clock);
  const m = await models(t);
  const primary = await participant(t, hub, m, { weight: 100, fleetEvidence: true, soleHolder: true });
  hub.prefer(primary.sync.id);
  const workers = [await participant(t, hub, m, { weight: 100, fleetEvidence: true }), await participant(t, hub, m, { weight: 100, fleetEvidence: true })];
  t.ok(await eventually(() => primary.evidence.holding('m')), 'the primary holds the lease');
  // The lease lapses (a stall of the primary's event loop): the hub counts a second term when it takes it back.
  clock += 60_000;
  // Its evidence ticks every 50 ms: a few of them, and it has taken the lease back.
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.ok(primary.evidence.holding('m'), 'the primary took it back');
  t.equal(primary.evidence.term('m'), 1, 'still its one term');
  for (const r of workers) for (let i = 0; i < 60; i++) await r.send(i % 5 === 4 ? { 'x-fail': '1' } : {});
  t.ok(await eventually(() => [primary, ...workers].every((r) => r.controller.phase === 'rolled_back')), 'rolled back everywhere');
  const rules = primary.controller.config.rollback;
  t.match(primary.controller.state().lastDecision, { reason: 'error_rate', evidence: { test: 'fleet', alpha: rules.alpha * 0.5 } }, "decided by the pooled test at the whole fleet share (0.5 here), not a term's part of it");
});

t.test("a trip's notice, ahead of its record, stops every other participant's traffic to that candidate revision only", async (t) => {
  const hub = new SharedHub();
  const m = await models(t);
  const [a, b] = [await participant(t, hub, m, { weight: 100 }), await participant(t, hub, m, { weight: 100 })];
  const revision = a.controller.state().candidate!.revision;
  // The notice alone (no record written): B cuts at once, in this call, and keeps its phase.
  hub.noticeTrip('m', revision, a.sync.id);
  t.equal(b.traffic().weightBp, 0, 'B routes nothing to the candidate as the notice arrives');
  t.equal(b.controller.phase, 'progressing', 'B keeps its phase: the record brings the rest');
  t.same(new Set(await Promise.all(Array.from({ length: 20 }, () => b.send()))), new Set(['v1']), 'B serves stable only');
  t.equal(a.traffic().weightBp, 10_000, 'the notice of A is not applied to A');
  // A notice of another revision cuts nothing; a new revision deployed afterwards is routed to.
  hub.noticeTrip('m', revision + 100, a.sync.id);
  t.equal(a.traffic().weightBp, 10_000);
  b.controller.deploy('v3', m.candidate.url, 100);
  t.ok(await eventually(() => b.traffic().weightBp === 10_000 && a.traffic().weightBp === 10_000), 'a new revision takes traffic on both');
});
