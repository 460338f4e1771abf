import t, { type Test } from 'tap';
import { Pool } from 'undici';
import { startAdmin } from '../src/admin/server.js';
import { ConfigError, parseConfig } from '../src/config/index.js';
import { runCli } from './helpers/cli.js';
import { config, eventually, seededRng, startGateway, startUpstream, type TestUpstream } from './helpers/servers.js';
import { adminApi } from './helpers/admin-api.js';

// Pinning (SPEC §9): every request rollgate sends upstream carries the serving version's data
// snapshot id in the route's data header, so a model server that reads versioned data follows
// it; replays on stable carry stable's id, shadow copies the candidate's, and after a trip every
// request carries stable's.

const HEADER = 'x-rollgate-data-snapshot';
const S1 = 'features-2026-11-30';
const S2 = 'features-2026-12-01';
const TOKEN = 'pinning-token';

interface Seen {
  label: string;
  snapshot: string | undefined;
  fail: boolean;
  shadow: boolean;
}

/** A model server that records the snapshot id each request asked for; `failing` answers 500 to requests marked x-fail. */
async function versionServer(label: string, seen: Seen[], failing = false): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      const fail = req.headers['x-fail'] === '1';
      seen.push({ label, snapshot: req.headers[HEADER] as string | undefined, fail, shadow: req.headers['x-rollgate-shadow'] === '1' });
      res.writeHead(failing && fail ? 500 : 200, { 'content-type': 'application/json' }).end(`{"served":"${label}"}`);
    });
  });
}

async function pinnedRoute(t: Test, extra: Record<string, unknown> = {}) {
  const seen: Seen[] = [];
  const v1 = await versionServer('v1', seen);
  const v2 = await versionServer('v2', seen, true);
  const v3 = await versionServer('v3', seen);
  const cfg = config([
    {
      name: 'm',
      match: { pathPrefix: '/m' },
      stable: { version: 'v1', url: v1.url, data: { snapshot: S1 } },
      candidate: { version: 'v2', url: v2.url, weight: 20, data: { snapshot: S2 } },
      retryOnStable: true,
      rollback: { latency: { minDelta: '10s' } },
      ...extra,
    },
  ]);
  const gw = await startGateway(cfg, { rng: seededRng(11) });
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token: TOKEN, ready: () => true });
  const pool = new Pool(gw.url, { connections: 8 });
  t.teardown(async () => {
    await pool.close();
    await admin.app.close();
    await gw.close();
    for (const u of [v1, v2, v3]) await u.close();
  });
  const send = async (headers: Record<string, string> = {}) => {
    const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json', ...headers } });
    await r.body.dump();
    return { status: r.statusCode, version: String(r.headers['x-rollgate-version']) };
  };
  const api = adminApi(admin.address.port, TOKEN);
  const base = `http://127.0.0.1:${admin.address.port}`;
  return { seen, gw, send, api, base, v3, controller: gw.rollouts.route('m')! };
}

t.test('at weight 20 every upstream request carries its version snapshot; replays carry stable’s; after a trip all do', async (t) => {
  const { seen, send, controller } = await pinnedRoute(t);
  // A client cannot choose the data a version reads.
  for (let i = 0; i < 1_000; i++) await send(i % 10 === 0 ? { [HEADER]: 'chosen-by-the-client' } : {});
  const byLabel = (l: string) => seen.filter((s) => s.label === l);
  t.equal(seen.length, 1_000, '1,000 requests reached the upstreams');
  t.ok(byLabel('v2').length > 150 && byLabel('v2').length < 250, `about 20% reached the candidate (${byLabel('v2').length})`);
  t.same(byLabel('v1').filter((s) => s.snapshot !== S1), [], `every request at stable carried ${S1}`);
  t.same(byLabel('v2').filter((s) => s.snapshot !== S2), [], `every request at the candidate carried ${S2}`);

  // The candidate fails what it is sent: each failure is replayed on stable, with stable's id.
  seen.length = 0;
  const answers = [];
  for (let i = 0; i < 300 && controller.phase !== 'rolled_back'; i++) answers.push(await send({ 'x-fail': '1' }));
  t.equal(controller.phase, 'rolled_back', 'the judge rolled the failing candidate back');
  t.same(answers.filter((a) => a.status !== 200), [], 'no client saw a failure: each was replayed on stable');
  const replays = seen.filter((s) => s.label === 'v1' && s.fail);
  t.ok(replays.length >= 1, `replays reached stable (${replays.length}, and ${seen.filter((s) => s.label === 'v2').length} candidate failures)`);
  t.same(replays.filter((s) => s.snapshot !== S1), [], `every replay carried stable's ${S1}`);

  seen.length = 0;
  for (let i = 0; i < 200; i++) await send();
  t.equal(seen.length, 200);
  t.same(seen.filter((s) => s.label !== 'v1' || s.snapshot !== S1), [], `after the trip all 200 went to stable with ${S1}`);
});

t.test('shadow copies carry the candidate’s snapshot, the client’s request stable’s', async (t) => {
  const { seen, send } = await pinnedRoute(t, { strategy: 'shadow', shadow: { mirrorPercent: 100, bake: '1h' } });
  for (let i = 0; i < 100; i++) await send();
  t.ok(await eventually(() => seen.filter((s) => s.shadow).length === 100), 'every copy reached the candidate');
  t.same(seen.filter((s) => s.shadow && (s.label !== 'v2' || s.snapshot !== S2)), [], `copies at v2 with ${S2}`);
  t.same(seen.filter((s) => !s.shadow && (s.label !== 'v1' || s.snapshot !== S1)), [], `clients' requests at v1 with ${S1}`);
});

t.test('the admin API and the CLI name a candidate’s snapshot; bad ids and hooks are refused and change nothing', async (t) => {
  const { seen, send, api, base, v3 } = await pinnedRoute(t);
  const s3 = 'embeddings@2026-12-06/v3+a_b.c:d-e';
  const deployed = await api('PUT', '/api/routes/m/candidate', { version: 'v3', url: v3.url, weight: 100, data: { snapshot: s3 } });
  t.equal(deployed.status, 200);
  t.same(deployed.body.candidate.data, { snapshot: s3 }, 'the route state shows the candidate’s snapshot');
  t.same(deployed.body.stable.data, { snapshot: S1 });
  t.same(deployed.body.data, { snapshot: S1, restore: null }, 'the route reads stable’s data');
  seen.length = 0;
  for (let i = 0; i < 20; i++) await send();
  t.same(seen.map((s) => `${s.label} ${s.snapshot}`), Array.from({ length: 20 }, () => `v3 ${s3}`), 'v3 gets its own snapshot id');

  const before = (await api('GET', '/api/routes/m')).body;
  for (const [body, why] of [
    [{ version: 'v4', url: v3.url, data: { snapshot: 'has space' } }, 'a space'],
    [{ version: 'v4', url: v3.url, data: { snapshot: 'x'.repeat(129) } }, '129 characters'],
    [{ version: 'v4', url: v3.url, data: { snapshot: '' } }, 'empty'],
    [{ version: 'v4', url: v3.url, data: { snapshot: 's', restore: 'x' } }, 'an unknown key'],
  ] as const) {
    const r = await api('PUT', '/api/routes/m/candidate', body);
    t.equal(r.status, 400, `a snapshot id with ${why}: 400`);
    t.match(r.body.error, { code: 'ROLLGATE_BAD_REQUEST', message: /^body\.data/ }, 'the message names the field');
  }
  const hook = await api('PUT', '/api/routes/m/candidate', { version: 'v4', url: v3.url, hooks: { afterRollback: [{ kind: 'exec', command: ['/bin/true'] }] } });
  t.equal(hook.status, 400, 'a hook can never be set through the admin API');
  t.match(hook.body.error, { code: 'ROLLGATE_BAD_REQUEST', message: /hooks/ });
  t.same((await api('GET', '/api/routes/m')).body, before, 'the refused calls changed nothing');

  const env = { ROLLGATE_ADMIN_URL: base, ROLLGATE_ADMIN_TOKEN: TOKEN };
  const run = runCli(['deploy', 'm', '--version', 'v5', '--url', v3.url, '--weight', '0', '--data-snapshot', 'features-v5', '--json'], env);
  t.equal((await run.exited).code, 0, 'rollgate deploy --data-snapshot');
  t.same(JSON.parse(run.stdout()).candidate.data, { snapshot: 'features-v5' });
  const bad = runCli(['deploy', 'm', '--version', 'v6', '--url', v3.url, '--data-snapshot', 'no good'], env);
  t.equal((await bad.exited).code, 2, 'a bad --data-snapshot is a usage error');
  t.match(bad.stderr(), /--data-snapshot must be 1-128 letters, digits or _.:@\/\+-/);
  const history = runCli(['history', 'm'], env);
  await history.exited;
  t.match(history.stdout(), /v5\s+candidate\s+\S+\s+features-v5/, 'history shows each revision’s snapshot');
});

t.test('rollback --version 1 makes revision 1 stable with its snapshot', async (t) => {
  const { seen, send, api, v3 } = await pinnedRoute(t);
  t.equal((await api('PUT', '/api/routes/m/candidate', { version: 'v3', url: v3.url, weight: 0, data: { snapshot: 'features-v3' } })).status, 200);
  t.equal((await api('POST', '/api/routes/m/promote')).status, 200);
  seen.length = 0;
  await send();
  t.same(seen.map((s) => `${s.label} ${s.snapshot}`), ['v3 features-v3'], 'v3 serves with its snapshot after the promote');
  const back = await api('POST', '/api/routes/m/rollback', { version: 1 });
  t.equal(back.status, 200);
  t.same(back.body.stable, { version: 'v1', revision: 1, url: back.body.stable.url, healthy: true, data: { snapshot: S1 } });
  t.same(back.body.data, { snapshot: S1, restore: null });
  seen.length = 0;
  await send();
  t.same(seen.map((s) => `${s.label} ${s.snapshot}`), [`v1 ${S1}`], 'revision 1 serves with its own snapshot again');
});

t.test('config: snapshot ids and the data header are checked with their key path', async (t) => {
  const problems = (route: Record<string, unknown>): string[] => {
    try {
      parseConfig({ routes: [{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: 'http://127.0.0.1:9001' }, ...route }] });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };
  t.match(problems({ stable: { version: 'v1', url: 'http://127.0.0.1:9001', data: { snapshot: 'a b' } } }), [/^routes\[0\]\.stable\.data\.snapshot: must be 1-128 letters, digits or _\.:@\/\+-/]);
  t.match(problems({ candidate: { version: 'v2', url: 'http://127.0.0.1:9002', data: { snap: 'x' } } }), [/^routes\[0\]\.candidate\.data/]);
  t.match(problems({ dataHeader: 'not a header' }), [/^routes\[0\]\.dataHeader: must be an HTTP header name/]);
  const ok = parseConfig({ routes: [{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: 'http://127.0.0.1:9001', data: { snapshot: S1 } }, dataHeader: 'X-Feature-Version' }] });
  t.same(ok.routes[0]?.stable.data, { snapshot: S1 });
  t.equal(ok.routes[0]?.dataHeader, 'x-feature-version', 'a route may name its own header');
});
