import { request as httpRequest } from 'node:http';
import t from 'tap';
import { request } from 'undici';
import { startAdminStack } from './helpers/admin-stack.js';

// curl scripts send `content-type: application/json` on every call, also on the POSTs that take
// no body; the admin plane takes those as no body, and still refuses malformed JSON.

const TOKEN = 'empty-bodies-token';

async function setup(t: { teardown(fn: () => unknown): void }) {
  const stack = await startAdminStack(t, TOKEN);
  const auth = { authorization: `Bearer ${TOKEN}` };
  /** A POST with `content-type: application/json` and `body` (none when undefined), sent with undici. */
  const post = async (path: string, body?: string, contentType = 'application/json') => {
    const r = await request(`${stack.base}${path}`, { method: 'POST', headers: { ...auth, 'content-type': contentType }, ...(body === undefined ? {} : { body }) });
    return { status: r.statusCode, json: (await r.body.json()) as Record<string, any> };
  };
  const get = async (path: string) => (await (await request(`${stack.base}${path}`, { headers: auth })).body.json()) as Record<string, any>;
  return { ...stack, auth, post, get };
}

t.test('POSTs that take no body answer 200 to an empty JSON body, and do their work', async (t) => {
  const { post, get, base, auth, third } = await setup(t);

  const paused = await post('/api/routes/sentiment/pause');
  t.equal(paused.status, 200, 'pause: 200');
  t.equal((await get('/api/routes/sentiment')).phase, 'paused', 'the route is paused');

  // With a charset, and through fetch, which sends content-length: 0.
  const resumed = await fetch(`${base}/api/routes/sentiment/resume`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json; charset=utf-8' }, body: '' });
  t.equal(resumed.status, 200, 'resume: 200');
  t.equal((await get('/api/routes/sentiment')).phase, 'progressing', 'the route progresses again');

  const promoted = await post('/api/routes/sentiment/promote');
  t.equal(promoted.status, 200, 'promote: 200');
  t.match(await get('/api/routes/sentiment'), { phase: 'stable', stable: { version: 'v2' }, candidate: null }, 'the candidate is stable');

  const rolledBack = await post('/api/routes/chat/rollback');
  t.equal(rolledBack.status, 200, 'rollback without a version: 200');
  t.match(await get('/api/routes/chat'), { phase: 'rolled_back', weight: 0, lastDecision: { reason: 'manual' } }, 'the route is rolled back');

  const deployed = await request(`${base}/api/routes/sentiment/candidate`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ version: 'v3', url: third.url, weight: 20 }),
  });
  t.equal(deployed.statusCode, 200);
  await deployed.body.dump();
  const full = await post('/api/rollback');
  t.equal(full.status, 200, 'full rollback: 200');
  t.same(full.json.rolledBack, ['sentiment'], 'every route with a live candidate');
  t.match(await get('/api/routes/sentiment'), { phase: 'rolled_back', weight: 0, candidate: { version: 'v3' } });
});

t.test('a POST with no content-length at all (chunked, empty) is no body either', async (t) => {
  const { base, auth, get } = await setup(t);
  const url = new URL(`${base}/api/routes/sentiment/pause`);
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(status, 200);
  t.equal((await get('/api/routes/sentiment')).phase, 'paused');
});

t.test('malformed JSON is still a 400 and changes nothing; a body the route needs is still needed', async (t) => {
  const { post, get, base, auth } = await setup(t);
  const before = await get('/api/routes');
  for (const [path, body] of [
    ['/api/routes/sentiment/promote', '{'],
    ['/api/routes/sentiment/pause', 'not json'],
    ['/api/routes/sentiment/rollback', '{"version":'],
    ['/api/rollback', '[1,'],
  ] as const) {
    const r = await post(path, body);
    t.equal(r.status, 400, `${path} ${body}: 400`);
    t.match(r.json, { error: { code: 'ROLLGATE_BAD_REQUEST', message: /^body: / } });
  }
  const weight = await request(`${base}/api/routes/sentiment/weight`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' } });
  t.equal(weight.statusCode, 400, 'PUT weight with an empty body: 400');
  t.match(await weight.body.json(), { error: { code: 'ROLLGATE_BAD_REQUEST', message: /^body/ } });
  const after = await get('/api/routes');
  const shape = (s: Record<string, any>) => s.routes.map((r: Record<string, any>) => [r.name, r.phase, r.weight, r.stable.version, r.candidate?.version ?? null]);
  t.same(shape(after), shape(before), 'nothing changed');
});
