import t from 'tap';
import { Pool, request } from 'undici';
import { startAdminStack } from './helpers/admin-stack.js';
import { closeAll, config, eventually, seededRng, startGateway, startUpstream } from './helpers/servers.js';

const TOKEN = 'bounded-token';
const CYCLES = 1_000;
const WARM_UP = 50;
const HEAP_BOUND_MB = 15;
const PATH = '/v1/models/sentiment/x';

/** Every series line of a /metrics text (comments and blank lines left out). */
function seriesLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

// Process metrics whose label values come with the process's life, not with deployments: a GC
// kind's histogram (9 lines) appears the first time that kind runs, a handle type while one is open.
const PROCESS_VARIES = /^rollgate_nodejs_(gc_duration_seconds|active_(handles|requests|resources))(_|\{| )/;

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

t.test('1,000 deploy-and-rollback cycles through the admin API leave /metrics and the heap where they were', async (t) => {
  if (global.gc === undefined) {
    t.fail('global.gc is missing: run under tap (node-arg --expose-gc)');
    return;
  }
  const stack = await startAdminStack(t, TOKEN);
  // A slow candidate, so that some retired versions still have a request in flight.
  const slow = await startUpstream((req, res) => {
    req.resume();
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"served":"slow"}'), 60);
  });
  const pool = new Pool(stack.gw.url, { connections: 2 });
  t.teardown(async () => {
    await pool.close();
    await slow.close();
  });
  const api = async (method: 'PUT' | 'POST', path: string, body: unknown): Promise<void> => {
    const r = await request(`${stack.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await r.body.dump();
    if (r.statusCode !== 200) throw new Error(`${method} ${path}: ${r.statusCode}`);
  };
  const get = async (): Promise<{ version: string }> => {
    const r = await pool.request({ path: PATH, method: 'GET' });
    await r.body.dump();
    return { version: String(r.headers['x-rollgate-version']) };
  };
  const scrape = async (): Promise<string> => (await request(`${stack.base}/metrics`)).body.text();
  const routeSeries = (text: string) => seriesLines(text).filter((l) => l.includes('route="'));
  const steadySeries = (text: string) => seriesLines(text).filter((l) => !PROCESS_VARIES.test(l));
  const sentimentVersions = (text: string) =>
    new Set(seriesLines(text).flatMap((l) => /^rollgate_requests_total\{route="sentiment",version="([^"]+)"/.exec(l)?.[1] ?? []));

  let inFlightChecked = 0;
  const cycle = async (i: number): Promise<void> => {
    const version = `c${i}`;
    const viaSlow = i % 50 === 25;
    await api('PUT', '/api/routes/sentiment/candidate', { version, url: viaSlow ? slow.url : stack.third.url, weight: 100 });
    if (i % 10 === 0) {
      for (let k = 0; k < 3; k++) t.equal((await get()).version, version, 'the candidate answers at 100%', { diagnostic: false });
    }
    if (!viaSlow) {
      await api('POST', '/api/routes/sentiment/rollback', {});
      return;
    }
    // Rolled back and replaced while one of its requests is still in flight: its series stay
    // until that request is counted, and go once it is.
    const pending = get();
    await new Promise((r) => setTimeout(r, 10));
    await api('POST', '/api/routes/sentiment/rollback', {});
    await api('PUT', '/api/routes/sentiment/candidate', { version: `${version}-next`, url: stack.third.url, weight: 0 });
    t.ok(sentimentVersions(await scrape()).has(version), `${version}: kept while its request is in flight`, { diagnostic: false });
    t.equal((await pending).version, version);
    const gone = await eventually(async () => !sentimentVersions(await scrape()).has(version), 2_000);
    t.ok(gone, `${version}: forgotten once its request is counted`, { diagnostic: false });
    inFlightChecked++;
    await api('POST', '/api/routes/sentiment/rollback', {});
  };

  const started = performance.now();
  for (let i = 0; i < WARM_UP; i++) await cycle(i);
  const warm = await scrape();
  const heapWarm = await heapAfterGc();
  for (let i = WARM_UP; i < CYCLES; i++) await cycle(i);
  await new Promise((r) => setTimeout(r, 20)); // the last events are published after the change
  const end = await scrape();
  const heapEnd = await heapAfterGc();
  const seconds = (performance.now() - started) / 1000;

  const [nWarm, nEnd] = [seriesLines(warm).length, seriesLines(end).length];
  const [rWarm, rEnd] = [routeSeries(warm).length, routeSeries(end).length];
  const [sWarm, sEnd] = [steadySeries(warm).length, steadySeries(end).length];
  const grownMb = (heapEnd - heapWarm) / 1e6;
  t.comment(`series in /metrics: ${nWarm} after ${WARM_UP} cycles, ${nEnd} after ${CYCLES} (with a route label: ${rWarm} and ${rEnd}; without GC kinds and handle types: ${sWarm} and ${sEnd})`);
  t.comment(`heap after GC: ${(heapWarm / 1e6).toFixed(1)} MB after ${WARM_UP} cycles, ${(heapEnd / 1e6).toFixed(1)} MB after ${CYCLES} (grew ${grownMb.toFixed(1)} MB); ${seconds.toFixed(1)} s in all`);

  t.equal(rEnd, rWarm, 'the series with a route label are as many after 1,000 cycles as after 50');
  const seriesKey = (l: string) => l.slice(0, l.lastIndexOf(' '));
  const before = new Set(steadySeries(warm).map(seriesKey));
  const added = steadySeries(end).map(seriesKey).filter((k) => !before.has(k));
  t.equal(sEnd, sWarm, `so are all series but the GC kinds and handle types${added.length > 0 ? ` (new: ${added.join(', ')})` : ''}`);
  // Those few process series depend on what the process did, not on how many cycles it ran:
  // at most four GC kinds of 9 lines each and a handful of handle types.
  t.ok(Math.abs(nEnd - nWarm) <= 45, `all series: ${nWarm} then ${nEnd}, within 45`);
  t.same([...sentimentVersions(end)].sort(), ['c999', 'v1'], 'only the versions the route has: stable and the rolled-back candidate shown for inspection');
  t.match(end, new RegExp(`^rollgate_rollbacks_total\\{route="sentiment",reason="manual"\\} ${CYCLES + inFlightChecked}$`, 'm'), 'every rollback counted');
  // The route keeps its last 1,000 events (HISTORY_LIMIT) and every revision by design: both are small
  // records, a few hundred KB over these cycles, well inside the bound.
  t.ok(grownMb < HEAP_BOUND_MB, `heap grew ${grownMb.toFixed(1)} MB (bound ${HEAP_BOUND_MB} MB)`);
  t.equal(inFlightChecked, CYCLES / 50, 'retired with a request in flight, checked');
});

t.test("a retired version's series go once its last request is counted: replayed on stable, shadow copies, client aborts, the old stable after a promotion", async (t) => {
  const answer = (status: number | 'hang') =>
    startUpstream((req, res) => {
      req.resume();
      if (status !== 'hang') req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end('{}'));
    });
  const [stable, failing, healthy, hanging] = await Promise.all([answer(200), answer(503), answer(200), answer('hang')]);
  const gw = await startGateway(
    config([
      {
        name: 'm',
        match: { pathPrefix: '/m' },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: failing.url, weight: 100 },
        retryOnStable: true,
        shadow: { mirrorPercent: 100, bake: '1h' },
        timeouts: { response: '5s' },
      },
    ]),
    { rng: seededRng(5) },
  );
  const pool = new Pool(gw.url, { connections: 2 });
  t.teardown(closeAll(pool, gw, stable, failing, healthy, hanging));
  const controller = gw.rollouts.route('m')!;
  const versions = async () =>
    [...new Set(seriesLines(await gw.metrics.registry.metrics()).flatMap((l) => /^rollgate_requests_total\{route="m",version="([^"]+)"/.exec(l)?.[1] ?? []))].sort();
  const send = async (signal?: AbortSignal) => {
    const r = await pool.request({ path: '/m/x', method: 'POST', body: '{}', ...(signal ? { signal } : {}) });
    await r.body.dump();
    return r.statusCode;
  };

  for (let i = 0; i < 3; i++) t.equal(await send(), 200, 'the failing candidate is replayed on stable');
  t.same(await versions(), ['v1', 'v2'], 'both versions counted');
  controller.deploy('v3', healthy.url, 0, 'manual', 'shadow');
  for (let i = 0; i < 3; i++) t.equal(await send(), 200);
  t.ok(await eventually(async () => (await versions()).join() === 'v1,v3'), `the replayed candidate's series are gone, the shadowed one's are there: ${await versions()}`);

  controller.deploy('v4', hanging.url, 100);
  const aborted = send(AbortSignal.timeout(100)).catch((err: Error) => err.name);
  t.ok(await eventually(() => hanging.seen.length === 1), 'a request hangs on v4');
  controller.deploy('v5', healthy.url, 0);
  t.match(await versions(), ['v1', 'v4', 'v5'], 'v4 is kept while its request is in flight');
  t.match(await aborted, /Abort|Timeout/, 'the client gives up');
  t.ok(await eventually(async () => (await versions()).join() === 'v1,v5'), `v4 goes once its aborted request ends: ${await versions()}`);

  controller.promote();
  t.ok(await eventually(async () => (await versions()).join() === 'v5'), `the old stable goes after the promotion: ${await versions()}`);
});
