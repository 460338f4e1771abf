import t from 'tap';
import { request } from 'undici';
import { config, rawExchange, startGateway, startUpstream } from './helpers/servers.js';

t.test('hop-by-hop headers are not forwarded in either direction', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    const body = JSON.stringify(req.headers);
    res.writeHead(200, [
      'content-type', 'application/json',
      'content-length', String(Buffer.byteLength(body)),
      'connection', 'x-upstream-hop, keep-alive',
      'x-upstream-hop', 'secret',
      'keep-alive', 'timeout=5',
      'proxy-authenticate', 'Basic',
      'x-model', 'v1',
      'set-cookie', 'a=1',
      'set-cookie', 'b=2',
    ]);
    res.end(body);
  });
  const gw = await startGateway(config([{ name: 'r', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });

  const text = await rawExchange(
    gw.port,
    'POST /predict HTTP/1.1\r\n' +
      'Host: models.example\r\n' +
      'Connection: close, X-Client-Hop\r\n' +
      'X-Client-Hop: 1\r\n' +
      'Keep-Alive: timeout=5\r\n' +
      'TE: trailers\r\n' +
      'Proxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
      'Upgrade: h2c\r\n' +
      'X-End-To-End: kept\r\n' +
      'Content-Length: 2\r\n\r\n{}',
  );
  const [head, body] = text.split('\r\n\r\n') as [string, string];
  const received = JSON.parse(body) as Record<string, string>;
  for (const h of ['x-client-hop', 'keep-alive', 'te', 'proxy-authorization', 'upgrade']) {
    t.notOk(h in received, `request header ${h} did not reach the upstream`);
  }
  t.equal(received['x-end-to-end'], 'kept', 'end-to-end headers are forwarded');
  t.equal(received['x-forwarded-host'], 'models.example', 'the client host is passed as x-forwarded-host');
  t.equal(received['x-forwarded-for'], '127.0.0.1', 'the client address is in x-forwarded-for');
  t.notOk(received.connection?.includes('X-Client-Hop'), 'the client Connection header is not passed on');

  const lower = head.toLowerCase();
  t.notMatch(lower, /x-upstream-hop/, 'a response header named by Connection is dropped');
  t.notMatch(lower, /proxy-authenticate/, 'proxy-authenticate is dropped');
  t.notMatch(lower, /keep-alive: timeout=5\r\n[\s\S]*keep-alive/, 'no doubled keep-alive');
  t.match(lower, /x-model: v1/, 'end-to-end response headers are kept');
  t.equal(lower.match(/set-cookie:/g)?.length, 2, 'repeated set-cookie headers are both kept');
});

t.test('x-request-id is passed on, or generated, and returned', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'upstream-made-up' });
    res.end(JSON.stringify({ id: req.headers['x-request-id'] }));
  });
  const gw = await startGateway(config([{ name: 'r', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });

  const given = await request(`${gw.url}/x`, { headers: { 'x-request-id': 'client-req-42' } });
  t.same(await given.body.json(), { id: 'client-req-42' }, 'the client id reaches the upstream');
  t.equal(given.headers['x-request-id'], 'client-req-42', 'and comes back on the response');

  const made = await request(`${gw.url}/x`);
  const { id } = (await made.body.json()) as { id: string };
  t.match(id, /^[0-9a-f]{12}-[0-9a-z]+$/, 'an id is generated when the client sent none');
  t.equal(made.headers['x-request-id'], id, 'the generated id is on the response too');
  const again = await request(`${gw.url}/x`);
  await again.body.dump();
  t.not(again.headers['x-request-id'], id, 'each request gets its own id');
});

t.test('every proxied response names its route and version', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    res.writeHead(204, { 'x-rollgate-version': 'spoofed' });
    res.end();
  });
  const gw = await startGateway(config([{ name: 'embed', match: { pathPrefix: '/v1/embeddings' }, stable: { version: '2026-11-30-a', url: `${up.url}/base/` } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  const r = await request(`${gw.url}/v1/embeddings?model=e5`, { method: 'POST', body: 'x' });
  await r.body.dump();
  t.equal(r.statusCode, 204);
  t.equal(r.headers['x-rollgate-route'], 'embed');
  t.equal(r.headers['x-rollgate-version'], '2026-11-30-a', "the gateway's header wins over the upstream's");
  t.equal(up.seen[0]?.url, '/base/v1/embeddings?model=e5', 'the upstream URL path is prefixed, the query kept');
});
