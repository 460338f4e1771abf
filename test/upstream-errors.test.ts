import net from 'node:net';
import t from 'tap';
import { request } from 'undici';
import { mapUpstreamError } from '../src/proxy/upstream-errors.js';
import { config, freePort, startGateway, startUpstream } from './helpers/servers.js';

t.test('upstream errors map to 502 and 504 with a JSON body naming the route', async (t) => {
  const closedPort = await freePort();
  const resetter = await startUpstream((req) => req.socket.destroy());
  const hanging = await startUpstream(() => {});
  // A TCP server that accepts and never speaks HTTP back, then sends garbage.
  const garbage = net.createServer((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')));
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
  const garbagePort = (garbage.address() as net.AddressInfo).port;
  // Answers valid-looking HTTP whose header holds a control character.
  const badHeader = net.createServer((s) =>
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nok')),
  );
  await new Promise<void>((r) => badHeader.listen(0, '127.0.0.1', r));
  const badHeaderPort = (badHeader.address() as net.AddressInfo).port;

  const gw = await startGateway(
    config([
      { name: 'refused', match: { pathPrefix: '/refused' }, stable: { version: 'v1', url: `http://127.0.0.1:${closedPort}` } },
      { name: 'reset', match: { pathPrefix: '/reset' }, stable: { version: 'v1', url: resetter.url } },
      {
        name: 'slow',
        match: { pathPrefix: '/slow' },
        stable: { version: 'v1', url: hanging.url },
        timeouts: { connect: '1s', response: '200ms' },
      },
      { name: 'garbage', match: { pathPrefix: '/garbage' }, stable: { version: 'v1', url: `http://127.0.0.1:${garbagePort}` } },
      { name: 'badheader', match: { pathPrefix: '/badheader' }, stable: { version: 'v1', url: `http://127.0.0.1:${badHeaderPort}` } },
    ]),
  );
  t.teardown(async () => {
    await gw.close();
    await resetter.close();
    await hanging.close();
    garbage.close();
    badHeader.close();
  });

  const cases: [string, number, string, string][] = [
    ['/refused/x', 502, 'ROLLGATE_UPSTREAM_UNAVAILABLE', 'connect'],
    ['/reset/x', 502, 'ROLLGATE_UPSTREAM_UNAVAILABLE', 'reset'],
    ['/slow/x', 504, 'ROLLGATE_UPSTREAM_TIMEOUT', 'timeout'],
    ['/garbage/x', 502, 'ROLLGATE_UPSTREAM_ERROR', 'protocol'],
    ['/badheader/x', 502, 'ROLLGATE_UPSTREAM_ERROR', 'protocol'],
  ];
  for (const [path, status, code, failure] of cases) {
    const r = await request(`${gw.url}${path}`, { method: 'POST', body: '{}' });
    const body = (await r.body.json()) as { error: { code: string; message: string; route: string } };
    const route = path.split('/')[1]!;
    t.equal(r.statusCode, status, `${path}: status ${status}`);
    t.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    t.equal(body.error.code, code, `${path}: code ${code}`);
    t.equal(body.error.route, route, `${path}: the body names the route`);
    t.match(body.error.message, new RegExp(`route ${route}: upstream v1`), `${path}: the message names route and version`);
    t.equal(r.headers['x-rollgate-route'], route);
    t.equal(r.headers['x-rollgate-version'], 'v1');
    const outcome = gw.outcomes.at(-1);
    t.equal(outcome?.failure, failure, `${path}: the outcome records a ${failure} failure`);
  }
  t.equal(hanging.seen.length, 1, 'the timed-out request reached the hanging upstream once');
});

t.test('an upstream that breaks mid-body breaks the client stream and records a stream failure', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const gw = await startGateway(config([{ name: 'r', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  const r = await request(`${gw.url}/x`);
  t.equal(r.statusCode, 200);
  await t.rejects(r.body.text(), 'the client sees the stream break, not a clean end');
  t.equal(gw.outcomes.at(-1)?.failure, 'stream');
  t.equal(gw.outcomes.at(-1)?.status, 200);
});

t.test('the error mapping table', (t) => {
  const table: [string, string, string][] = [
    ['ECONNREFUSED', 'connect', 'ROLLGATE_UPSTREAM_UNAVAILABLE'],
    ['ENOTFOUND', 'connect', 'ROLLGATE_UPSTREAM_UNAVAILABLE'],
    ['EHOSTUNREACH', 'connect', 'ROLLGATE_UPSTREAM_UNAVAILABLE'],
    ['ECONNRESET', 'reset', 'ROLLGATE_UPSTREAM_UNAVAILABLE'],
    ['EPIPE', 'reset', 'ROLLGATE_UPSTREAM_UNAVAILABLE'],
    ['UND_ERR_SOCKET', 'reset', 'ROLLGATE_UPSTREAM_UNAVAILABLE'],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout', 'ROLLGATE_UPSTREAM_TIMEOUT'],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout', 'ROLLGATE_UPSTREAM_TIMEOUT'],
    ['UND_ERR_BODY_TIMEOUT', 'timeout', 'ROLLGATE_UPSTREAM_TIMEOUT'],
    ['HPE_INVALID_CONSTANT', 'protocol', 'ROLLGATE_UPSTREAM_ERROR'],
    ['ERR_HTTP2_HEADER_SINGLE_VALUE', 'protocol', 'ROLLGATE_UPSTREAM_ERROR'],
    ['SOMETHING_ELSE', 'reset', 'ROLLGATE_UPSTREAM_UNAVAILABLE'],
  ];
  for (const [code, failure, errorCode] of table) {
    const m = mapUpstreamError(Object.assign(new Error(code), { code }));
    t.same([m.failure, m.code], [failure, errorCode], code);
  }
  t.same(mapUpstreamError(new Error('no code')).code, 'ROLLGATE_UPSTREAM_UNAVAILABLE');
  t.same(mapUpstreamError(null).code, 'ROLLGATE_UPSTREAM_UNAVAILABLE');
  t.end();
});
