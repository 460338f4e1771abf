import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import t from 'tap';
import { request } from 'undici';
import { config, startLabelled } from './helpers/servers.js';
// Type-only, by name as well: the compiler resolves the package's own name through `exports`.
import type { GatewayConfig, Phase, RouteEvent, RouteState, Revision, Strategy } from 'rollgate';
import type { RollgatePluginOptions } from 'rollgate/fastify';

type Api = typeof import('rollgate');
type PluginApi = typeof import('rollgate/fastify');

// The package as a user gets it: imported by its name, through the `exports` of package.json
// (Node resolves a package's own name from inside it), never by a path into dist/.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  main: string;
  types: string;
  exports: Record<string, string | { types: string; default: string }>;
};
// Held in variables so that the compiler leaves the specifiers to Node's resolution at run time.
const NAME = pkg.name;
const FASTIFY = `${pkg.name}/fastify`;

t.test('every file package.json points at is built', async (t) => {
  t.ok(existsSync(join(ROOT, pkg.main)), `main: ${pkg.main}`);
  t.ok(existsSync(join(ROOT, pkg.types)), `types: ${pkg.types}`);
  for (const [key, target] of Object.entries(pkg.exports)) {
    const files = typeof target === 'string' ? [target] : [target.types, target.default];
    for (const f of files) t.ok(existsSync(join(ROOT, f)), `exports[${key}]: ${f}`);
  }
});

t.test(`import('${NAME}') resolves to the built entry and has the public API`, async (t) => {
  t.equal(import.meta.resolve(NAME), pathToFileURL(join(ROOT, 'dist/src/index.js')).href);
  const api = (await import(NAME)) as Api & Record<string, unknown>;
  for (const fn of ['createRollgate', 'loadConfig', 'parseConfigText', 'buildAdmin', 'adminRoutes', 'startAdmin']) t.type(api[fn], 'function', fn);
  for (const cls of ['ConfigError', 'RollgateError', 'RolloutRefusal', 'UnknownVersion']) t.type(api[cls], 'function', cls);
  t.equal(api.ERRORS.ROLLGATE_NO_ROUTE.status, 404, 'ERRORS: the error table');
  // The exported types name what the API hands out.
  const phase: Phase = 'stable';
  const strategy: Strategy = 'canary';
  const seen: { event?: RouteEvent; state?: RouteState; revision?: Revision } = {};
  t.same([phase, strategy, seen], ['stable', 'canary', {}]);
  t.equal(new api.RolloutRefusal('no').status, 409);
});

t.test('loadConfig reads the shipped config/rollgate.yaml, a file URL and an object; a bad one throws ConfigError', async (t) => {
  const { loadConfig, ConfigError } = (await import(NAME)) as Api;
  const file = join(ROOT, 'config/rollgate.yaml');
  const cfg: GatewayConfig = loadConfig(file);
  t.match(cfg.routes, [{ name: 'sentiment', pathPrefix: '/v1/models/sentiment', stable: { version: 'v1' }, candidate: { version: 'v2', weight: 5 } }]);
  t.equal(cfg.listen.drainTimeoutMs, 10_000, 'durations normalised to ms');
  t.same(loadConfig(pathToFileURL(file)).routes, cfg.routes, 'a file: URL');
  const fromObject = loadConfig({ routes: [{ name: 'r', match: { pathPrefix: '/r' }, stable: { version: 'v1', url: 'http://127.0.0.1:1' } }] });
  t.equal(fromObject.routes[0]?.name, 'r', 'an object shaped like the YAML');
  t.equal(fromObject.listen.port, 8080, 'with the defaults filled');
  t.throws(() => loadConfig({ routes: [{ name: 'r', match: { pathPrefix: 'r' } }] }), ConfigError);
  try {
    loadConfig(join(ROOT, 'no-such-file.yaml'));
    t.fail('a missing file must throw');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.match((err as { problems: string[] }).problems, [/no such file/]);
  }
});

t.test('createRollgate from the package starts, proxies to a real upstream, and its admin answers', async (t) => {
  const { createRollgate, buildAdmin } = (await import(NAME)) as Api;
  const up = await startLabelled('v1');
  const rg = createRollgate(config([{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: up.url } }]));
  const admin = buildAdmin({ config: rg.gateway.config, rollouts: rg.rollouts, token: 'tok', ready: () => true, metrics: rg.metrics });
  t.teardown(async () => {
    await admin.close();
    await rg.gateway.close(0);
    await up.close();
  });
  const { port } = await rg.gateway.listen();
  const r = await request(`http://127.0.0.1:${port}/m/predict`, { method: 'POST', body: '{}' });
  t.equal(r.statusCode, 200);
  t.equal(r.headers['x-rollgate-version'], 'v1');
  t.match(await r.body.json(), { served: 'v1', path: '/m/predict' });
  const routes = await admin.inject({ url: '/api/routes', headers: { authorization: 'Bearer tok' } });
  t.match(routes.json(), { routes: [{ name: 'm', phase: 'stable' }] });
});

t.test(`import('${FASTIFY}'): the plugin mounts the routes in a host app`, async (t) => {
  const plugin = (await import(FASTIFY)) as PluginApi;
  t.equal(plugin.default, plugin.rollgate, 'the default export is the rollgate plugin');
  t.type(plugin.rollgateAdmin, 'function');
  const up = await startLabelled('v1');
  const app = Fastify({ logger: false });
  t.teardown(async () => {
    await app.close();
    await up.close();
  });
  const { loadConfig } = (await import(NAME)) as Api;
  const options: RollgatePluginOptions = { config: loadConfig({ routes: [{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: up.url } }] }) };
  await app.register(plugin.default, options);
  t.equal(app.rollgate.rollouts.route('m')?.phase, 'stable', 'app.rollgate is typed and set');
  const r = await app.inject({ method: 'POST', url: '/m/predict', payload: { x: 1 } });
  t.equal(r.statusCode, 200);
  t.equal(r.headers['x-rollgate-route'], 'm');
  t.match(r.json(), { served: 'v1', path: '/m/predict' });
});

t.test('from outside the package (node_modules/rollgate linked in a temp dir): both entries import, deep paths do not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-consumer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', NAME), 'dir');
  const script = `
    const api = await import('${NAME}');
    const plugin = await import('${FASTIFY}');
    let deep = 'importable';
    try { await import('${NAME}/dist/src/app.js'); } catch (e) { deep = e.code; }
    console.log(JSON.stringify({ api: Object.keys(api).sort(), plugin: Object.keys(plugin).sort(), deep }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' })) as {
    api: string[];
    plugin: string[];
    deep: string;
  };
  t.ok(['createRollgate', 'loadConfig', 'buildAdmin', 'ERRORS'].every((k) => out.api.includes(k)), out.api.join(', '));
  t.same(out.plugin, ['default', 'fastifyPaths', 'rollgate', 'rollgateAdmin']);
  t.equal(out.deep, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'only the exports map is public');
});
