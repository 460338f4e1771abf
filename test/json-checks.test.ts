import t from 'tap';
import { Pool } from 'undici';
import { config, startGateway, startUpstream, type TestGateway } from './helpers/servers.js';

// checks.json (SPEC §9): a 2xx answer that is not JSON, or not the schema's, is a failure of
// kind `invalid`, judged like any failure.

const SCHEMA = {
  type: 'object',
  required: ['predictions'],
  properties: { predictions: { type: 'array', items: { type: 'object', required: ['label'] } } },
};

/** A model server whose every `badEvery`-th answer is `{"predictions": "oops"}` (0: never). */
function model(label: string, badEvery: number) {
  let n = 0;
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      const body = badEvery > 0 && n % badEvery === 0 ? '{"predictions": "oops"}' : JSON.stringify({ predictions: [{ label: 'positive', score: 0.9 }], model: label });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
}

function route(stable: string, candidate: string, extra: Record<string, unknown> = {}, json: Record<string, unknown> = {}) {
  return {
    name: 'sentiment',
    match: { pathPrefix: '/v1/models/sentiment' },
    stable: { version: 'v1', url: stable },
    candidate: { version: 'v2', url: candidate, weight: 50 },
    checks: { json: { schema: SCHEMA, ...json } },
    ...extra,
  };
}

/** Sends requests until the route is rolled back or `max` were sent; returns every body the client got. */
async function drive(gw: TestGateway, max: number, after = 0): Promise<{ bodies: string[]; versions: string[] }> {
  const pool = new Pool(gw.url, { connections: 16 });
  const bodies: string[] = [];
  const versions: string[] = [];
  let sent = 0;
  let extra = -1;
  const done = () => {
    if (extra < 0 && gw.rollouts.route('sentiment')?.state().phase === 'rolled_back') extra = after;
    return extra === 0 || sent >= max;
  };
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (!done()) {
        sent++;
        if (extra > 0) extra--;
        const r = await pool.request({ path: '/v1/models/sentiment:predict', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"instances":["good"]}' });
        bodies.push(await r.body.text());
        versions.push(String(r.headers['x-rollgate-version']));
      }
    }),
  );
  await pool.close();
  return { bodies, versions };
}

t.test('a candidate answering {"predictions": "oops"} in 5% of answers is rolled back for invalid, the sentence naming the schema path', async (t) => {
  const stable = await model('v1', 0);
  const candidate = await model('v2', 20);
  const gw = await startGateway(config([route(stable.url, candidate.url)]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const { bodies } = await drive(gw, 6_000);
  const state = gw.rollouts.route('sentiment')!.state();
  t.equal(state.phase, 'rolled_back');
  t.equal(state.lastDecision?.reason, 'invalid', String(state.lastDecision?.message));
  t.match(state.lastDecision?.message, /failed the JSON check \(\/predictions must be array\)/);
  t.equal(state.lastDecision?.evidence?.check, '/predictions must be array');
  t.ok(bodies.includes('{"predictions": "oops"}'), 'without holdForReplay the invalid answers reach the client as they are');
  const metrics = await gw.metrics.registry.metrics();
  t.match(metrics, /rollgate_response_checks_total\{route="sentiment",version="v2",check="json",outcome="invalid"\} [1-9]/);
  t.match(metrics, /rollgate_response_checks_total\{route="sentiment",version="v1",check="json",outcome="invalid"\} 0/);
  t.match(metrics, /rollgate_rollbacks_total\{route="sentiment",reason="invalid"\} 1/);
});

t.test('with holdForReplay, clients receive only valid answers over the whole run, and the candidate is still rolled back', async (t) => {
  const stable = await model('v1', 0);
  const candidate = await model('v2', 20);
  const gw = await startGateway(config([route(stable.url, candidate.url, { retryOnStable: true }, { holdForReplay: true })]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const { bodies, versions } = await drive(gw, 6_000, 200);
  t.equal(gw.rollouts.route('sentiment')!.state().lastDecision?.reason, 'invalid');
  const invalid = bodies.filter((b) => !Array.isArray((JSON.parse(b) as { predictions?: unknown }).predictions));
  t.equal(invalid.length, 0, `${bodies.length} answers, none invalid`);
  t.ok(versions.includes('v2'), 'valid candidate answers reached clients');
  const replayed = gw.outcomes.filter((o) => o.role === 'candidate' && o.failure === 'invalid' && o.replayed).length;
  t.ok(replayed > 0, `${replayed} invalid candidate answers were replaced by stable's`);
});

t.test('answers over maxBytes are not checked and are counted; non-JSON answers are invalid', async (t) => {
  const big = JSON.stringify({ predictions: 'x'.repeat(3_000) });
  const stable = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      const kind = req.headers['x-kind'];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(kind === 'big' ? big : kind === 'broken' ? '{"predictions": [' : '{"predictions": []}');
    });
  });
  const gw = await startGateway(config([{ ...route(stable.url, stable.url, {}, { maxBytes: 1_024 }), candidate: undefined, rollback: { consecutiveFailures: 100 } }]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
  });
  for (const kind of ['big', 'broken', 'ok']) {
    const r = await fetch(`${gw.url}/v1/models/sentiment:predict`, { method: 'POST', headers: { 'x-kind': kind }, body: '{}' });
    t.equal(r.status, 200, `${kind}: the client gets the answer as it came`);
    await r.text();
  }
  const metrics = await gw.metrics.registry.metrics();
  for (const outcome of ['unchecked', 'invalid', 'pass']) t.match(metrics, new RegExp(`rollgate_response_checks_total\\{route="sentiment",version="v1",check="json",outcome="${outcome}"\\} 1`));
});
