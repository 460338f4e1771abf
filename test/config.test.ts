import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import t from 'tap';
import {
  ConfigError,
  DEFAULT_ROLLBACK,
  formatDuration,
  loadConfigFile,
  parseConfig,
  parseConfigText,
  parseDuration,
} from '../src/config/index.js';

 
type Raw = any;

const EXAMPLE = fileURLToPath(new URL('../../config/rollgate.yaml', import.meta.url));

/** Two routes, only required keys but one candidate: valid as it stands. */
function base(): Raw {
  return {
    routes: [
      {
        name: 'sentiment',
        match: { pathPrefix: '/v1/models/sentiment' },
        stable: { version: 'v1', url: 'http://127.0.0.1:9001' },
        candidate: { version: 'v2', url: 'http://127.0.0.1:9002', weight: 5 },
      },
      {
        name: 'chat',
        match: { pathPrefix: '/v1/chat/completions' },
        stable: { version: 'v1', url: 'http://127.0.0.1:9011' },
      },
    ],
  };
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError, the config was accepted');
}

const broken = (mutate: (c: Raw) => void): string[] => {
  const c = base();
  mutate(c);
  return problemsOf(() => parseConfig(c));
};

t.test('the documented example loads', async (t) => {
  const c = loadConfigFile(EXAMPLE);
  t.equal(c.routes.length, 1);
  const r = c.routes[0]!;
  t.equal(r.name, 'sentiment');
  t.same(r.steps, [
    { weight: 5, bakeMs: 30_000 },
    { weight: 25, bakeMs: 60_000 },
    { weight: 50, bakeMs: 60_000 },
  ]);
  t.same(r.sticky, { kind: 'header', name: 'x-user-id' });
  t.same(r.healthCheck, { path: '/v2/health/ready', intervalMs: 2000, timeoutMs: 500, unhealthyAfter: 3 });
  t.same(c.store, { kind: 'file', path: 'data/rollgate-state.json' });
  t.equal(c.listen.drainTimeoutMs, 10_000);
});

t.test('omitted keys get their defaults', async (t) => {
  const c = parseConfig(base());
  t.same(c.listen, { host: '0.0.0.0', port: 8080, workers: 1, memory: 'lean', drainTimeoutMs: 10_000, headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, idleTimeoutMs: 65_000, tls: null });
  t.same(c.admin, { host: '127.0.0.1', port: 9090, tokenEnv: 'ROLLGATE_ADMIN_TOKEN' });
  t.same(c.store, { kind: 'memory' });
  t.same(c.notify, []);
  t.same(c.log, { level: 'info' });
  t.strictSame(c.routes[0], {
    name: 'sentiment',
    pathPrefix: '/v1/models/sentiment',
    stable: { version: 'v1', url: 'http://127.0.0.1:9001', data: null, protocol: 'http1' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002', data: null, protocol: 'http1', weight: 5 },
    strategy: 'canary',
    dataHeader: 'x-rollgate-data-snapshot',
    steps: [],
    autoPromote: true,
    blueGreen: { bakeMs: 300_000 },
    shadow: { mirrorPercent: 100, bakeMs: 600_000, maxInFlight: 100, maxBodyBytes: 1_048_576 },
    sticky: null,
    allowOverride: false,
    retryOnStable: false,
    maxReplayBodyBytes: 1_048_576,
    replayMethods: null,
    timeouts: { connectMs: 1000, responseMs: 30_000 },
    healthCheck: null,
    rollback: {
      alpha: 0.001,
      consecutiveFailures: 5,
      errorRate: { tolerance: 1.25, maxAbsolute: 0.05 },
      latency: { quantiles: [0.5, 0.99], tolerance: 1.25, minDeltaMs: 5 },
      warmup: 50,
      windowMs: 300_000,
    },
    checks: { json: null, llm: null },
    agreement: null,
    hooks: { beforeTraffic: [], afterRollback: [], afterPromote: [] },
    websocket: { keepOnRollback: false },
  });
  t.equal(c.routes[1]!.candidate, null);
  c.routes[0]!.rollback.latency.quantiles.push(0.9);
  t.same(DEFAULT_ROLLBACK.latency.quantiles, [0.5, 0.99], 'defaults are copied, not shared');
});

t.test('values are normalised', async (t) => {
  const c = base();
  c.routes[0].stable.url = 'http://Model-A.internal:80/base/';
  c.routes[0].candidate = { version: 'v2', url: 'https://model-b.internal/' };
  c.routes[0].match.pathPrefix = '/v1/models/sentiment/';
  c.routes[0].sticky = { header: 'X-User-Id' };
  c.routes[0].healthCheck = { path: '/health' };
  c.routes[0].rollback = { latency: { minDelta: '0ms' }, window: '1m30s' };
  c.routes[0].replayMethods = ['get', 'POST', 'Get'];
  c.store = { kind: 'redis', url: 'redis://127.0.0.1:6379' };
  const r = parseConfig(c).routes[0]!;
  t.same(r.replayMethods, ['GET', 'POST'], 'replayMethods upper-cased, each once');
  t.equal(r.stable.url, 'http://model-a.internal/base');
  t.same(r.candidate, { version: 'v2', url: 'https://model-b.internal', data: null, protocol: 'http1', weight: 0 });
  t.equal(r.pathPrefix, '/v1/models/sentiment/', 'path prefix kept as written');
  t.same(r.sticky, { kind: 'header', name: 'x-user-id' });
  t.same(r.healthCheck, { path: '/health', intervalMs: 2000, timeoutMs: 500, unhealthyAfter: 3 });
  t.equal(r.rollback.latency.minDeltaMs, 0);
  t.equal(r.rollback.windowMs, 90_000);
  t.same(parseConfig(c).store, { kind: 'redis', url: 'redis://127.0.0.1:6379', prefix: 'rollgate', maxReplicas: 8 });
});

t.test('durations parse and format', async (t) => {
  const table: [string, number | null][] = [
    ['250ms', 250], ['5s', 5000], ['2m', 120_000], ['1h', 3_600_000], ['1.5s', 1500], ['0ms', 0],
    ['1m30s', 90_000], ['30', null], ['5 minutes', null], ['', null], ['-5s', null], ['5S', null],
    ['.5s', null], ['5sec', null], ['1d', null], ['s', null],
  ];
  for (const [text, ms] of table) t.equal(parseDuration(text), ms, text);
  t.equal(formatDuration(300_000), '5m');
  t.equal(formatDuration(5_400_000), '1h30m');
  t.equal(formatDuration(1500), '1.5s');
  t.equal(formatDuration(250), '250ms');
  t.equal(formatDuration(0), '0ms');
  t.throws(() => formatDuration(-1), RangeError);
  fc.assert(fc.property(fc.nat(10 * 86_400_000), (ms) => parseDuration(formatDuration(ms)) === ms));
});

const cases: [string, (c: Raw) => void, string][] = [
  ['bad URL scheme', (c) => (c.routes[1].stable.url = 'ftp://127.0.0.1:9011'), 'routes[1].stable.url: must be an http(s) URL'],
  ['URL with no host', (c) => (c.routes[0].candidate.url = 'http:///v1'), 'routes[0].candidate.url: must be an http(s) URL with a host'],
  ['URL that is not a URL', (c) => (c.routes[0].stable.url = '127.0.0.1:9001'), 'routes[0].stable.url: must be an http(s) URL'],
  ['URL with a query', (c) => (c.routes[0].stable.url = 'http://h/?a=1'), 'routes[0].stable.url: must not have a query string'],
  ['URL with credentials', (c) => (c.routes[0].stable.url = 'http://u:p@h'), 'routes[0].stable.url: must not contain credentials'],
  ['weight 101', (c) => (c.routes[0].candidate.weight = 101), 'routes[0].candidate.weight: must be between 0 and 100 with at most two decimals'],
  ['weight 10.555', (c) => (c.routes[0].candidate.weight = 10.555), 'routes[0].candidate.weight: must be between 0 and 100 with at most two decimals'],
  ['weight "ten"', (c) => (c.routes[0].candidate.weight = 'ten'), 'routes[0].candidate.weight: must be between 0 and 100 with at most two decimals'],
  ['bare number duration', (c) => (c.routes[0].timeouts = { response: 30 }), 'routes[0].timeouts.response: must be a duration like 250ms, 5s or 2m'],
  ['duration in words', (c) => (c.routes[0].rollback = { window: '5 minutes' }), 'routes[0].rollback.window: must be a duration like 250ms, 5s or 2m'],
  ['zero bake', (c) => (c.routes[0].blueGreen = { bake: '0s' }), 'routes[0].blueGreen.bake: must be longer than 0ms'],
  ['window under 1s', (c) => (c.routes[0].rollback = { window: '500ms' }), 'routes[0].rollback.window: must be at least 1s'],
  ['unknown top-level key', (c) => (c.listn = { port: 8080 }), 'listn: unknown key (did you mean listen?)'],
  ['unknown route key', (c) => { c.routes[0].stabel = c.routes[0].stable; delete c.routes[0].stable; }, 'routes[0].stabel: unknown key (did you mean stable?)'],
  ['the key the typo missed', (c) => { c.routes[0].stabel = c.routes[0].stable; delete c.routes[0].stable; }, 'routes[0].stable: is required'],
  ['missing routes', (c) => delete c.routes, 'routes: is required'],
  ['empty routes', (c) => (c.routes = []), 'routes: must be a non-empty list of routes'],
  ['not a mapping', (c) => (c.routes[1] = 'chat'), 'routes[1]: must be a mapping of keys'],
  ['duplicate route name', (c) => (c.routes[1].name = 'sentiment'), 'routes[1].name: duplicates routes[0].name'],
  ['bad route name', (c) => (c.routes[1].name = 'chat/v1'), 'routes[1].name: must be 1-63 letters, digits or _.- starting with a letter or digit'],
  ['duplicate pathPrefix', (c) => (c.routes[1].match.pathPrefix = '/v1/models/sentiment/'), 'routes[1].match.pathPrefix: duplicates routes[0].match.pathPrefix'],
  ['pathPrefix without /', (c) => (c.routes[1].match.pathPrefix = 'v1/chat'), 'routes[1].match.pathPrefix: must start with /'],
  ['pathPrefix with ?', (c) => (c.routes[1].match.pathPrefix = '/v1/chat?x'), 'routes[1].match.pathPrefix: must not contain ? or #'],
  ['candidate label equal to stable', (c) => (c.routes[0].candidate.version = 'v1'), 'routes[0].candidate.version: must differ from stable.version (v1)'],
  ['label "stable"', (c) => (c.routes[0].candidate.version = 'stable'), 'routes[0].candidate.version: must not be "stable" or "candidate" (reserved words)'],
  ['label "candidate"', (c) => (c.routes[1].stable.version = 'candidate'), 'routes[1].stable.version: must not be "stable" or "candidate" (reserved words)'],
  ['sticky header and cookie', (c) => (c.routes[0].sticky = { header: 'x-user', cookie: 'uid' }), 'routes[0].sticky: must set exactly one of header or cookie'],
  ['sticky cookie not a token', (c) => (c.routes[0].sticky = { cookie: 'user id' }), "routes[0].sticky.cookie: must be a cookie name (letters, digits, !#$%&'*+-.^_`|~)"],
  ['step weight 0', (c) => (c.routes[0].steps = [{ weight: 0, bake: '1m' }]), 'routes[0].steps[0].weight: must be above 0 and at most 100 with at most two decimals'],
  ['step weight 150', (c) => (c.routes[0].steps = [{ weight: 150, bake: '1m' }]), 'routes[0].steps[0].weight: must be above 0 and at most 100 with at most two decimals'],
  ['decreasing steps', (c) => (c.routes[0].steps = [{ weight: 50, bake: '1m' }, { weight: 25, bake: '1m' }]), 'routes[0].steps[1].weight: must not be lower than steps[0].weight (50)'],
  ['alpha 0', (c) => (c.routes[0].rollback = { alpha: 0 }), 'routes[0].rollback.alpha: must be a number above 0 and below 0.5'],
  ['alpha 0.9', (c) => (c.routes[1].rollback = { alpha: 0.9 }), 'routes[1].rollback.alpha: must be a number above 0 and below 0.5'],
  ['quantile 1.5', (c) => (c.routes[0].rollback = { latency: { quantiles: [0.5, 1.5] } }), 'routes[0].rollback.latency.quantiles[1]: must be a number above 0 and below 1'],
  ['repeated quantile', (c) => (c.routes[0].rollback = { latency: { quantiles: [0.5, 0.99, 0.5] } }), 'routes[0].rollback.latency.quantiles[2]: duplicates routes[0].rollback.latency.quantiles[0]'],
  ['tolerance below 1', (c) => (c.routes[0].rollback = { errorRate: { tolerance: 0.8 } }), 'routes[0].rollback.errorRate.tolerance: must be a number of at least 1'],
  ['port 70000', (c) => (c.listen = { port: 70000 }), 'listen.port: must be an integer between 0 and 65535'],
  ['admin on the listen address', (c) => { c.listen = { host: '127.0.0.1', port: 8080 }; c.admin = { port: 8080 }; }, 'admin.port: collides with listen (127.0.0.1:8080): the planes need different ports'],
  ['listen on the default admin port', (c) => (c.listen = { port: 9090 }), 'listen.port: collides with the admin plane (default 127.0.0.1:9090): the planes need different ports'],
  ['redis store without url', (c) => (c.store = { kind: 'redis' }), 'store.url: is required when kind is redis'],
  ['redis store with an http url', (c) => (c.store = { kind: 'redis', url: 'http://127.0.0.1:6379' }), 'store.url: must be a redis:// or rediss:// URL'],
  ['redis store with maxReplicas 0', (c) => (c.store = { kind: 'redis', url: 'redis://127.0.0.1:6379', maxReplicas: 0 }), 'store.maxReplicas: must be an integer between 1 and 1000'],
  ['file store with maxReplicas', (c) => (c.store = { kind: 'file', path: 'x.json', maxReplicas: 3 }), 'store.maxReplicas: is not used with kind file'],
  ['file store without path', (c) => (c.store = { kind: 'file' }), 'store.path: is required when kind is file'],
  ['unknown store kind', (c) => (c.store = { kind: 'etcd' }), 'store.kind: must be one of memory, file, redis'],
  ['healthCheck without path', (c) => (c.routes[0].healthCheck = { interval: '2s' }), 'routes[0].healthCheck.path: is required'],
  ['healthCheck timeout over interval', (c) => (c.routes[0].healthCheck = { path: '/h', interval: '1s', timeout: '2s' }), 'routes[0].healthCheck.timeout: must not be longer than interval (1s)'],
  ['notify URL not http(s)', (c) => (c.notify = [{ kind: 'webhook', url: 'mailto:ops@example.com' }]), 'notify[0].url: must be an http(s) URL'],
  ['unknown strategy', (c) => (c.routes[0].strategy = 'linear'), 'routes[0].strategy: must be one of canary, blueGreen, shadow'],
  ['replayMethods with a space', (c) => (c.routes[0].replayMethods = ['PO ST']), 'routes[0].replayMethods[0]: must be an HTTP method name (letters only)'],
  ['replayMethods not a list', (c) => (c.routes[0].replayMethods = 'POST'), 'routes[0].replayMethods: must be a list'],
  ['boolean as string', (c) => (c.routes[0].autoPromote = 'yes'), 'routes[0].autoPromote: must be true or false'],
];

for (const [name, mutate, expected] of cases) {
  t.test(`refused: ${name}`, async (t) => {
    const problems = broken(mutate);
    t.ok(problems.includes(expected), `${expected}\n  in: ${JSON.stringify(problems)}`);
  });
}

t.test('a YAML syntax error names file, line and column', async (t) => {
  const text = 'routes:\n  - name: a\n    match: { pathPrefix: /a\n';
  const problems = problemsOf(() => parseConfigText(text, 'config/rollgate.yaml'));
  t.ok(problems.length >= 1);
  t.match(problems[0], /^config\/rollgate\.yaml:\d+:\d+: \S/);
});

t.test('an unreadable file is one problem', async (t) => {
  const problems = problemsOf(() => loadConfigFile('/nonexistent/rollgate.yaml'));
  t.same(problems, ['cannot read /nonexistent/rollgate.yaml: no such file']);
});

t.test('a file loads through YAML, anchors and merge keys included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(
    file,
    [
      'routes:',
      '  - name: a',
      '    match: { pathPrefix: /a }',
      '    stable: { version: v1, url: "http://h:1" }',
      '    rollback: &rules { alpha: 0.01, window: 1m }',
      '  - name: b',
      '    match: { pathPrefix: /b }',
      '    stable: { version: v1, url: "http://h:2" }',
      '    rollback: { <<: *rules, window: 2m }',
    ].join('\n'),
  );
  const b = loadConfigFile(file).routes[1]!;
  t.equal(b.rollback.alpha, 0.01);
  t.equal(b.rollback.windowMs, 120_000);
});

t.test('every problem in one config is reported, once each, in document order', async (t) => {
  const c = { listen: { port: 70000 }, ...base() };
  c.routes[0].stable.url = 'ftp://x';
  c.routes[0].candidate.weight = 101.555;
  c.routes[0].rollback = { alpha: 0.9, window: 30 };
  c.routes[1].name = 'sentiment';
  c.routes[1].stabel = {};
  const problems = problemsOf(() => parseConfig(c));
  t.same(problems, [
    'listen.port: must be an integer between 0 and 65535',
    'routes[0].stable.url: must be an http(s) URL',
    'routes[0].candidate.weight: must be between 0 and 100 with at most two decimals',
    'routes[0].rollback.alpha: must be a number above 0 and below 0.5',
    'routes[0].rollback.window: must be a duration like 250ms, 5s or 2m',
    'routes[1].name: duplicates routes[0].name',
    'routes[1].stabel: unknown key (did you mean stable?)',
  ]);
  const err = (() => {
    try {
      parseConfig(c, 'x.yaml');
    } catch (e) {
      return e as ConfigError;
    }
  })();
  t.match(err?.message, /^invalid config x\.yaml:\n {2}listen\.port: /);
});

t.test('checks and agreement: defaults, and a schema read from a file beside the config', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-schema-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'answer.schema.json'), JSON.stringify({ type: 'object', required: ['predictions'] }));
  const text = `routes:
  - name: sentiment
    match: { pathPrefix: /v1/models/sentiment }
    stable: { version: v1, url: "http://127.0.0.1:9001" }
    checks: { json: { schema: answer.schema.json }, llm: { format: openai } }
    agreement: { pointer: /predictions/0/label }
`;
  writeFileSync(join(dir, 'rollgate.yaml'), text);
  const r = loadConfigFile(join(dir, 'rollgate.yaml')).routes[0]!;
  t.same(r.checks, { json: { schema: { type: 'object', required: ['predictions'] }, maxBytes: 262_144, holdForReplay: false }, llm: { format: 'openai' } });
  t.same(r.agreement, { pointer: '/predictions/0/label', numericTolerance: 0, maxDisagreement: 0.05, mirrorPercent: 0 });
  const bad = problemsOf(() => parseConfigText(text.replace('answer.schema.json', 'missing.json').replace('/predictions/0/label', 'a~2b'), join(dir, 'rollgate.yaml')));
  t.same(bad, [
    `routes[0].checks.json.schema: cannot read ${join(dir, 'missing.json')}: no such file`,
    'routes[0].agreement.pointer: must be a JSON Pointer: empty, or starting with / (RFC 6901)',
  ]);
  t.same(
    broken((c) => (c.routes[0].checks = { json: { schema: { type: 'object', properties: { a: { minimum: 'x' } } } } })),
    ['routes[0].checks.json.schema: is not a valid JSON Schema: schema is invalid: data/properties/a/minimum must be number'],
  );
  t.same(broken((c) => (c.routes[0].agreement = { pointer: '/a~', maxDisagreement: 0.05 })), ['routes[0].agreement.pointer: must escape ~ as ~0 and / as ~1 (RFC 6901)']);
});
