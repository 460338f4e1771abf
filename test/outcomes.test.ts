import t from 'tap';
import { request } from 'undici';
import { config, startGateway, startUpstream } from './helpers/servers.js';

t.test('every finished request produces one outcome, timed on the gateway clock', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
    // Head after 60 ms, body end 60 ms later: time to first byte and latency differ.
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.write('a');
      setTimeout(() => res.end('b'), 60);
    }, 60);
  });
  const gw = await startGateway(config([{ name: 'm', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  for (const status of [200, 404, 503]) {
    const r = await request(`${gw.url}/p?status=${status}`);
    await r.body.dump();
  }
  t.equal(gw.outcomes.length, 3, 'one outcome per request');
  const [ok, notFound, unavailable] = gw.outcomes;
  t.match(ok, { route: 'm', role: 'stable', version: 'v1', status: 200, failure: 'none' });
  t.match(notFound, { status: 404, failure: 'none' }, "a 4xx is the client's fault, not a failure");
  t.match(unavailable, { status: 503, failure: 'status' }, 'a 5xx is a failure of the version');
  for (const o of gw.outcomes) {
    t.ok(o.ttfbMs >= 55, `time to first byte ${o.ttfbMs.toFixed(1)} ms covers the upstream's 60 ms wait`);
    // Load can only delay what the gateway sees, so lower bounds hold however busy the machine is.
    t.ok(o.latencyMs >= 115 && o.latencyMs > o.ttfbMs, `latency ${o.latencyMs.toFixed(1)} ms covers the head's 60 ms and the body's 60 ms more`);
  }
});

t.test('an outcome says whether the answer streams', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    if (req.url === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      setTimeout(() => res.end('data: 2\n\n'), 50);
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[1');
      setTimeout(() => res.end(',2]'), 50);
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
    }
  });
  const gw = await startGateway(config([{ name: 'm', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  for (const path of ['/sse', '/chunked', '/whole']) {
    const r = await request(`${gw.url}${path}`);
    await r.body.dump();
  }
  const [sse, chunked, whole] = gw.outcomes;
  t.equal(sse?.streaming, true, 'an event stream streams');
  t.ok((sse?.latencyMs ?? 0) >= 45 && (sse?.ttfbMs ?? Infinity) < (sse?.latencyMs ?? 0), 'its first byte came before its end, 50 ms later');
  t.equal(chunked?.streaming, true, 'a chunked answer streams');
  t.equal(whole?.streaming, false, 'an answer with content-length does not');
});
