import t from 'tap';
import { request } from 'undici';
import { startAdminStack } from './helpers/admin-stack.js';
import { INVALID_EVERY, startAnswersStack } from './helpers/answers-stack.js';

const TOKEN = 'test-admin-token';

async function setup(t: { teardown(fn: () => unknown): void }) {
  const stack = await startAdminStack(t, TOKEN);
  const { base } = stack;
  const api = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: string, headers: Record<string, string> = {}) => {
    const r = await request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body }),
    });
    return { status: r.statusCode, json: (await r.body.json()) as Record<string, any> };
  };
  return { base, api, served: async (path: string, n: number) => new Set(await stack.served(path, n)), gw: stack.gw, third: stack.third };
}

t.test('health, readiness and the token', async (t) => {
  const { base, api } = await setup(t);
  t.same(await (await request(`${base}/healthz`)).body.json(), { status: 'ok' }, '/healthz needs no token');
  t.same(await (await request(`${base}/readyz`)).body.json(), { ready: true });
  const none = await request(`${base}/api/routes`);
  t.equal(none.statusCode, 401, 'no token: 401');
  t.match(await none.body.json(), { error: { code: 'ROLLGATE_UNAUTHORIZED' } });
  const wrong = await api('GET', '/api/routes', undefined, { authorization: 'Bearer not-it' });
  t.equal(wrong.status, 401, 'a wrong token: 401');
  t.match(wrong.json, { error: { code: 'ROLLGATE_UNAUTHORIZED', message: /not the admin token/ } });
  const ok = await api('GET', '/api/routes');
  t.equal(ok.status, 200);
  t.same(ok.json.routes.map((r: { name: string }) => r.name), ['sentiment', 'chat', 'plain']);
});

t.test('GET a route: its state as SPEC §6 shapes it', async (t) => {
  const { api, served } = await setup(t);
  await served('/v1/models/sentiment/x', 50);
  const { status, json } = await api('GET', '/api/routes/sentiment');
  t.equal(status, 200);
  t.match(json, {
    name: 'sentiment',
    phase: 'progressing',
    weight: 10,
    stable: { version: 'v1', revision: 1 },
    candidate: { version: 'v2', revision: 2, weight: 10 },
    step: null,
    windows: { stable: { count: Number }, candidate: { count: Number } },
    lastDecision: null,
  });
  t.equal(json.windows.stable.count + json.windows.candidate.count, 50, 'the windows count the traffic');
  t.equal(json.answers, null, 'no checks and no agreement: answers is null');
  const missing = await api('GET', '/api/routes/nope');
  t.equal(missing.status, 404);
  t.match(missing.json, { error: { code: 'ROLLGATE_UNKNOWN_ROUTE', message: 'no route named nope' } });
});

t.test('PUT weight moves the live split; bad input is refused and changes nothing', async (t) => {
  const { api, served } = await setup(t);
  const set = await api('PUT', '/api/routes/sentiment/weight', '{"weight": 100}');
  t.equal(set.status, 200);
  t.equal(set.json.weight, 100);
  t.same([...(await served('/v1/models/sentiment/x', 20))], ['v2'], 'the next requests all go to the candidate');

  const before = (await api('GET', '/api/routes/sentiment')).json;
  const bad: [string, number, string, RegExp][] = [
    ['{"weight": 101}', 400, 'ROLLGATE_BAD_REQUEST', /weight/],
    ['{"weight": -1}', 400, 'ROLLGATE_BAD_REQUEST', /weight/],
    ['{"weight": "ten"}', 400, 'ROLLGATE_BAD_REQUEST', /weight/],
    ['{"weight": 10.555}', 400, 'ROLLGATE_BAD_REQUEST', /two decimals/],
    ['{}', 400, 'ROLLGATE_BAD_REQUEST', /weight/],
    ['{"weight": 5', 400, 'ROLLGATE_BAD_REQUEST', /body/],
    [JSON.stringify({ weight: 5, pad: 'x'.repeat(70 * 1024) }), 413, 'ROLLGATE_BODY_TOO_LARGE', /bytes/],
  ];
  for (const [body, status, code, message] of bad) {
    const r = await api('PUT', '/api/routes/sentiment/weight', body);
    t.equal(r.status, status, `${body.slice(0, 30)}: ${status}`);
    t.match(r.json, { error: { code, message } });
  }
  const unknown = await api('PUT', '/api/routes/nope/weight', '{"weight": 5}');
  t.equal(unknown.status, 404);
  const noCandidate = await api('PUT', '/api/routes/plain/weight', '{"weight": 5}');
  t.equal(noCandidate.status, 409, 'a route without candidate: 409');
  const after = (await api('GET', '/api/routes/sentiment')).json;
  t.same([after.weight, after.phase, after.candidate], [before.weight, before.phase, before.candidate], 'nothing changed');
});

t.test('partial and full rollback', async (t) => {
  const { api, served } = await setup(t);
  await api('PUT', '/api/routes/sentiment/weight', '{"weight": 100}');
  await api('PUT', '/api/routes/chat/weight', '{"weight": 100}');
  const partial = await api('POST', '/api/routes/sentiment/rollback');
  t.equal(partial.status, 200);
  t.match(partial.json, { phase: 'rolled_back', weight: 0, lastDecision: { reason: 'manual' } });
  t.same([...(await served('/v1/models/sentiment/x', 20))], ['v1'], 'the rolled-back route serves stable only');
  t.same([...(await served('/v1/chat/x', 20))], ['v2'], 'the other route is untouched');
  const again = await api('PUT', '/api/routes/sentiment/weight', '{"weight": 50}');
  t.equal(again.status, 409, 'a rolled-back candidate takes no weight until a new one is deployed');
  t.same([...(await served('/v1/models/sentiment/x', 10))], ['v1']);
  const twice = await api('POST', '/api/routes/sentiment/rollback');
  t.equal(twice.status, 409, 'nothing left to roll back: 409');

  const full = await api('POST', '/api/rollback');
  t.equal(full.status, 200);
  t.same(full.json.rolledBack, ['chat'], 'the full rollback rolls back every route that had a live candidate');
  t.same([...(await served('/v1/chat/x', 20))], ['v1']);
});

t.test('deploy a candidate, promote it, and read the history and the event stream', async (t) => {
  const { base, api, served, third } = await setup(t);

  // Follow the event stream while the changes happen.
  const events: { event: { type: string; route: string }; state: { phase: string } }[] = [];
  const stream = await request(`${base}/api/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(stream.headers['content-type'], 'text/event-stream');
  let buffer = '';
  const reading = (async () => {
    for await (const chunk of stream.body) {
      buffer += chunk.toString();
      let i: number;
      while ((i = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data !== undefined) events.push(JSON.parse(data.slice(6)));
      }
    }
  })().catch(() => {});

  const badUrl = await api('PUT', '/api/routes/sentiment/candidate', JSON.stringify({ version: 'v3', url: 'ftp://x' }));
  t.equal(badUrl.status, 400, 'a candidate URL that is not http(s): 400');
  t.match(badUrl.json, { error: { code: 'ROLLGATE_BAD_REQUEST', message: /body.url: must be an http\(s\) URL/ } });
  t.equal((await api('GET', '/api/routes/sentiment')).json.candidate.version, 'v2', 'and nothing changed');

  const deployed = await api('PUT', '/api/routes/sentiment/candidate', JSON.stringify({ version: 'v3', url: third.url, weight: 100 }));
  t.equal(deployed.status, 200);
  t.match(deployed.json, { phase: 'progressing', weight: 100, candidate: { version: 'v3', revision: 3 } });
  t.same([...(await served('/v1/models/sentiment/x', 20))], ['v3'], 'traffic goes to the new candidate');

  const promoted = await api('POST', '/api/routes/sentiment/promote');
  t.equal(promoted.status, 200);
  t.match(promoted.json, { phase: 'stable', weight: 0, stable: { version: 'v3', revision: 3 }, candidate: null });
  t.same([...(await served('/v1/models/sentiment/x', 20))], ['v3'], 'the promoted version serves everything');
  const noCandidate = await api('POST', '/api/routes/sentiment/promote');
  t.equal(noCandidate.status, 409, 'promote with no candidate: 409');

  const history = await api('GET', '/api/routes/sentiment/history');
  t.same(history.json.revisions.map((r: { revision: number; version: string; status: string }) => [r.revision, r.version, r.status]), [
    [3, 'v3', 'stable'],
    [2, 'v2', 'retired'],
    [1, 'v1', 'retired'],
  ], 'revisions, newest first');
  t.same(history.json.events.map((e: { type: string }) => e.type), ['promote', 'deploy'], 'events, newest first');

  const deadline = Date.now() + 2_000;
  while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.same(events.map((e) => [e.event.type, e.event.route, e.state.phase]), [
    ['deploy', 'sentiment', 'progressing'],
    ['promote', 'sentiment', 'stable'],
  ], 'the event stream carried each change with the state after it');
  stream.body.destroy();
  await reading;
});

t.test('rollback to a named version, and pause and resume', async (t) => {
  const { api, served } = await setup(t);
  const unknown = await api('POST', '/api/routes/sentiment/rollback', '{"version": "v9"}');
  t.equal(unknown.status, 404, 'an unknown version: 404');
  t.match(unknown.json, { error: { code: 'ROLLGATE_UNKNOWN_VERSION', message: /no version or revision v9/ } });
  t.equal((await api('GET', '/api/routes/sentiment')).json.phase, 'progressing', 'and nothing changed');

  t.equal((await api('POST', '/api/routes/sentiment/pause')).json.phase, 'paused');
  t.equal((await api('POST', '/api/routes/sentiment/pause')).status, 409, 'pausing twice: 409');
  t.equal((await api('POST', '/api/routes/sentiment/resume')).json.phase, 'progressing');
  t.equal((await api('POST', '/api/routes/plain/resume')).status, 409, 'resume with no candidate: 409');

  await api('POST', '/api/routes/sentiment/promote');
  t.same([...(await served('/v1/models/sentiment/x', 10))], ['v2']);
  const byNumber = await api('POST', '/api/routes/sentiment/rollback', '{"version": 1}');
  t.equal(byNumber.status, 200);
  t.match(byNumber.json, { phase: 'stable', stable: { version: 'v1', revision: 1 }, candidate: null });
  t.same([...(await served('/v1/models/sentiment/x', 10))], ['v1'], 'rolled back to revision 1: v1 serves');
  const byLabel = await api('POST', '/api/routes/sentiment/rollback', '{"version": "v2"}');
  t.match(byLabel.json, { stable: { version: 'v2', revision: 2 } }, 'a label works too');
  t.same([...(await served('/v1/models/sentiment/x', 10))], ['v2']);
});

t.test('/docs serves the OpenAPI description of the admin API', async (t) => {
  const { base } = await setup(t);
  const r = await request(`${base}/docs`);
  t.equal(r.statusCode, 200, 'no token needed');
  const doc = (await r.body.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
  t.match(doc.openapi, /^3\./);
  for (const [path, method] of [
    ['/api/routes', 'get'],
    ['/api/routes/{route}', 'get'],
    ['/api/routes/{route}/candidate', 'put'],
    ['/api/routes/{route}/weight', 'put'],
    ['/api/routes/{route}/promote', 'post'],
    ['/api/routes/{route}/rollback', 'post'],
    ['/api/rollback', 'post'],
    ['/api/routes/{route}/pause', 'post'],
    ['/api/routes/{route}/resume', 'post'],
    ['/api/routes/{route}/history', 'get'],
    ['/api/events', 'get'],
  ] as const) {
    t.ok(doc.paths[path]?.[method] !== undefined, `${method.toUpperCase()} ${path} is described`);
  }
});

t.test('PUT candidate with a strategy: blue-green takes 100%, shadow copies only; an unknown one is refused', async (t) => {
  const { api, served, third } = await setup(t);
  const bad = await api('PUT', '/api/routes/sentiment/candidate', JSON.stringify({ version: 'v3', url: third.url, strategy: 'bigbang' }));
  t.equal(bad.status, 400);
  t.match(bad.json, { error: { code: 'ROLLGATE_BAD_REQUEST', message: /body\.strategy/ } });
  t.equal((await api('GET', '/api/routes/sentiment')).json.candidate.version, 'v2', 'nothing changed');

  const blueGreen = await api('PUT', '/api/routes/sentiment/candidate', JSON.stringify({ version: 'v3', url: third.url, strategy: 'blueGreen' }));
  t.equal(blueGreen.status, 200);
  t.match(blueGreen.json, { phase: 'progressing', strategy: 'blueGreen', weight: 100, candidate: { version: 'v3' }, bake: { stage: 'blueGreen' } });
  t.same([...(await served('/v1/models/sentiment/x', 20))], ['v3'], 'every request on the new version');

  const shadow = await api('PUT', '/api/routes/chat/candidate', JSON.stringify({ version: 'v3', url: third.url, weight: 50, strategy: 'shadow' }));
  t.equal(shadow.status, 200);
  t.match(shadow.json, { phase: 'shadowing', strategy: 'shadow', weight: 0, mirrorPercent: 100, bake: { stage: 'shadow' } });
  t.same([...(await served('/v1/chat/x', 20))], ['v1'], 'clients get stable only');
  const chat = await api('GET', '/api/routes/chat');
  t.equal(chat.json.windows.candidate.count, 20, 'while the candidate is judged on 20 copies');
});

t.test('GET a route with checks of its answers: which checks, what the latency measures, TPOT and the agreement counts', async (t) => {
  const stack = await startAnswersStack(t, TOKEN);
  const get = async (path: string) => {
    const r = await request(`${stack.base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(r.statusCode, 200, path);
    return (await r.body.json()) as Record<string, any>;
  };
  const fresh = await get('/api/routes');
  t.same(
    fresh.routes.map((r: any) => [r.name, r.answers]),
    [
      ['sentiment', { checks: ['json'], latency: 'response', tpotMs: null, agreement: { pointer: '/predictions/0/label', maxDisagreement: 0.5, pairs: 0, disagreements: 0 } }],
      ['chat', { checks: ['llm'], latency: 'ttft', tpotMs: { stable: { '0.5': null, '0.99': null }, candidate: { '0.5': null, '0.99': null } }, agreement: null }],
      ['plain', null],
    ],
    'before any traffic: the checks from the config, nothing counted; a route without checks has none',
  );
  t.same(Object.keys(fresh.routes[0]).slice(-1), ['answers'], 'answers comes last');

  await Promise.all([stack.predict(80), stack.chat(30), stack.plain(10)]);
  await stack.settled();
  const sentiment = await get('/api/routes/sentiment');
  const a = sentiment.answers;
  t.ok(a.agreement.pairs > 0, `pairs compared: ${a.agreement.pairs}`);
  t.ok(a.agreement.disagreements > 0 && a.agreement.disagreements < a.agreement.pairs, `some disagreed: ${a.agreement.disagreements}`);
  const invalid = sentiment.windows.stable.failuresByKind.invalid + sentiment.windows.candidate.failuresByKind.invalid;
  t.ok(invalid >= Math.floor(80 / INVALID_EVERY) - 2, `the windows count the invalid answers by kind: ${invalid}`);
  t.equal(sentiment.phase, 'progressing', 'the loose rules rolled nothing back');

  const chat = await get('/api/routes/chat');
  t.equal(chat.answers.latency, 'ttft');
  for (const role of ['stable', 'candidate']) {
    const p50 = chat.answers.tpotMs[role]['0.5'];
    t.ok(typeof p50 === 'number' && p50 > 0 && p50 < 1_000, `${role}: a TPOT p50 in ms (${p50})`);
  }
  t.equal((await get('/api/routes/plain')).answers, null, 'plain: still null with traffic');
});
