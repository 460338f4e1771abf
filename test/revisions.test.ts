import t from 'tap';
import { HISTORY_LIMIT, RevisionHistory } from '../src/rollout/revisions.js';

t.test('a route deployed again and again keeps its newest revisions and the ones still serving', async (t) => {
  const h = new RevisionHistory();
  const at = '2026-12-06T00:00:00.000Z';
  h.add({ version: 'v1', revision: h.take(), url: 'http://127.0.0.1:9001' }, at, 'stable');
  for (let i = 2; i <= HISTORY_LIMIT + 50; i++) {
    h.add({ version: `v${i}`, revision: h.take(), url: 'http://127.0.0.1:9002' }, at, 'candidate');
    h.setStatus(i, i % 2 === 0 ? 'rolled_back' : 'retired');
  }
  t.equal(h.revisions.length, HISTORY_LIMIT, `at most ${HISTORY_LIMIT} kept`);
  t.match(h.revisions.at(-1), { version: 'v1', revision: 1, status: 'stable' }, 'the first, still serving, is kept');
  t.match(h.revisions[0], { revision: HISTORY_LIMIT + 50 }, 'the newest first');
  t.equal(h.revisions.at(-2)?.revision, 52, 'the oldest that serve no more are forgotten');
  t.equal(h.nextRevision, HISTORY_LIMIT + 51, 'numbers are never reused');
});
