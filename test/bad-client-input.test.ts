import t from 'tap';
import { request } from 'undici';
import { config, eventually, rawExchange, startGateway, startLabelled } from './helpers/servers.js';

t.test('bad client input gets a clear answer, is not forwarded, and leaves the gateway serving', async (t) => {
  const up = await startLabelled('v1');
  const gw = await startGateway(config([{ name: 'sentiment', match: { pathPrefix: '/v1/models/sentiment' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });

  const malformed = [
    'GARBAGE\r\n\r\n',
    'GET /v1/models/sentiment HTTP/1.1\r\nHost x\r\n\r\n',
    'GET /v1/models/sentiment HTTP/9.9\r\nHost: x\r\n\r\n',
    'POST /v1/models/sentiment HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello',
    'POST /v1/models/sentiment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n',
    'GET /v1/models/sentiment HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n',
  ];
  for (const m of malformed) {
    const answer = await rawExchange(gw.port, m);
    t.match(answer, /^HTTP\/1\.1 400 /, `malformed request ${JSON.stringify(m.slice(0, 40))} gets 400`);
  }
  t.equal(up.seen.length, 0, 'no malformed request was forwarded');

  const big = await rawExchange(gw.port, `GET /v1/models/sentiment HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
  t.match(big, /^HTTP\/1\.1 431 /, 'request headers over 16 KB get 431');
  t.equal(up.seen.length, 0, 'the oversized request was not forwarded');
  t.ok(await eventually(async () => (await gw.openConnections()) === 0), 'no socket from the bad requests stays open');

  const unmatched = await request(`${gw.url}/v1/models/unknown/predict?x=1`);
  t.equal(unmatched.statusCode, 404, 'an unmatched path gets 404');
  t.same(await unmatched.body.json(), {
    error: { code: 'ROLLGATE_NO_ROUTE', message: 'no route matches path /v1/models/unknown/predict' },
  });

  const ok = await request(`${gw.url}/v1/models/sentiment/predict`);
  t.equal(ok.statusCode, 200, 'the gateway still serves after all of it');
  await ok.body.dump();
});
