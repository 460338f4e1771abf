import t from 'tap';
import { request } from 'undici';
import { config, eventually, startGateway, startLabelled, startUpstream } from './helpers/servers.js';

async function receiver(mode: () => 'ok' | 'fail' | 'hang') {
  const got: Record<string, any>[] = [];
  let attempts = 0;
  const up = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      attempts++;
      const m = mode();
      if (m === 'hang') return;
      if (m === 'fail') {
        res.writeHead(500).end();
        return;
      }
      got.push(JSON.parse(body));
      res.writeHead(200).end('ok');
    });
  });
  return { up, got, attempts: () => attempts };
}

async function stack(t: { teardown(fn: () => unknown): void }, hookUrl: string) {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const route = (name: string) => ({
    name,
    match: { pathPrefix: `/${name}` },
    stable: { version: 'v1', url: stable.url },
    candidate: { version: 'v2', url: candidate.url, weight: 100 },
  });
  const gw = await startGateway(config([route('a'), route('b')], { notify: [{ kind: 'webhook', url: hookUrl }] }), {
    webhook: { timeoutMs: 300, retryForMs: 5_000, backoffMs: 50 },
  });
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const served = async (path: string): Promise<string> => {
    const r = await request(`${gw.url}${path}`);
    await r.body.dump();
    return String(r.headers['x-rollgate-version']);
  };
  return { gw, served };
}

t.test('a webhook receiver gets one notification per promote and per rollback', async (t) => {
  const hook = await receiver(() => 'ok');
  t.teardown(() => hook.up.close());
  const { gw } = await stack(t, `${hook.up.url}/hook`);
  gw.rollouts.route('a')!.rollback('manual');
  gw.rollouts.route('b')!.promote('manual');
  t.ok(await eventually(() => hook.got.length >= 2), 'two notifications arrived');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(hook.got.length, 2, 'exactly one each');
  const [rollback, promote] = hook.got;
  t.match(rollback, { route: 'a', type: 'rollback', reason: 'manual', from: { version: 'v2' }, to: { version: 'v1' } });
  t.match(rollback?.text, /^rollgate: route a rolled back \(manual\): v2 -> v1\./, 'a one-line text Slack and Teams show as is');
  t.notMatch(rollback?.text, /\n/);
  t.match(promote, { route: 'b', type: 'promote', from: { version: 'v1' }, to: { version: 'v2' } });
});

t.test('a receiver that fails is retried with backoff until it takes the notification', async (t) => {
  let n = 0;
  const hook = await receiver(() => (++n <= 2 ? 'fail' : 'ok'));
  t.teardown(() => hook.up.close());
  const { gw } = await stack(t, hook.up.url);
  gw.rollouts.route('a')!.rollback('manual');
  t.ok(await eventually(() => hook.got.length === 1), 'delivered');
  t.equal(hook.attempts(), 3, 'on the third attempt, after two 500s');
});

t.test('with a receiver that hangs, the rollback still takes effect at once', async (t) => {
  const hook = await receiver(() => 'hang');
  t.teardown(() => hook.up.close());
  const { gw, served } = await stack(t, hook.up.url);
  t.equal(await served('/a/x'), 'v2', 'the candidate serves before');
  const controller = gw.rollouts.route('a')!;
  controller.rollback('manual');
  t.equal(gw.gateway.routes.get('a')!.traffic.weightBp, 0, 'the weight is 0 the moment rollback() returns');
  t.equal(await served('/a/x'), 'v1', 'and the next request goes to stable');
  gw.rollouts.route('b')!.rollback('manual');
  t.equal(await served('/b/x'), 'v1', 'a second rollback is not held up behind the hanging delivery either');
  t.ok(await eventually(() => hook.attempts() >= 1), 'the receiver was tried');
});
