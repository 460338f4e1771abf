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
    t.ok(o.latencyMs >= o.ttfbMs + 55, `latency ${o.latencyMs.toFixed(1)} ms covers the body's 60 ms more`);
  }
});
