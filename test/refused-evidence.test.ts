import t from 'tap';
import { eventually } from './helpers/servers.js';
import { fleet, replica } from './helpers/replica-fleet.js';

// The fleet's tests take every replica's evidence as it comes: a message on the evidence channel
// that is not a replica's (bad JSON, the wrong shape, counts that do not add up) is dropped with
// a log line, and never reaches them.

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('malformed evidence is dropped with a log line; the fleet judge goes on and a later trip still works', async (t) => {
  const f = await fleet(t);
  const rs = [await replica(t, f, { weight: 100, fleetEvidence: true }), await replica(t, f, { weight: 100, fleetEvidence: true }), await replica(t, f, { weight: 100, fleetEvidence: true })];
  t.ok(await eventually(() => rs.filter((r) => r.evidence.holding('m')).length === 1, 5_000), 'one replica holds the fleet lease');
  const holder = rs.find((r) => r.evidence.holding('m'))!;
  const channel = `${f.prefix}:evidence`;
  const revision = holder.controller.state().candidate!.revision;
  const counts = (requests: unknown, failures: unknown) => ({ requests, failures, slow: [] });
  const bad = [
    'not json',
    JSON.stringify({ route: 'm', revision, by: 'intruder' }),
    JSON.stringify({ route: 'm', revision, by: 'intruder', delta: { stable: counts(100, 0), candidate: counts('100', 100) } }),
    // Well-formed, but more failures than requests: taken as they come, they would trip the fleet.
    JSON.stringify({ route: 'm', revision, by: 'intruder', delta: { stable: counts(1_000, 0), candidate: counts(10, 5_000) } }),
  ];
  for (const message of bad) await f.raw.publish(channel, message);
  const where = escape(channel);
  const expected = [
    new RegExp(`dropped evidence on channel ${where}: not JSON`),
    new RegExp(`dropped evidence from replica "intruder" on channel ${where}: delta: is required`),
    new RegExp(`dropped evidence from replica "intruder" on channel ${where}: delta\\.candidate\\.requests: must be an integer \\(got "100"\\)`),
    new RegExp(`dropped evidence from replica "intruder" on channel ${where}: delta\\.candidate\\.failures: 5000 is more than its 10 requests`),
  ];
  for (const pattern of expected) t.ok(await eventually(() => holder.log.some((l) => pattern.test(l)), 5_000), `logged: ${pattern.source}`);
  await new Promise((r) => setTimeout(r, 300));
  t.ok(rs.every((r) => r.controller.phase === 'progressing'), 'no replica rolled back on them');
  t.ok(rs.some((r) => r.evidence.holding('m')), 'the fleet\'s tests run on');

  // 20% failures, 40 requests per replica: too little for any replica's own tests, enough for the fleet's.
  for (const r of rs) for (let i = 0; i < 40; i++) await r.send(i % 5 === 4 ? { 'x-fail': '1' } : {});
  t.ok(await eventually(() => rs.every((r) => r.controller.phase === 'rolled_back'), 5_000), 'a real trip on the fleet\'s evidence rolls back every replica');
  const decider = rs.find((r) => r.controller.state().lastDecision?.reason !== 'peer')!;
  t.match(decider.controller.state().lastDecision, { reason: 'error_rate', evidence: { test: 'fleet', replicas: [String, String, String] } }, 'on the three replicas\' evidence, not the intruder\'s');
});
