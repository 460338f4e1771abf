import fc from 'fast-check';
import t from 'tap';
import { request } from 'undici';
import { Picker, trafficState } from '../src/traffic/picker.js';
import { BUCKETS, cookieValue, routeSeed, stickyBucket } from '../src/traffic/sticky.js';
import { config, startGateway, startLabelled } from './helpers/servers.js';

const route = config([
  {
    name: 'sentiment',
    match: { pathPrefix: '/v1/models/sentiment' },
    stable: { version: 'v1', url: 'http://127.0.0.1:1' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:2', weight: 0 },
    sticky: { header: 'x-user-id' },
  },
]).routes[0]!;

function pickerAt(weight: number): Picker<string> {
  return new Picker(route, trafficState('stable', 'v1', 'candidate', 'v2', weight), () => {
    throw new Error('a sticky key must not consume randomness');
  });
}

t.test('over 10,000 keys and every weight from 0 to 100, raising the weight never moves a key back to stable', (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 24 }), { minLength: 10_000, maxLength: 10_000 }), (keys) => {
      const onCandidate = new Array<boolean>(keys.length).fill(false);
      for (let w = 0; w <= 100; w++) {
        const p = pickerAt(w);
        let count = 0;
        for (let i = 0; i < keys.length; i++) {
          const now = p.pickCandidate({ 'x-user-id': keys[i] });
          if (onCandidate[i] && !now) return false; // moved from candidate to stable while the weight rose
          onCandidate[i] = now;
          if (now) count++;
        }
        if (w === 0 && count !== 0) return false;
        if (w === 100 && count !== keys.length) return false;
        // The candidate's share follows the weight (binomial, 10,000 keys: 5 sigma is under 2.5%).
        if (Math.abs(count / keys.length - w / 100) > 0.025) return false;
      }
      return true;
    }),
    { numRuns: 3, seed: 7 },
  );
  t.pass('monotone for three random sets of 10,000 keys');
  t.end();
});

t.test('for any two weights, the candidate keys at the lower are a subset of those at the higher', (t) => {
  const weight = fc.integer({ min: 0, max: 10_000 }).map((bp) => bp / 100);
  fc.assert(
    fc.property(fc.string({ minLength: 1 }), weight, weight, (key, a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const atLo = pickerAt(lo).pickCandidate({ 'x-user-id': key });
      const atHi = pickerAt(hi).pickCandidate({ 'x-user-id': key });
      // Lowering from hi to lo never moves a stable key to the candidate; raising never the reverse.
      return !atLo || atHi;
    }),
    { numRuns: 20_000, seed: 11 },
  );
  t.pass('monotone for 20,000 random (key, weight, weight) triples');
  t.end();
});

t.test('the bucket is a pure function of route and key', (t) => {
  const seedA = routeSeed('sentiment');
  const seedB = routeSeed('chat');
  t.equal(stickyBucket(seedA, 'user-1'), stickyBucket(routeSeed('sentiment'), 'user-1'));
  let differs = 0;
  for (let i = 0; i < 100; i++) if (stickyBucket(seedA, `u${i}`) !== stickyBucket(seedB, `u${i}`)) differs++;
  t.ok(differs > 90, 'routes hash the same key independently');
  for (let i = 0; i < 1000; i++) {
    const b = stickyBucket(seedA, `k${i}`);
    if (b < 0 || b >= BUCKETS || !Number.isInteger(b)) t.fail(`bucket ${b} out of range`);
  }
  t.end();
});

t.test('cookie values are found wherever they stand in the header', (t) => {
  t.equal(cookieValue('uid=abc', 'uid'), 'abc');
  t.equal(cookieValue('a=1; uid=abc; b=2', 'uid'), 'abc');
  t.equal(cookieValue('xuid=1; uid="q"', 'uid'), 'q');
  t.equal(cookieValue('a=1;uid=z', 'uid'), 'z');
  t.equal(cookieValue('a=1; b=2', 'uid'), undefined);
  t.equal(cookieValue('uidx=1', 'uid'), undefined);
  t.end();
});

t.test('through the gateway, a sticky header or cookie keeps each user on one version', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const base = {
    stable: { version: 'v1', url: stable.url },
    candidate: { version: 'v2', url: candidate.url, weight: 30 },
  };
  const gw = await startGateway(
    config([
      { name: 'byheader', match: { pathPrefix: '/h' }, sticky: { header: 'x-user-id' }, ...base },
      { name: 'bycookie', match: { pathPrefix: '/c' }, sticky: { cookie: 'uid' }, ...base },
    ]),
  );
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const seen = { h: new Map<string, Set<string>>(), c: new Map<string, Set<string>>() };
  for (let round = 0; round < 3; round++) {
    for (let u = 0; u < 60; u++) {
      const user = `user-${u}`;
      const h = await request(`${gw.url}/h/predict`, { headers: { 'x-user-id': user } });
      await h.body.dump();
      const c = await request(`${gw.url}/c/predict`, { headers: { cookie: `theme=dark; uid=${user}` } });
      await c.body.dump();
      (seen.h.get(user) ?? seen.h.set(user, new Set()).get(user)!).add(String(h.headers['x-rollgate-version']));
      (seen.c.get(user) ?? seen.c.set(user, new Set()).get(user)!).add(String(c.headers['x-rollgate-version']));
    }
  }
  t.ok([...seen.h.values()].every((s) => s.size === 1), 'each header key always got the same version');
  t.ok([...seen.c.values()].every((s) => s.size === 1), 'each cookie key always got the same version');
  const onCandidate = [...seen.h.values()].filter((s) => s.has('v2')).length;
  t.ok(onCandidate > 0 && onCandidate < 60, `some users (${onCandidate}/60) are on the candidate, not all`);
  const seed = routeSeed('byheader');
  const misplaced = [...seen.h].filter(([user, s]) => [...s][0] !== (stickyBucket(seed, user) < 3000 ? 'v2' : 'v1'));
  t.same(misplaced, [], 'every user lands where its bucket says (bucket < weight x 100: candidate)');
});
