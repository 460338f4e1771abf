import t from 'tap';
import { closeAll, config, rawExchange, startGateway, startUpstream } from './helpers/servers.js';

// RFC 9112 §6: the requests that two parsers could read differently. Each is refused with a 400
// (or, where the RFC allows reading it one way only, handled so), nothing of a refused request
// reaches the upstream, and the next client is served. Raw sockets on loopback.

const H = 'POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1\r\n';

const REFUSED: [string, string][] = [
  ['Content-Length with Transfer-Encoding', `${H}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: ,chunked', `${H}transfer-encoding: ,chunked\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: chunked, identity (chunked not last)', `${H}transfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: identity', `${H}transfer-encoding: identity\r\n\r\nabcd`],
  ['Transfer-Encoding: xchunked', `${H}transfer-encoding: xchunked\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: chunked twice in one header', `${H}transfer-encoding: chunked, chunked\r\n\r\n0\r\n\r\n`],
  ['Content-Length: +1', `${H}content-length: +1\r\n\r\na`],
  ['Content-Length: 0x10', `${H}content-length: 0x10\r\n\r\n0123456789abcdef`],
  ['Content-Length: 1Z', `${H}content-length: 1Z\r\n\r\na`],
  ['Content-Length: -1', `${H}content-length: -1\r\n\r\n`],
  ['two different Content-Lengths', `${H}content-length: 1\r\ncontent-length: 2\r\n\r\nab`],
  ['Content-Length: 1, 2', `${H}content-length: 1, 2\r\n\r\nab`],
  ['obs-fold', `${H}x-a: one\r\n two\r\ncontent-length: 0\r\n\r\n`],
  ['a bare LF inside a header value', `${H}x-a: one\ntwo: x\r\ncontent-length: 0\r\n\r\n`],
  ['a bare CR in a header value', `${H}x-a: one\rtwo\r\ncontent-length: 0\r\n\r\n`],
  ['NUL in a header value', `${H}x-a: one\u0000two\r\ncontent-length: 0\r\n\r\n`],
  ['a control character in a header value', `${H}x-a: one\u0001two\r\ncontent-length: 0\r\n\r\n`],
  ['an empty header name', `${H}: value\r\ncontent-length: 0\r\n\r\n`],
  ['a space before the colon', `${H}content-length : 0\r\n\r\n`],
  ['a bad chunk size', `${H}transfer-encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n`],
  ['a chunk size with a sign', `${H}transfer-encoding: chunked\r\n\r\n+2\r\nab\r\n0\r\n\r\n`],
  ['chunk data longer than its size', `${H}transfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n`],
  ['a chunk size past 64 bits', `${H}transfer-encoding: chunked\r\n\r\n10000000000000001\r\nab\r\n0\r\n\r\n`],
  ['a chunk extension with a bare CR', `${H}transfer-encoding: chunked\r\n\r\n2;a=b\rc\r\nab\r\n0\r\n\r\n`],
  ['a request line with a bare LF', 'POST /v1/x HTTP/1.1\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n'],
];

/** An upstream recording each request it got (method, path, body) and a gateway in front of it. */
async function stack(t: { teardown(fn: () => unknown): void }) {
  const bodies: string[] = [];
  const up = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('latin1')));
    req.on('end', () => {
      bodies.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  const gw = await startGateway(config([{ name: 'm', match: { pathPrefix: '/v1' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(closeAll(gw, up));
  return { up, gw, bodies };
}

t.test('ambiguous framing is refused with 400; nothing reaches the upstream; the next client is served', async (t) => {
  const { up, gw } = await stack(t);
  for (const [name, payload] of REFUSED) {
    const before = up.seen.length;
    const answer = await rawExchange(gw.port, payload, 2_000);
    t.match(answer, /^HTTP\/1\.1 400 /, `${name}: 400`);
    t.equal(up.seen.length, before, `${name}: the upstream saw nothing`);
    const next = await fetch(`${gw.url}/v1/next`, { method: 'POST', body: 'fine' });
    t.equal(next.status, 200, `${name}: the next client is served`);
    await next.text();
  }
  t.equal(up.seen.length, REFUSED.length, 'the upstream saw only the clients that came after');
});

t.test('a body longer than its Content-Length is the next request, parsed on its own', async (t) => {
  const { gw, bodies } = await stack(t);
  const answer = await rawExchange(gw.port, `${H}content-length: 4\r\n\r\nabcdGET /v1/second HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`, 3_000);
  t.equal(answer.match(/HTTP\/1\.1 200 /g)?.length, 2, 'two answers on the connection');
  t.same([...bodies].sort(), ['GET /v1/second ', 'POST /v1/x abcd'], 'the upstream got the body of exactly its length, and the second request on its own');
});
