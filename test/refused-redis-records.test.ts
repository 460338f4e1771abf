import t from 'tap';
import { eventually } from './helpers/servers.js';
import { fleet, replica, type Replica } from './helpers/replica-fleet.js';

// What another process leaves in Redis under a route's key, or says on the change channel, is
// checked before a replica applies it: a record no replica wrote is refused with a log line that
// names the key, and every replica keeps its own state and goes on routing.

const logged = (r: Replica, pattern: RegExp) => eventually(() => r.log.some((l) => pattern.test(l)), 5_000);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('a foreign route hash in redis is refused with its key; the replicas keep routing as before', async (t) => {
  const f = await fleet(t);
  const [a, b] = [await replica(t, f), await replica(t, f)];
  a.controller.setWeight(30, 'manual');
  t.ok(await eventually(() => b.controller.state().weight === 30), 'a change through A reaches B');
  const key = `${f.prefix}:route:m`;
  const changes = `${f.prefix}:changes`;
  const announce = (generation: number) => f.raw.publish(changes, JSON.stringify({ route: 'm', generation, by: 'intruder' }));

  // Fields of some other program under the route's key.
  await f.raw.del(key);
  await f.raw.hset(key, { color: 'blue', generation: 'lots' });
  await announce(99);
  for (const r of [a, b]) {
    t.ok(await logged(r, new RegExp(`refused redis key ${escape(key)}: .*generation: must be a positive integer \\(got "lots"\\)`)), 'the log names the key and the bad field');
  }

  // A well-formed generation, and a state no replica writes: all traffic to the candidate, in a
  // phase that does not exist; then one with a revision number written as a string.
  const own = a.controller.persisted();
  const everything = { ...own, candidate: { ...own.candidate!, weight: 100 } };
  // (Each is announced once the replicas have refused the one before: they read the key when
  // the news arrives.)
  await f.raw.hset(key, { generation: '100', by: 'intruder', state: JSON.stringify({ ...everything, phase: 'exploded' }) });
  await announce(100);
  for (const r of [a, b]) {
    t.ok(await logged(r, new RegExp(`refused redis key ${escape(key)} field state: phase: must be one of "stable", .*\\(got "exploded"\\)`)), 'the bad phase is named');
  }
  await f.raw.hset(key, { generation: '101', by: 'intruder', state: JSON.stringify({ ...everything, candidate: { ...everything.candidate, revision: '2' } }) });
  await announce(101);
  for (const r of [a, b]) {
    t.ok(await logged(r, new RegExp(`refused redis key ${escape(key)} field state: candidate\\.revision: must be an integer \\(got "2"\\)`)), 'the bad revision is named');
  }
  for (const r of [a, b]) {
    t.match(r.controller.state(), { phase: 'progressing', weight: 30, candidate: { version: 'v2', revision: 2 } }, 'the replica keeps its own state');
    t.equal(r.traffic().weightBp, 3_000, 'and routes 30% to the candidate');
    t.notOk(r.sync.shared, 'and says its state is not shared');
  }
  const served = await Promise.all(Array.from({ length: 60 }, () => b.send()));
  t.same(new Set(served.map((s) => s.status)), new Set([200]), 'every request is served');
  t.same(new Set(served.map((s) => s.version)), new Set(['v1', 'v2']), 'by both versions');

  // A replica that starts now refuses the record too: it starts on its config, unshared.
  const c = await replica(t, f);
  t.ok(await logged(c, new RegExp(`refused redis key ${escape(key)} field state: candidate\\.revision`)), 'a starting replica logs the refused key');
  t.match(c.controller.state(), { phase: 'progressing', weight: 50 }, 'and routes on its config');
  t.ok(await eventually(() => !c.sync.shared), 'saying its state is not shared');

  // Once the foreign record is gone, changes are shared again.
  await f.raw.del(key);
  a.controller.setWeight(40, 'manual');
  t.ok(await eventually(() => [a, b, c].every((r) => r.controller.state().weight === 40 && r.traffic().weightBp === 4_000), 10_000), 'a change reaches every replica');
  t.ok(await eventually(() => [a, b, c].every((r) => r.sync.shared), 5_000), 'and state is shared on all');
});

t.test('a malformed change message is dropped with a log line naming the channel', async (t) => {
  const f = await fleet(t);
  const [a, b] = [await replica(t, f), await replica(t, f)];
  const changes = `${f.prefix}:changes`;
  await f.raw.publish(changes, 'not json');
  await f.raw.publish(changes, JSON.stringify({ route: 'm', generation: 'soon', by: 'intruder' }));
  for (const r of [a, b]) {
    t.ok(await logged(r, new RegExp(`refused change message on channel ${escape(changes)}: not JSON`)), 'bad JSON is named');
    t.ok(await logged(r, new RegExp(`refused change message on channel ${escape(changes)}: generation: must be an integer \\(got "soon"\\)`)), 'a bad generation is named');
  }
  a.controller.setWeight(20, 'manual');
  t.ok(await eventually(() => b.controller.state().weight === 20 && b.traffic().weightBp === 2_000), 'the replicas go on sharing changes');
});
