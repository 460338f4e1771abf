import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import t from 'tap';
import { rollgate } from '../src/fastify.js';
import { hashing, host, route, send } from './helpers/fastify-host.js';
import { config, startLabelled } from './helpers/servers.js';

// The Fastify plugin's start and stop: its config source, its saved state, what it refuses.

t.test('the config as a file path; a file store keeps a rollback across a restart of the host app', async (t) => {
  const stable = await hashing('v1');
  const candidate = await hashing('v2', 500);
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-plugin-'));
  t.teardown(async () => {
    await stable.close();
    await candidate.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'rollgate.yaml');
  writeFileSync(
    file,
    `store: { kind: file, path: ${join(dir, 'state.json')} }
log: { level: silent }
routes:
  - name: m
    match: { pathPrefix: /v1/models/m }
    stable: { version: v1, url: ${stable.url} }
    candidate: { version: v2, url: ${candidate.url}, weight: 50 }
`,
  );
  const first = await host(file);
  for (let i = 0; i < 300 && first.app.rollgate.rollouts.route('m')!.phase !== 'rolled_back'; i++) await send(first.pool, 1);
  t.equal(first.app.rollgate.rollouts.route('m')!.phase, 'rolled_back');
  await first.pool.close();
  await first.app.close();

  const second = await host(file);
  t.teardown(async () => {
    await second.pool.close();
    await second.app.close();
  });
  t.equal(second.app.rollgate.rollouts.route('m')!.phase, 'rolled_back', 'the saved rollback is restored');
  t.same(new Set((await send(second.pool, 30)).versions), new Set(['v1']));
});

t.test('store: redis is refused with a reason', async (t) => {
  const app = Fastify({ logger: false });
  const cfg = config([route('http://127.0.0.1:1', 'http://127.0.0.1:2')], { store: { kind: 'redis', url: 'redis://127.0.0.1:1' } });
  await t.rejects(async () => {
    await app.register(rollgate, { config: cfg });
  }, /redis is not supported by the Fastify plugin/);
  await app.close();
});

t.test('registered under a prefix it is refused: the routes match on the whole path', async (t) => {
  const app = Fastify({ logger: false });
  const cfg = config([route('http://127.0.0.1:1', 'http://127.0.0.1:2')]);
  await t.rejects(async () => {
    await app.register(async (api) => api.register(rollgate, { config: cfg }), { prefix: '/ml' });
  }, /at the root of the app, not under the prefix \/ml/);
  await app.close();
});

t.test('a host hook that answers stops the request before it reaches a model', async (t) => {
  const stable = await startLabelled('v1');
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.authorization !== 'Bearer team') await reply.code(403).send({ error: 'forbidden' });
  });
  await app.register(rollgate, { config: config([{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: stable.url } }]) });
  t.teardown(async () => {
    await app.close();
    await stable.close();
  });
  const denied = await app.inject({ method: 'POST', url: '/m/predict', payload: { x: 1 } });
  t.equal(denied.statusCode, 403);
  t.equal(stable.seen.length, 0, 'the model never saw it');
  t.equal(app.rollgate.rollouts.route('m')!.state().windows.stable?.count ?? 0, 0, 'nor did the judge');
  const allowed = await app.inject({ method: 'POST', url: '/m/predict', payload: { x: 1 }, headers: { authorization: 'Bearer team' } });
  t.equal(allowed.statusCode, 200);
  t.equal(allowed.headers['x-rollgate-version'], 'v1');
});
