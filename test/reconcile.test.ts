import t from 'tap';
import { createRollgate } from '../src/app.js';
import { config } from './helpers/servers.js';

const route = (candidate: string | null) => ({
  name: 'm',
  match: { pathPrefix: '/m' },
  stable: { version: 'v1', url: 'http://127.0.0.1:9001' },
  ...(candidate === null ? {} : { candidate: { version: candidate, url: `http://127.0.0.1:9002/${candidate}`, weight: 20 } }),
});

t.test('on start, unchanged declared versions take the saved state; a changed candidate is a new deployment', async (t) => {
  const first = createRollgate(config([route('v2')]));
  first.rollouts.route('m')!.rollback('manual');
  const saved = first.rollouts.persisted();
  await first.gateway.close(0);

  const same = createRollgate(config([route('v2')]));
  t.same(same.rollouts.restore(saved), { m: 'restored' });
  t.match(same.rollouts.route('m')!.state(), { phase: 'rolled_back', weight: 0, candidate: { version: 'v2', revision: 2 } });
  t.equal(same.gateway.routes.get('m')!.traffic.candidateRoutable, false, 'the data plane sends the rolled-back candidate nothing');
  await same.gateway.close(0);

  const changed = createRollgate(config([route('v3')]));
  t.same(changed.rollouts.restore(saved), { m: 'new deployment' });
  const state = changed.rollouts.route('m')!.state();
  t.match(state, { phase: 'progressing', weight: 20, stable: { version: 'v1', revision: 1 }, candidate: { version: 'v3', revision: 3 } }, 'v3 gets the next revision number; 2 is not reused');
  t.same(changed.rollouts.route('m')!.revisions.map((r) => [r.revision, r.version, r.status]), [
    [3, 'v3', 'candidate'],
    [1, 'v1', 'stable'],
    [2, 'v2', 'rolled_back'],
  ]);
  t.equal(changed.gateway.routes.get('m')!.traffic.weightBp, 2000, 'the new candidate takes its configured weight');
  await changed.gateway.close(0);
});
