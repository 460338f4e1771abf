import t from 'tap';
import { request } from 'undici';
import { prefixMatches, RouteTable } from '../src/proxy/route-table.js';
import { config, startGateway, startLabelled } from './helpers/servers.js';

t.test('prefixes match on whole path segments', (t) => {
  const table: [string, string, boolean][] = [
    ['/v1/models/sentiment', '/v1/models/sentiment', true],
    ['/v1/models/sentiment', '/v1/models/sentiment/predict', true],
    ['/v1/models/sentiment', '/v1/models/sentiment:predict', true],
    ['/v1/models/sentiment', '/v1/models/sentiment?x=1', true],
    ['/v1/models/sentiment', '/v1/models/sentiment-2', false],
    ['/v1/models/', '/v1/models/anything', true],
    ['/', '/whatever', true],
    ['/v1', '/v2', false],
  ];
  for (const [prefix, url, expected] of table) t.equal(prefixMatches(prefix, url), expected, `${prefix} ~ ${url}`);
  const rt = new RouteTable([{ pathPrefix: '/' }, { pathPrefix: '/v1/models' }, { pathPrefix: '/v1/models/sentiment' }]);
  t.equal(rt.match('/v1/models/sentiment/x')?.pathPrefix, '/v1/models/sentiment', 'the longest prefix wins');
  t.equal(rt.match('/v1/models/other')?.pathPrefix, '/v1/models');
  t.equal(rt.match('/health')?.pathPrefix, '/');
  t.end();
});

t.test('through the gateway, the longest matching prefix picks the route', async (t) => {
  const a = await startLabelled('a');
  const b = await startLabelled('b');
  const c = await startLabelled('c');
  const gw = await startGateway(
    config([
      { name: 'models', match: { pathPrefix: '/v1/models' }, stable: { version: 'a1', url: a.url } },
      { name: 'sentiment', match: { pathPrefix: '/v1/models/sentiment' }, stable: { version: 'b1', url: b.url } },
      { name: 'chat', match: { pathPrefix: '/v1/chat/completions' }, stable: { version: 'c1', url: c.url } },
    ]),
  );
  t.teardown(async () => {
    await gw.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  const cases: [string, string, string][] = [
    ['/v1/models/sentiment/predict', 'sentiment', 'b'],
    ['/v1/models/sentiment:predict', 'sentiment', 'b'],
    ['/v1/models/translate/predict', 'models', 'a'],
    ['/v1/models/sentiment-v2/predict', 'models', 'a'],
    ['/v1/chat/completions', 'chat', 'c'],
  ];
  for (const [path, route, served] of cases) {
    const r = await request(`${gw.url}${path}`, { method: 'POST', body: '{}' });
    const body = (await r.body.json()) as { served: string };
    t.equal(r.headers['x-rollgate-route'], route, `${path} -> route ${route}`);
    t.equal(body.served, served, `${path} reached upstream ${served}`);
  }
  const miss = await request(`${gw.url}/v2/other`);
  await miss.body.dump();
  t.equal(miss.statusCode, 404);
});

t.test('the override header forces a version only where allowOverride is set', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const versions = { stable: { version: 'v1', url: stable.url }, candidate: { version: 'v2', url: candidate.url, weight: 0 } };
  const gw = await startGateway(
    config([
      { name: 'open', match: { pathPrefix: '/open' }, allowOverride: true, ...versions },
      { name: 'closed', match: { pathPrefix: '/closed' }, ...versions },
    ]),
  );
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const served = async (path: string, override?: string): Promise<string> => {
    const r = await request(`${gw.url}${path}`, { headers: override === undefined ? {} : { 'x-rollgate-version': override } });
    await r.body.dump();
    return String(r.headers['x-rollgate-version']);
  };
  t.equal(await served('/open', 'candidate'), 'v2', 'candidate forces the candidate at weight 0');
  t.equal(await served('/open', 'v2'), 'v2', 'the candidate label does too');
  t.equal(await served('/open', 'stable'), 'v1');
  t.equal(await served('/open', 'v1'), 'v1');
  t.equal(await served('/open', 'v9'), 'v1', 'an unknown label falls back to the weighted pick');
  t.equal(await served('/closed', 'candidate'), 'v1', 'ignored without allowOverride');

  // A rolled-back candidate gets nothing, not even overridden requests.
  const route = gw.gateway.routes.get('open')!;
  const s = route.traffic;
  route.setTraffic({ ...s, weightBp: 0, candidateRoutable: false });
  t.equal(await served('/open', 'candidate'), 'v1', 'no override reaches a candidate that may not take traffic');
});
