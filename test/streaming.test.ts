import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import t from 'tap';
import { peakGrowth } from './helpers/memory.js';
import { request } from 'undici';
import { config, rawExchange, startGateway, startUpstream } from './helpers/servers.js';

const MB = 1024 * 1024;
const TOTAL = 50 * MB;
const CHUNK = 64 * 1024;

/** A deterministic 50 MB stream made on the fly, so the test itself holds no big buffer. */
function pattern(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, total - sent);
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i += 4) b.writeUInt32LE((sent + i) >>> 0, i);
      sent += n;
      this.push(b);
    },
  });
}

async function sha256(stream: AsyncIterable<Buffer>): Promise<{ bytes: number; sha: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c);
    bytes += c.length;
  }
  return { bytes, sha: h.digest('hex') };
}

t.test('50 MB up and 50 MB down pass through byte-exact while memory stays flat', async (t) => {
  const up = await startUpstream((req, res) => {
    if (req.method === 'POST') {
      void sha256(req).then((r) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(r));
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
    pattern(TOTAL).pipe(res);
  });
  const gw = await startGateway(config([{ name: 'blob', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  const expected = await sha256(pattern(TOTAL));

  let uploaded: { bytes: number; sha: string } | undefined;
  const upGrowth = await peakGrowth(
    (async () => {
      const r = await request(`${gw.url}/upload`, {
        method: 'POST',
        body: pattern(TOTAL),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) },
      });
      uploaded = (await r.body.json()) as { bytes: number; sha: string };
    })(),
  );
  t.same(uploaded, expected, 'the upstream received the 50 MB upload byte-exact');
  t.ok(upGrowth < 20 * MB, `memory grew by ${(upGrowth / MB).toFixed(1)} MB during the upload (< 20 MB)`);

  let downloaded: { bytes: number; sha: string } | undefined;
  const downGrowth = await peakGrowth(
    (async () => {
      const r = await request(`${gw.url}/download`);
      downloaded = await sha256(r.body);
    })(),
  );
  t.same(downloaded, expected, 'the client received the 50 MB download byte-exact');
  t.ok(downGrowth < 20 * MB, `memory grew by ${(downGrowth / MB).toFixed(1)} MB during the download (< 20 MB)`);

  // Chunked upload (no content-length) streams too.
  const chunked = await request(`${gw.url}/upload`, { method: 'POST', body: pattern(3 * MB) });
  t.same(await chunked.body.json(), await sha256(pattern(3 * MB)), 'a chunked upload passes through byte-exact');
});

t.test('server-sent events reach the client as the upstream writes them', async (t) => {
  let secondWritten = false;
  let firstReceived: () => void = () => {};
  const clientHasFirst = new Promise<void>((resolve) => (firstReceived = resolve));
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: {"token":"Hello"}\n\n');
    // The second event waits until the client has the first (or 3 s, so a buffering proxy fails the test).
    const fallback = setTimeout(firstReceived, 3_000);
    void clientHasFirst.then(() => {
      clearTimeout(fallback);
      setTimeout(() => {
        secondWritten = true;
        res.write('data: {"token":" world"}\n\n');
        setTimeout(() => res.end('data: [DONE]\n\n'), 100);
      }, 100);
    });
  });
  const gw = await startGateway(config([{ name: 'chat', match: { pathPrefix: '/v1/chat/completions' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });

  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: '{"stream":true}' });
  t.equal(r.headers['content-type'], 'text/event-stream');
  t.equal(r.headers['x-rollgate-version'], 'v1');
  let text = '';
  let secondWrittenWhenFirstArrived: boolean | undefined;
  for await (const chunk of r.body) {
    text += chunk.toString();
    if (secondWrittenWhenFirstArrived === undefined && text.includes('Hello')) {
      secondWrittenWhenFirstArrived = secondWritten;
      firstReceived();
    }
  }
  t.equal(secondWrittenWhenFirstArrived, false, 'the client had the first event before the upstream wrote the second');
  t.equal(text, 'data: {"token":"Hello"}\n\ndata: {"token":" world"}\n\ndata: [DONE]\n\n', 'all events arrived in order');
});

t.test('a chunked request body still arriving streams to the upstream as it comes; one sent whole goes with its length', async (t) => {
  const heads: { te: unknown; length: unknown }[] = [];
  const up = await startUpstream((req, res) => {
    heads.push({ te: req.headers['transfer-encoding'], length: req.headers['content-length'] });
    res.writeHead(200, { 'content-type': 'text/plain' });
    // Echo each piece as it arrives: a gateway that waited for the whole body would stall the client below.
    req.on('data', (c: Buffer) => res.write(`got ${c.toString()};`));
    req.on('end', () => res.end('end'));
  });
  const gw = await startGateway(config([{ name: 'up', match: { pathPrefix: '/v1' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  // An interactive upload: the second piece is sent only once the upstream has echoed the first.
  let echoed: () => void = () => {};
  const firstEchoed = new Promise<void>((resolve) => (echoed = resolve));
  const body = Readable.from(
    (async function* () {
      yield Buffer.from('one');
      await firstEchoed;
      yield Buffer.from('two');
    })(),
  );
  const r = await request(`${gw.url}/v1/upload`, { method: 'POST', body });
  let text = '';
  for await (const chunk of r.body) {
    text += (chunk as Buffer).toString();
    if (text.includes('got one;')) echoed();
  }
  t.equal(text, 'got one;got two;end', 'the upstream got the first piece before the client sent the second');
  t.same(heads[0], { te: 'chunked', length: undefined }, 'still chunked to the upstream');

  // A chunked body that came whole with its head is sent with its length.
  const whole = await rawExchange(gw.port, 'POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 5_000);
  t.match(whole, /^HTTP\/1\.1 200 [\s\S]*got hello;[\s\S]*end/, 'the upstream got the body');
  t.same(heads[1], { te: undefined, length: '5' }, 'with content-length: 5 instead of chunked');
});
