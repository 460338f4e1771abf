import fc from 'fast-check';
import t from 'tap';
import { request } from 'undici';
import { VERSION_LABEL } from '../src/shapes.js';
import { startAdminStack } from './helpers/admin-stack.js';
import { closeAll, config, eventually, rawExchange, startGateway, startLabelled, startUpstream } from './helpers/servers.js';
import {
  bodyArb,
  contentTypeArb,
  describe,
  errorShapeProblem,
  extraHeadersArb,
  framingArb,
  fuzzParams,
  methodArb,
  pathVariantArb,
  percentEncoded,
  weirdNumberArb,
  wildPathArb,
} from './helpers/fuzz.js';
import { rawRequest, requestBytes, type Framing, type RawAnswer, type RawRequest } from './helpers/raw-http.js';

/*
 * Generated requests to the admin API of a real gateway: methods, paths (the API's own, with
 * generated route names, spelled in ways a router could read differently, and arbitrary ones),
 * headers (the token or not, content types, odd framing) and bodies near the API's schemas.
 * Properties: an answer within the time, never a 5xx, errors in the project's shape, a refused
 * call changes nothing, and nothing without the token reads or changes a route.
 */

const TOKEN = 'fuzz-admin-token';
const BEARER = `Bearer ${TOKEN}`;
/** Requests wait at most this long for their answer: a hang fails the property, it does not stall the test. */
const ANSWER_MS = 5_000;

/** Route names: the two the calls may change, others that look like names, and odd ones. */
const routeNameArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('sentiment', 'chat') },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/) },
  { weight: 1, arbitrary: fc.array(fc.boolean(), { minLength: 1, maxLength: 9 }).map((pick) => percentEncoded('sentiment', pick)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12, unit: 'grapheme' }).map((s) => encodeURIComponent(s)) },
  { weight: 1, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2F', 'sentiment%2Fweight', '%00', '%20', 'SENTIMENT', 'sentiment;x', '\u00e9', 'plain%') },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 400 }).map((n) => 'a'.repeat(n)) },
);

const labelArb = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(VERSION_LABEL) },
  { weight: 2, arbitrary: fc.constantFrom('v1', 'v2', 'v3', 'stable', 'Candidate', '', 'a'.repeat(65), 'v 3', 'v3\n', '-v3') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

function urlArb(live: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(live) },
    { weight: 2, arbitrary: fc.webUrl({ validSchemes: ['http', 'https'] }) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'ftp://127.0.0.1:1',
        'http:///x',
        'http://u:p@127.0.0.1:1',
        'http://127.0.0.1:1/?q=1',
        'http://127.0.0.1:1/#f',
        'http://127.0.0.1:99999',
        'http://[::1]:1',
        'http://[::1',
        'http://ex ample',
        'http://\u00e9.example',
        'javascript:alert(1)',
        'HTTP://127.0.0.1:1/Base/',
        `http://127.0.0.1/${'p'.repeat(3_000)}`,
        '',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  );
}

/** Extra keys beside a schema's own, sometimes. */
const extraKeysArb = fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }) });
const withExtra = (arb: fc.Arbitrary<Record<string, unknown>>) => fc.tuple(arb, extraKeysArb).map(([own, extra]) => ({ ...extra, ...own }));

const weightBodyArb = withExtra(fc.record({ weight: weirdNumberArb }, { requiredKeys: [] }));

function candidateBodyArb(live: string) {
  return withExtra(
    fc.record(
      {
        version: labelArb,
        url: urlArb(live),
        weight: weirdNumberArb,
        strategy: fc.oneof(fc.constantFrom('canary', 'blueGreen', 'shadow'), fc.constantFrom('Canary', 'linear', ''), fc.jsonValue({ maxDepth: 1 })),
        data: fc.oneof(fc.record({ snapshot: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:@/+-]{1,20}$/), fc.string({ maxLength: 10 })) }), fc.jsonValue({ maxDepth: 2 })),
      },
      { requiredKeys: [] },
    ),
  );
}

const rollbackBodyArb = fc.oneof(
  fc.constant(null),
  withExtra(
    fc.record(
      { version: fc.oneof(fc.integer({ min: -2, max: 6 }), labelArb, fc.double(), fc.constantFrom(2 ** 53, 1e21, 0.5, '1', '99999999999999999999')) },
      { requiredKeys: [] },
    ),
  ),
);

/** What a body-less call receives: usually nothing, sometimes a body anyway. */
const noBodyArb = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });

interface Call {
  method: string;
  path: string;
  body: fc.Arbitrary<unknown>;
}

function callArb(live: string): fc.Arbitrary<Call> {
  const onRoute = (method: string, verb: string, body: fc.Arbitrary<unknown>) => routeNameArb.map((name): Call => ({ method, path: `/api/routes/${name}${verb}`, body }));
  const fixed = (method: string, path: string): fc.Arbitrary<Call> => fc.constant({ method, path, body: noBodyArb });
  return fc.oneof(
    { weight: 2, arbitrary: onRoute('GET', '', noBodyArb) },
    { weight: 5, arbitrary: onRoute('PUT', '/weight', weightBodyArb) },
    { weight: 5, arbitrary: onRoute('PUT', '/candidate', candidateBodyArb(live)) },
    { weight: 3, arbitrary: onRoute('POST', '/rollback', rollbackBodyArb) },
    { weight: 3, arbitrary: fc.constantFrom('/promote', '/pause', '/resume', '/history', '/nope').chain((verb) => onRoute(verb === '/history' ? 'GET' : 'POST', verb, noBodyArb)) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fixed('GET', '/api/routes'),
        fixed('POST', '/api/rollback'),
        fixed('GET', '/api/events'),
        fixed('GET', '/api/events?stats=true'),
        fixed('GET', '/api/events?stats=maybe&x=1'),
        fixed('GET', '/healthz'),
        fixed('GET', '/readyz'),
        fixed('GET', '/metrics'),
        fixed('GET', '/docs'),
        fixed('GET', '/'),
      ),
    },
    { weight: 2, arbitrary: wildPathArb.map((path): Call => ({ method: 'GET', path, body: fc.jsonValue({ maxDepth: 2 }) })) },
  );
}

/** The Authorization headers sent: the token (usually), none, a wrong one, or two. */
const authArb: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<string[]>([BEARER]) },
  { weight: 2, arbitrary: fc.constant<string[]>([]) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('Bearer wrong', `bearer ${TOKEN}`, 'Bearer', 'Bearer ', `Bearer  ${TOKEN}`, TOKEN, `${BEARER}x`, `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, `Bearer ${TOKEN.toUpperCase()}`, '')
      .map((v): string[] => [v]),
  },
  { weight: 1, arbitrary: fc.constantFrom<string[]>(['Bearer wrong', BEARER], [BEARER, 'Bearer wrong']) },
);

interface AdminRequest extends RawRequest {
  /** Whether the first Authorization header carries the token, as Node reads it (trimmed). */
  authorized: boolean;
}

function adminRequestArb(live: string): fc.Arbitrary<AdminRequest> {
  return callArb(live).chain((call) =>
    fc
      .record({
        method: fc.oneof({ weight: 6, arbitrary: fc.constant(call.method) }, { weight: 1, arbitrary: methodArb }),
        target: pathVariantArb(call.path),
        auth: authArb,
        contentType: contentTypeArb,
        extra: extraHeadersArb,
        value: call.body,
        noHost: fc.oneof({ weight: 20, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      })
      .chain((r) =>
        (r.value === undefined ? fc.constant(Buffer.alloc(0)) : bodyArb(fc.constant(r.value))).chain((body) =>
          framingArb(body.length).map((framing: Framing): AdminRequest => {
            const headers: [string, string][] = r.auth.map((v) => ['Authorization', v]);
            if (r.contentType !== null && (body.length > 0 || r.value !== undefined)) headers.push(['Content-Type', r.contentType]);
            headers.push(...r.extra);
            const first = headers.find(([n]) => n.toLowerCase() === 'authorization');
            return { method: r.method, target: r.target, headers, body, framing, noHost: r.noHost, authorized: first !== undefined && first[1].trim() === BEARER };
          }),
        ),
      ),
  );
}

/** Where two snapshots first differ, with some context. */
function difference(before: string, after: string): string {
  let i = 0;
  while (i < before.length && before[i] === after[i]) i++;
  const from = Math.max(0, i - 150);
  return `\nbefore …${before.slice(from, i + 150)}\nafter  …${after.slice(from, i + 150)}`;
}

/** The path a target names, decoded as a router would; null when it cannot be decoded. */
function decodedPath(target: string): string | null {
  let path = target;
  if (/^https?:\/\//i.test(path)) {
    try {
      path = new URL(path).pathname;
    } catch {
      return null;
    }
  }
  path = path.split(/[?#]/)[0] ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return null;
  }
}

/**
 * What an answer to a request without the token must not show: a route's state, history or
 * events (only the status page, health, readiness, metrics and /docs are open), or, under /api
 * (as the router decodes the path), a sign that a handler or its validation ran (a route's or
 * version's 404, a 409, a field's 400). Only the token check, or a refusal before any route (not
 * HTTP, a bad URL, no such endpoint), may answer those.
 */
function unauthorizedProblem(path: string | null, result: RawAnswer): string | null {
  if ((result.headers['content-type'] ?? '').startsWith('text/event-stream')) return 'the event stream opened';
  let body: any;
  try {
    body = JSON.parse(result.body.toString('utf8'));
  } catch {
    return null; // HTML, Prometheus text, or a HEAD answer with no body
  }
  if (result.status < 300) {
    const keys = typeof body === 'object' && body !== null ? Object.keys(body) : [];
    return ['routes', 'name', 'revisions', 'rolledBack'].some((k) => keys.includes(k)) ? `route state answered ${result.status}` : null;
  }
  if (path === null || !(path === '/api' || path.startsWith('/api/'))) return null;
  const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
  if (['ROLLGATE_UNKNOWN_ROUTE', 'ROLLGATE_UNKNOWN_VERSION', 'ROLLGATE_CONFLICT'].includes(error?.code ?? '')) return `a handler answered ${error?.code}`;
  if (error?.code === 'ROLLGATE_BAD_REQUEST' && /^(body|querystring)\b/.test(error.message ?? '')) return 'the request was validated';
  return null;
}

t.test('generated admin requests: never a 5xx or a hang, errors in shape, a refusal changes nothing', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const port = Number(new URL(stack.base).port);

  /** Every route's state and history, as the API gives them; a bake's countdown is the one field that moves with the clock. */
  const snapshot = async (): Promise<string> => {
    const parts: string[] = [];
    for (const path of ['/api/routes', '/api/routes/sentiment/history', '/api/routes/chat/history', '/api/routes/plain/history']) {
      const r = await request(`${stack.base}${path}`, { headers: { authorization: BEARER } });
      parts.push(`${r.statusCode} ${await r.body.text()}`);
    }
    return parts.join('\n').replace(/"remainingMs":[-0-9.e+]+/g, '"remainingMs":_');
  };
  const plainBefore = await (await request(`${stack.base}/api/routes/plain`, { headers: { authorization: BEARER } })).body.text();

  const tally = new Map<number | string, number>();
  await fc.assert(
    fc.asyncProperty(adminRequestArb(stack.third.url), async (req) => {
      const before = await snapshot();
      const result = await rawRequest(port, requestBytes(req), { ms: ANSWER_MS, head: req.method === 'HEAD' });
      if (result.kind === 'timeout') throw new Error(`no answer within ${ANSWER_MS} ms: ${describe(result)}`);
      if (result.kind === 'closed') {
        // Node closes a CONNECT request's socket when nothing listens for tunnels.
        if (req.method === 'CONNECT') return;
        throw new Error(`the connection closed with no answer: ${describe(result)}`);
      }
      tally.set(result.status, (tally.get(result.status) ?? 0) + 1);
      if (result.status >= 500) throw new Error(`a 5xx: ${describe(result)}`);
      if (result.status >= 400 && req.method !== 'HEAD') {
        const problem = errorShapeProblem(result);
        if (problem !== null) throw new Error(`an error not in the project's shape (${problem}): ${describe(result)}`);
      }
      if (!req.authorized) {
        const problem = unauthorizedProblem(decodedPath(req.target), result);
        if (problem !== null) throw new Error(`without the token, ${problem}: ${describe(result)}`);
      }
      if (result.status >= 400 || !req.authorized) {
        const after = await snapshot();
        if (after !== before) throw new Error(`a refused request (${result.status}) changed the state: ${difference(before, after)}`);
      }
    }),
    fuzzParams(300),
  );
  t.comment(`answers by status: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
  t.ok((tally.get(200) ?? 0) > 0 && (tally.get(400) ?? 0) > 0 && (tally.get(401) ?? 0) > 0, 'the requests reached handlers, validation and the token check');

  const health = await request(`${stack.base}/healthz`);
  t.equal(health.statusCode, 200, 'the admin plane still answers');
  await health.body.dump();
  const plainAfter = await (await request(`${stack.base}/api/routes/plain`, { headers: { authorization: BEARER } })).body.text();
  t.equal(plainAfter, plainBefore, 'the route no call names is as it was');
  t.same(await stack.served('/plain/x', 5), ['v1'], 'and the data plane still serves it');
});

/** Headers the data plane reads: the sticky key, the override, the data snapshot, the request id. */
const dataHeaderArb: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(fc.constantFrom('x-user-id', 'X-User-Id'), fc.oneof(fc.string({ maxLength: 20 }), fc.constant(''))),
  fc.tuple(fc.constant('x-rollgate-version'), fc.constantFrom('stable', 'candidate', 'v1', 'v2', 'v9', 'CANDIDATE', '', 'stable, candidate')),
  fc.tuple(fc.constant('x-rollgate-data-snapshot'), fc.string({ maxLength: 20 })),
  fc.tuple(fc.constant('x-request-id'), fc.oneof(fc.string({ maxLength: 20 }), fc.constant(''))),
);

const dataPathArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.constantFrom('/v1/models/sentiment', '/v1/chat', '/embed', '/nope'),
        fc.oneof(
          fc.constant(''),
          fc.webPath(),
          fc.string({ maxLength: 20, unit: 'grapheme' }).map((s) => `/${s}`),
          fc.constantFrom('/..', '/../..', '/%2e%2e/api/routes', '//x', '/%00', '/%', '?a=%zz', '#f'),
          fc.webQueryParameters().map((q) => `?${q}`),
          fc.integer({ min: 1_000, max: 17_000 }).map((n) => `/${'a'.repeat(n)}`),
        ),
      )
      .map(([prefix, rest]) => prefix + rest),
  },
  { weight: 1, arbitrary: fc.constantFrom('http://127.0.0.1/v1/chat/x', 'http://other.example/embed', 'https://h/v1/models/sentiment?x=1', 'http://[::1', '*') },
  { weight: 1, arbitrary: wildPathArb },
);

const dataRequestArb: fc.Arbitrary<RawRequest> = fc
  .record({
    method: methodArb,
    target: dataPathArb,
    headers: fc.tuple(extraHeadersArb, fc.array(dataHeaderArb, { maxLength: 3 }), contentTypeArb),
    body: bodyArb(fc.jsonValue({ maxDepth: 3 })),
    noHost: fc.oneof({ weight: 20, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  })
  .chain((r) =>
    framingArb(r.body.length).map((framing): RawRequest => {
      const [extra, data, contentType] = r.headers;
      const headers: [string, string][] = [...data, ...extra];
      if (contentType !== null && r.body.length > 0) headers.push(['Content-Type', contentType]);
      return { method: r.method, target: r.target, headers, body: r.body, framing, noHost: r.noHost };
    }),
  );

t.test('generated data plane requests: with healthy upstreams, never a 5xx, a hang or a crash', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const route = (name: string, prefix: string, extra: Record<string, unknown>) => ({
    name,
    match: { pathPrefix: prefix },
    stable: { version: 'v1', url: stable.url },
    candidate: { version: 'v2', url: candidate.url, weight: 50 },
    ...extra,
  });
  const gw = await startGateway(
    config([
      route('sentiment', '/v1/models/sentiment', { sticky: { header: 'x-user-id' }, retryOnStable: true }),
      route('chat', '/v1/chat', { allowOverride: true, checks: { json: { schema: { type: 'object', required: ['served'] } } } }),
      route('embed', '/embed', { strategy: 'shadow', checks: { json: { schema: { type: 'object', required: ['served'] } } } }),
    ]),
  );
  t.teardown(closeAll(gw, stable, candidate));

  const tally = new Map<number | string, number>();
  await fc.assert(
    fc.asyncProperty(dataRequestArb, async (req) => {
      const result = await rawRequest(gw.port, requestBytes(req), { ms: ANSWER_MS, head: req.method === 'HEAD' });
      if (result.kind === 'timeout') throw new Error(`no answer within ${ANSWER_MS} ms: ${describe(result)}`);
      if (result.kind === 'closed') {
        if (req.method === 'CONNECT') return;
        throw new Error(`the connection closed with no answer: ${describe(result)}`);
      }
      tally.set(result.status, (tally.get(result.status) ?? 0) + 1);
      if (result.status >= 500) throw new Error(`a 5xx with healthy upstreams: ${describe(result)}`);
      // Answers that passed through carry the version that gave them; the upstream's own 4xx (Node's
      // 431 for a head the gateway's additions took over its limit) are not the gateway's to shape.
      if (result.status >= 400 && req.method !== 'HEAD' && result.headers['x-rollgate-version'] === undefined) {
        const problem = errorShapeProblem(result);
        if (problem !== null) throw new Error(`an error not in the project's shape (${problem}): ${describe(result)}`);
      }
      // A shadow copy's outcome may come a moment after the client's answer.
      await new Promise((resolve) => setTimeout(resolve, 1));
      const failed = gw.outcomes.filter((o) => o.failure !== 'none' && o.failure !== 'aborted');
      if (failed.length > 0) throw new Error(`counted as a failure of a healthy version: ${failed.map((o) => `${o.route} ${o.version} ${o.failure} ${o.status}`).join(', ')}`);
    }),
    fuzzParams(300),
  );
  t.comment(`answers by status: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
  t.ok((tally.get(200) ?? 0) > 0 && (tally.get(404) ?? 0) > 0, 'requests were proxied and refused');

  const failed = gw.outcomes.filter((o) => o.failure !== 'none' && o.failure !== 'aborted');
  t.same(failed.map((o) => `${o.route} ${o.version} ${o.failure} ${o.status}`), [], 'no request counted as a failure of a healthy version');
  t.ok(await eventually(async () => (await gw.openConnections()) === 0), 'no connection stays open');
  const ok = await request(`${gw.url}/v1/chat/completions`);
  t.equal(ok.statusCode, 200, 'the gateway still serves');
  await ok.body.dump();
});

// ---- What the properties above found, each as a plain example -----------------------------------

/** One raw request's answer, or a failed test when none comes. */
async function answerOf(port: number, req: RawRequest): Promise<RawAnswer> {
  const result = await rawRequest(port, requestBytes(req), { ms: ANSWER_MS, head: req.method === 'HEAD' });
  if (result.kind !== 'answer') throw new Error(`no answer: ${describe(result)}`);
  return result;
}

const get = (target: string, headers: [string, string][] = [], extra: Partial<RawRequest> = {}): RawRequest => ({ method: 'GET', target, headers, body: Buffer.alloc(0), framing: { kind: 'length' }, ...extra });
const errorOf = (a: RawAnswer): { code: string; message: string } => (JSON.parse(a.body.toString('utf8')) as { error: { code: string; message: string } }).error;

t.test('a percent-encoded /api path needs the token as the plain one does', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const port = Number(new URL(stack.base).port);
  const read = await answerOf(port, get('/%61pi/routes'));
  t.equal(read.status, 401, 'GET /%61pi/routes without the token: 401');
  t.equal(errorOf(read).code, 'ROLLGATE_UNAUTHORIZED');
  const body = Buffer.from('{"weight":50}');
  const change = await answerOf(port, { method: 'PUT', target: '/api/routes/%73entiment/weight', headers: [['Content-Type', 'application/json']], body, framing: { kind: 'length' } });
  t.equal(change.status, 401, 'a change through an encoded route name without the token: 401');
  const unknown = await answerOf(port, { method: 'POST', target: '/%61pi/nothing', headers: [['Content-Type', 'text/x-unknown']], body, framing: { kind: 'length' } });
  t.equal(unknown.status, 401, 'an encoded /api path no route has: 401, as /api/nothing is');
  const state = await answerOf(port, get('/api/routes/sentiment', [['Authorization', BEARER]]));
  t.equal(JSON.parse(state.body.toString()).weight, 10, 'the weight is still 10%');
  const withToken = await answerOf(port, { method: 'PUT', target: '/%61pi/routes/%73entiment/weight', headers: [['Authorization', BEARER], ['Content-Type', 'application/json']], body, framing: { kind: 'length' } });
  t.equal(withToken.status, 200, 'with the token the encoded path is the same endpoint');
  t.match(JSON.parse(withToken.body.toString()), { name: 'sentiment', weight: 50 });
});

t.test('what the router refuses is answered in the error shape', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const port = Number(new URL(stack.base).port);
  const auth: [string, string][] = [['Authorization', BEARER]];
  const badUrl = await answerOf(port, get('/api/routes/%E0%A4%A', auth));
  t.equal(badUrl.status, 400);
  t.same(errorOf(badUrl), { code: 'ROLLGATE_BAD_REQUEST', message: 'url: the path is not valid percent-encoded UTF-8' });
  const long = await answerOf(port, get(`/api/routes/${'a'.repeat(200)}/history`, auth));
  t.equal(long.status, 400, 'a route name over the router\'s 100 characters: 400, as one over 63 is');
  t.same(errorOf(long), { code: 'ROLLGATE_BAD_REQUEST', message: 'params.route: must NOT have more than 63 characters' });
  const mid = await answerOf(port, get(`/api/routes/${'a'.repeat(80)}/history`, auth));
  t.same(errorOf(mid), errorOf(long), 'the same message for 80 characters');
});

t.test('requests Node refuses before any handler get the error shape, on both planes', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const planes = { admin: Number(new URL(stack.base).port), 'data plane': stack.gw.port };
  for (const [plane, port] of Object.entries(planes)) {
    const cases: [string, RawRequest, number, string, RegExp][] = [
      ['a request line with spaces', get('/a b c'), 400, 'ROLLGATE_MALFORMED_REQUEST', /^the request is not valid HTTP\/1\.1: /],
      ['a header line without a colon', get('/plain/x', [['X Bad', 'x']]), 400, 'ROLLGATE_MALFORMED_REQUEST', /^the request is not valid HTTP\/1\.1: /],
      ['a head over 16 KiB', get('/plain/x', [['X-Big', 'a'.repeat(17 * 1024)]]), 431, 'ROLLGATE_HEADERS_TOO_LARGE', /16 KiB/],
      ['no Host header', get('/plain/x', [], { noHost: true }), 400, 'ROLLGATE_MALFORMED_REQUEST', /^host: /],
      ['an Expect other than 100-continue', get('/plain/x', [['Expect', 'teapot']]), 417, 'ROLLGATE_EXPECTATION_FAILED', /not "teapot"/],
    ];
    for (const [name, req, status, code, message] of cases) {
      const a = await answerOf(port, req);
      t.equal(a.status, status, `${plane}, ${name}: ${status}`);
      t.equal(errorShapeProblem(a), null, `${plane}, ${name}: the error shape`);
      t.equal(errorOf(a).code, code);
      t.match(errorOf(a).message, message);
    }
  }
  t.equal(stack.third.seen.length, 0);
  t.same(await stack.served('/plain/x', 3), ['v1'], 'the data plane still serves');
});

t.test('bad bytes pipelined after a request wait for its answer, on both planes', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const admin = Number(new URL(stack.base).port);
  // The request has no body framing, so its "null" is read as a second, malformed request.
  const rollback = Buffer.from(`POST /api/routes/sentiment/rollback HTTP/1.1\r\nHost: x\r\nAuthorization: ${BEARER}\r\n\r\nnull\r\n\r\n`);
  const both = await rawExchange(admin, rollback);
  t.match(both, /^HTTP\/1\.1 200 OK\r\n/, 'the rollback, which was carried out, is answered first');
  t.match(both, /"phase":"rolled_back"/);
  t.match(both, /HTTP\/1\.1 400 Bad Request\r\n[^]*"ROLLGATE_MALFORMED_REQUEST"/, 'then the bytes after it get their 400');
  const proxied = await rawExchange(stack.gw.port, Buffer.from('GET /plain/x HTTP/1.1\r\nHost: x\r\n\r\nnull\r\n\r\n'));
  t.match(proxied, /^HTTP\/1\.1 200 OK\r\n[^]*x-served-by: v1/, 'the data plane answers the forwarded request first');
  t.match(proxied, /HTTP\/1\.1 400 Bad Request\r\n[^]*"ROLLGATE_MALFORMED_REQUEST"/);
});

t.test('an answer without a body (to HEAD, or a 204) is not an invalid answer of a checked route', async (t) => {
  const json = await startLabelled('v1');
  const empty = await startUpstream((req, res) => {
    req.resume();
    res.writeHead(204, { 'content-type': 'application/json' });
    res.end();
  });
  const checks = { json: { schema: { type: 'object', required: ['served'] } } };
  const gw = await startGateway(
    config([
      { name: 'chat', match: { pathPrefix: '/v1/chat' }, stable: { version: 'v1', url: json.url }, candidate: { version: 'v2', url: json.url, weight: 50 }, checks },
      { name: 'embed', match: { pathPrefix: '/embed' }, stable: { version: 'v1', url: json.url }, candidate: { version: 'v2', url: json.url }, strategy: 'shadow', checks },
      { name: 'empty', match: { pathPrefix: '/empty' }, stable: { version: 'v1', url: empty.url }, checks },
    ]),
  );
  t.teardown(closeAll(gw, json, empty));
  const statuses: number[] = [];
  for (const path of ['/v1/chat/x', '/embed/x']) {
    for (let i = 0; i < 10; i++) statuses.push((await answerOf(gw.port, { ...get(path), method: 'HEAD' })).status);
  }
  statuses.push((await answerOf(gw.port, get('/empty/x'))).status);
  t.same(statuses, [...Array<number>(20).fill(200), 204], 'twenty HEADs answered 200, the empty answer 204');
  await eventually(() => gw.outcomes.length >= 31);
  t.same(gw.outcomes.filter((o) => o.failure !== 'none').map((o) => `${o.route} ${o.role} ${o.failure}`), [], 'no answer counted as invalid');
  t.equal(gw.rollouts.route('chat')?.state().windows.candidate?.failures, 0, "the candidate's window has no failure");
});

t.test('a weight the schema takes as two decimals is kept as two', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const port = Number(new URL(stack.base).port);
  const body = Buffer.from(JSON.stringify({ weight: 0.1 + 0.2 }));
  const a = await answerOf(port, { method: 'PUT', target: '/api/routes/sentiment/weight', headers: [['Authorization', BEARER], ['Content-Type', 'application/json']], body, framing: { kind: 'length' } });
  t.equal(a.status, 200);
  t.equal(JSON.parse(a.body.toString()).weight, 0.3, '0.30000000000000004 is stored as 0.3');
});

t.test('a bake\'s deadline reads the same every time', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const port = Number(new URL(stack.base).port);
  const body = Buffer.from(JSON.stringify({ version: 'v3', url: stack.third.url, strategy: 'blueGreen' }));
  const deployed = await answerOf(port, { method: 'PUT', target: '/api/routes/sentiment/candidate', headers: [['Authorization', BEARER], ['Content-Type', 'application/json']], body, framing: { kind: 'length' } });
  t.equal(deployed.status, 200);
  const deadlines = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const state = JSON.parse((await answerOf(port, get('/api/routes/sentiment', [['Authorization', BEARER]]))).body.toString());
    deadlines.add(String(state.bake?.endsAt));
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  t.equal(deadlines.size, 1, `one deadline over 30 reads: ${[...deadlines].join(', ')}`);
  t.notOk(deadlines.has('undefined') || deadlines.has('null'), 'a blue-green bake runs');
});
