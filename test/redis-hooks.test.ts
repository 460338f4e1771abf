import t from 'tap';
import type { HookJob } from '../src/hooks/job.js';
import { RedisHooks } from '../src/store/redis-hooks.js';
import { RedisState } from '../src/store/redis-state.js';
import { startRedis } from './helpers/redis.js';

// Hook jobs shared in Redis (a private redis-server): leases are exclusive, unfinished jobs are
// offered for takeover, a record no replica wrote is never offered, and finished jobs do not pile up.

function job(n: number, state: HookJob['state']): HookJob {
  const at = new Date(Date.UTC(2026, 11, 6, 0, 0, n)).toISOString();
  return {
    id: `m:afterRollback:1:${n}`, route: 'm', event: 'afterRollback', revision: 1, version: 'v1', dataSnapshot: 's1', fromVersion: 'v2', fromDataSnapshot: 's2',
    reason: 'manual', evidence: null, state, attempts: 1, actionsDone: state === 'done' ? 1 : 0, actionAttempts: 0, lastError: null, output: '',
    createdAt: at, startedAt: at, finishedAt: state === 'done' || state === 'failed' ? at : null, history: [],
  };
}

t.test('leases, takeover candidates, foreign records and pruning', async (t) => {
  const redis = await startRedis();
  const stateA = new RedisState(redis.url, 'rh');
  const stateB = new RedisState(redis.url, 'rh');
  await stateA.connect();
  await stateB.connect();
  t.teardown(async () => {
    await stateA.close();
    await stateB.close();
    await redis.stop();
  });
  const a = new RedisHooks(stateA, 'A');
  const b = new RedisHooks(stateB, 'B');

  t.equal(await a.lease('j1', 1_000), true, 'A takes a free lease');
  t.equal(await b.lease('j1', 1_000), false, 'B cannot take it while A holds it');
  t.equal(await a.lease('j1', 1_000), true, 'A keeps it');
  await a.release('j1');
  t.equal(await b.lease('j1', 200), true, 'once released, B takes it');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(await a.lease('j1', 1_000), true, 'a lease that lapses is free again');

  await a.put(job(1, 'running'));
  await stateA.commands.hset('rh:hooks', 'forged', JSON.stringify({ id: 'forged', state: 'pending', command: ['rm', '-rf', '/'] }));
  await stateA.commands.hset('rh:hooks', 'garbage', '{not json');
  t.same((await b.unfinished()).map((j) => j.id), ['m:afterRollback:1:1'], 'only jobs a replica wrote are offered; a forged record never runs');

  for (let n = 2; n <= 70; n++) await a.put(job(n, 'done'));
  const kept = await stateA.commands.hkeys('rh:hooks');
  t.equal(kept.length, 51, 'the newest 50 finished jobs and the unfinished one are kept');
  t.ok(kept.includes('m:afterRollback:1:70') && kept.includes('m:afterRollback:1:1') && !kept.includes('m:afterRollback:1:2'), 'the oldest finished went first');
  t.notOk(kept.includes('forged') || kept.includes('garbage'), 'records no replica wrote were pruned too');
});
