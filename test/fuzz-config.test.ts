import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, parseConfigText } from '../src/config/index.js';
import { runCli, waitForPort } from './helpers/cli.js';
import { fuzzParams } from './helpers/fuzz.js';

/*
 * Generated config documents through parseConfig: valid ones (every key, each with a value it
 * takes), the same with one value changed (a wrong type, out of range, a bad duration or URL, a
 * key removed, an unknown key added), and arbitrary JSON. Properties: a document is either a
 * config or a ConfigError whose every line names a key path, the path of what was changed among
 * them; never another exception, and the document itself is left as it was. A few run through
 * `rollgate serve` too: exit code 2 and the same lines for an invalid one, a start for a valid one.
 */

type Doc = Record<string, unknown>;
type Segment = string | number;

const SCHEMA_FILE = 'answer.schema.json';

const duration = (min: number, max: number, unit: 'ms' | 's' | 'm') => fc.integer({ min, max }).map((n) => `${n}${unit}`);
const percent = (min: number) => fc.integer({ min, max: 10_000 }).map((n) => n / 100);
const option = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** Drops the keys whose value is undefined, as a YAML document would not have them. */
function compact(o: Record<string, unknown>): Doc {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function routeArb(i: number): fc.Arbitrary<Doc> {
  const url = (port: number) => `http://127.0.0.1:${port}`;
  return fc
    .record({
      candidate: option(fc.record({ version: fc.constant('v2'), url: fc.constant(url(9002 + 10 * i)), weight: option(percent(0)), data: option(fc.constant({ snapshot: 'snap-2' })) }).map(compact)),
      strategy: option(fc.constantFrom('canary', 'blueGreen', 'shadow')),
      dataHeader: option(fc.constantFrom('x-data', 'X-Snapshot')),
      steps: option(fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { maxLength: 3 }).chain((ws) => fc.tuple(...ws.sort((a, b) => a - b).map((w) => duration(1, 90, 's').map((bake) => ({ weight: w / 100, bake })))))),
      autoPromote: option(fc.boolean()),
      blueGreen: option(fc.record({ bake: option(duration(1, 30, 'm')) }).map(compact)),
      shadow: option(fc.record({ mirrorPercent: option(percent(0)), bake: option(duration(1, 30, 'm')), maxInFlight: option(fc.integer({ min: 1, max: 1000 })), maxBodyBytes: option(fc.nat(1 << 24)) }).map(compact)),
      sticky: option(fc.oneof(fc.constant({ header: 'x-user-id' }), fc.constant({ cookie: 'uid' }))),
      allowOverride: option(fc.boolean()),
      retryOnStable: option(fc.boolean()),
      maxReplayBodyBytes: option(fc.nat(1 << 24)),
      timeouts: option(fc.record({ connect: option(duration(1, 5, 's')), response: option(duration(1, 60, 's')) }).map(compact)),
      healthCheck: option(fc.record({ path: fc.constant('/health'), interval: option(fc.constant('2s')), timeout: option(duration(100, 2000, 'ms')), unhealthyAfter: option(fc.integer({ min: 1, max: 10 })) }).map(compact)),
      rollback: option(
        fc
          .record({
            alpha: option(fc.constantFrom(0.001, 0.01, 0.05)),
            consecutiveFailures: option(fc.integer({ min: 1, max: 20 })),
            errorRate: option(fc.record({ tolerance: option(fc.constantFrom(1, 1.25, 2)), maxAbsolute: option(fc.constantFrom(0.01, 0.05, 1)) }).map(compact)),
            latency: option(fc.record({ quantiles: option(fc.constantFrom([0.5], [0.5, 0.99], [0.9, 0.99, 0.999])), tolerance: option(fc.constantFrom(1, 1.5)), minDelta: option(duration(0, 50, 'ms')) }).map(compact)),
            warmup: option(fc.nat(500)),
            window: option(duration(1, 10, 'm')),
          })
          .map(compact),
      ),
      hooks: option(
        fc
          .record({
            beforeTraffic: option(fc.constant([{ kind: 'http', url: 'http://127.0.0.1:9/ready', timeout: '5s', maxAttempts: 3 }])),
            afterRollback: option(fc.constant([{ kind: 'exec', command: ['true'] }])),
          })
          .map(compact),
      ),
      checks: option(fc.record({ json: option(fc.record({ schema: fc.constantFrom<unknown>({ type: 'object' }, { $id: 'https://example.com/answer.schema.json', type: 'object', required: ['label'] }, SCHEMA_FILE), maxBytes: option(fc.integer({ min: 1, max: 1 << 20 })), holdForReplay: option(fc.boolean()) }).map(compact)), llm: option(fc.constant({ format: 'openai' })) }).map(compact)),
      agreement: option(fc.record({ pointer: fc.constantFrom('', '/label', '/predictions/0/label', '/a~1b'), numericTolerance: option(fc.constantFrom(0, 0.5)), maxDisagreement: option(fc.constantFrom(0.05, 0.5)), mirrorPercent: option(percent(0)) }).map(compact)),
    })
    .map((r) => compact({ name: `route-${i}`, match: { pathPrefix: `/v${i}/models` }, stable: { version: 'v1', url: url(9001 + 10 * i) }, ...r }));
}

/** A valid document: every key may appear, each with a value it takes. */
const validDocArb: fc.Arbitrary<Doc> = fc
  .record({
    listen: option(fc.record({ host: option(fc.constantFrom('127.0.0.1', '0.0.0.0', 'localhost')), port: option(fc.integer({ min: 8000, max: 8999 })), drainTimeout: option(duration(0, 30, 's')), headersTimeout: option(duration(1, 10, 's')), requestTimeout: option(duration(1, 5, 'm')), idleTimeout: option(duration(1, 120, 's')) }).map(compact)),
    admin: option(fc.record({ host: option(fc.constant('127.0.0.1')), port: option(fc.integer({ min: 9100, max: 9199 })), tokenEnv: option(fc.constantFrom('ROLLGATE_ADMIN_TOKEN', 'MY_TOKEN')) }).map(compact)),
    store: option(fc.constantFrom<unknown>({ kind: 'memory' }, { kind: 'file', path: 'state.json' }, { kind: 'redis', url: 'redis://127.0.0.1:6379', prefix: 'rg', maxReplicas: 4 })),
    notify: option(fc.constant([{ kind: 'webhook', url: 'http://127.0.0.1:9/hook' }])),
    log: option(fc.record({ level: option(fc.constantFrom('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent')) }).map(compact)),
    routes: fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => routeArb(i)))),
  })
  .map(compact);

/** Values a key should not hold: every type, out of range, bad durations, URLs, labels, YAML's .nan and .inf. */
const wrongValueArb: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom<unknown>(
      null, true, false, 0, -1, 0.5, 1.5, 101, 100.001, 65_536, 70_000, 1e308, -1e308, Number.NaN, Infinity, -Infinity, -0, 2 ** 53 + 2,
      '', ' ', 'x', '5 minutes', '30', '-1s', '1d', '0ms', '0s', '.5s', '1e3s', '9'.repeat(400) + 'h',
      'ftp://h', 'http:///x', 'http://u:p@h', 'http://h/?q=1', 'http://h#f', 'http://[::1', 'redis://h', 'javascript:x',
      '/x', 'x/y', 'a b', 'stable', 'candidate', 'Candidate', '\u00e9\u0301', '\ud800', 'a'.repeat(300), '~', '/a~2',
      [], {}, [1, 2], [[]], { a: 1 }, [null],
    ),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

/** Keys no schema has: typos of real ones are made from the keys present; these are the rest. */
const strangeKeyArb = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '', ' ', 'routes ', '\u00e9', '0', '$ref'), fc.string({ maxLength: 12 }));

/** Every path to a value in a document, the document itself first. */
function paths(v: unknown, at: Segment[] = []): Segment[][] {
  const out: Segment[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function parentOf(doc: unknown, path: Segment[]): Record<Segment, unknown> {
  let node = doc as Record<Segment, unknown>;
  for (const seg of path.slice(0, -1)) node = node[seg] as Record<Segment, unknown>;
  return node;
}

/** Sets an own property, `__proto__` included, as a YAML or JSON parser makes it. */
function define(o: object, key: Segment, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A typo of a key: two letters swapped, a letter dropped or doubled, or its case changed. */
function typo(key: string, n: number): string {
  if (key.length < 2) return `${key}x`;
  const i = n % (key.length - 1);
  switch (n % 4) {
    case 0:
      return key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
    case 1:
      return key.slice(0, i) + key.slice(i + 1);
    case 2:
      return key.slice(0, i) + key[i] + key.slice(i);
    default:
      return key.toUpperCase() === key ? key.toLowerCase() : key.toUpperCase();
  }
}

interface Mutation {
  kind: 'replace' | 'remove' | 'add-key' | 'typo-key';
  /** Where the change is: the value replaced or removed, or the key added. */
  path: Segment[];
}

/** A valid document with one change, and where the change is. */
function mutatedArb(base: fc.Arbitrary<Doc>, keep: (path: Segment[]) => boolean = () => true): fc.Arbitrary<{ doc: Doc; mutation: Mutation }> {
  return fc.tuple(base, fc.nat(), fc.constantFrom('replace', 'replace', 'remove', 'add-key', 'typo-key'), wrongValueArb, strangeKeyArb, fc.nat()).map(([valid, pick, kind, value, strange, n]) => {
    // A copy: generated values (constants above all) are shared between runs.
    const doc = structuredClone(valid);
    const all = paths(doc).filter(keep);
    const path = all[pick % all.length] as Segment[];
    const node = path.reduce<unknown>((v, seg) => (v as Record<Segment, unknown>)[seg], doc);
    const isObject = typeof node === 'object' && node !== null && !Array.isArray(node);
    if ((kind === 'add-key' || kind === 'typo-key') && isObject) {
      const keys = Object.keys(node);
      const key = kind === 'typo-key' && keys.length > 0 ? typo(keys[n % keys.length] as string, n) : strange;
      define(node, key, value);
      return { doc, mutation: { kind, path: [...path, key] } };
    }
    if (path.length === 0) return { doc: value as Doc, mutation: { kind: 'replace', path } };
    const parent = parentOf(doc, path);
    const last = path[path.length - 1] as Segment;
    if (kind === 'remove') {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      return { doc, mutation: { kind, path } };
    }
    define(parent, last, value);
    return { doc, mutation: { kind: 'replace', path } };
  });
}

/**
 * The key path a problem line starts with (`routes[0].stable.url: ...` as segments, `config: ...`
 * as none), or null when the line does not start with a key path, a colon and a message.
 */
function problemPath(line: string): Segment[] | null {
  if (line.startsWith('config: ')) return [];
  const out: Segment[] = [];
  const part = /(?:^|\.)([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  for (;;) {
    const at = part.lastIndex;
    const m = part.exec(line);
    if (m === null) {
      part.lastIndex = at;
      break;
    }
    out.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (JSON.parse(m[3] as string) as string)));
  }
  return out.length > 0 && /^: \S/.test(line.slice(part.lastIndex)) ? out : null;
}

/** Whether a problem at `problem` is about a change at `changed`: the same place, inside or around it, or beside it. */
function names(problem: Segment[], changed: Segment[]): boolean {
  let common = 0;
  while (common < problem.length && common < changed.length && problem[common] === changed[common]) common++;
  // A cross-key rule reports the key the change collides with: a sibling (headersTimeout for
  // requestTimeout), a cousin (candidate.version for stable.version) or another route's name.
  return common >= Math.min(problem.length, changed.length) || common >= changed.length - 2;
}

/**
 * What is wrong with parseConfig's handling of a document, or null: it must return a config or
 * throw a ConfigError whose every problem starts with a key path; with a mutation, a path near it.
 */
function parseProblem(doc: unknown, dir: string, mutation?: Mutation): string | null {
  try {
    const config = parseConfig(doc, undefined, dir);
    if (!Array.isArray(config.routes) || config.routes.length === 0) return 'accepted with no routes';
    return null;
  } catch (err) {
    if (!(err instanceof ConfigError)) return `threw ${(err as Error)?.name}: ${(err as Error)?.message}`;
    if (err.problems.length === 0) return 'a ConfigError with no problem';
    const unnamed = err.problems.filter((p) => problemPath(p) === null);
    if (unnamed.length > 0) return `problems without a key path: ${JSON.stringify(unnamed)}`;
    if (mutation !== undefined && !err.problems.some((p) => names(problemPath(p) as Segment[], mutation.path))) {
      return `no problem names ${JSON.stringify(mutation.path)}: ${JSON.stringify(err.problems)}`;
    }
    return null;
  }
}

function setup(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-fuzz-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, SCHEMA_FILE), JSON.stringify({ $id: 'https://example.com/answer.schema.json', type: 'object', required: ['label'] }));
  return dir;
}

t.test('generated valid documents are accepted', async (t) => {
  const dir = setup(t);
  fc.assert(
    fc.property(validDocArb, (doc) => {
      parseConfig(doc, undefined, dir);
    }),
    fuzzParams(300),
  );
  t.pass('every one gave a config');
});

t.test('a valid document with one change: a config, or a ConfigError naming the key path of the change', async (t) => {
  const dir = setup(t);
  let refused = 0;
  fc.assert(
    fc.property(mutatedArb(validDocArb), ({ doc, mutation }) => {
      const before = JSON.stringify(doc);
      const problem = parseProblem(doc, dir, mutation);
      if (problem !== null) throw new Error(`${mutation.kind} at ${JSON.stringify(mutation.path)}: ${problem}`);
      if (JSON.stringify(doc) !== before) throw new Error('parseConfig changed the document it was given');
      try {
        parseConfig(doc, undefined, dir);
      } catch {
        refused++;
      }
    }),
    fuzzParams(1_500),
  );
  t.ok(refused > 0, `most changes are refused (${refused})`);
});

t.test('arbitrary JSON, and arbitrary routes: a config or a ConfigError, never another exception', async (t) => {
  const dir = setup(t);
  const anyDoc = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.jsonValue({ maxDepth: 3 }).map((routes) => ({ routes })),
    fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 3 }).map((routes) => ({ routes })),
    fc.dictionary(fc.constantFrom('listen', 'admin', 'store', 'notify', 'log', 'routes'), fc.jsonValue({ maxDepth: 3 })),
  );
  fc.assert(
    fc.property(anyDoc, (doc) => {
      const problem = parseProblem(doc, dir);
      if (problem !== null) throw new Error(problem);
    }),
    fuzzParams(1_000),
  );
  t.pass('no other exception');
});

/** A JSON Schema, or something where one belongs: schemas with ids and references, bad keywords, deep nesting, paths to odd files. */
const schemaValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ $id: fc.constantFrom('https://example.com/a.json', 'urn:a', 'a'), type: fc.constantFrom('object', 'array', 'strng') }, { requiredKeys: ['$id'] }),
  fc.constantFrom<unknown>(
    { $ref: 'http://example.com/remote.json' },
    { $ref: '#/definitions/missing' },
    { $id: 'https://example.com/b.json', definitions: { n: { type: 'number' } }, properties: { n: { $ref: '#/definitions/n' } } },
    { pattern: '(' },
    { format: 'no-such-format' },
    { $async: true },
    { type: 'object', required: 'label' },
    { $schema: 'http://json-schema.org/draft-04/schema#' },
    { $schema: 'https://example.com/unknown-meta' },
    true,
    false,
    SCHEMA_FILE,
    '/dev/zero',
    '/dev/null',
    '.',
    '/',
    `${SCHEMA_FILE}/x`,
  ),
  fc.integer({ min: 1, max: 1_200 }).map((depth) => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < depth; i++) schema = { not: schema };
    return schema;
  }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(fc.constantFrom('type', 'properties', 'items', 'required', 'enum', 'const', 'minimum', 'allOf', 'anyOf', '$ref', '$id', 'additionalProperties'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
);

t.test('any value where a JSON Schema belongs, on one route or two: a config, or a ConfigError naming checks.json.schema', async (t) => {
  const dir = setup(t);
  const route = (i: number, schema: unknown) => ({ name: `r${i}`, match: { pathPrefix: `/r${i}` }, stable: { version: 'v1', url: 'http://127.0.0.1:9001' }, checks: { json: { schema } } });
  fc.assert(
    fc.property(schemaValueArb, fc.boolean(), (schema, twice) => {
      // The same schema twice, as two objects: a file both routes name is read once per route.
      const doc = { routes: twice ? [route(0, schema), route(1, structuredClone(schema))] : [route(0, schema)] };
      const problem = parseProblem(doc, dir, { kind: 'replace', path: ['routes', 0, 'checks', 'json', 'schema'] });
      if (problem !== null) throw new Error(problem);
      if (twice) {
        const one = parseProblem({ routes: [route(0, structuredClone(schema))] }, dir);
        const both = (() => {
          try {
            parseConfig(doc, undefined, dir);
            return 'accepted';
          } catch {
            return 'refused';
          }
        })();
        const single = (() => {
          try {
            parseConfig({ routes: [route(0, structuredClone(schema))] }, undefined, dir);
            return 'accepted';
          } catch {
            return 'refused';
          }
        })();
        if (one === null && both !== single) throw new Error(`one route ${single}, two routes with the same schema ${both}`);
      }
    }),
    fuzzParams(200),
  );
  t.pass('no other exception, and a schema two routes share is judged as it is on one');
});

t.test('examples found by the properties: a schema with an $id on two routes, a schema path to a device', async (t) => {
  const dir = setup(t);
  const route = (i: number, schema: unknown) => ({ name: `r${i}`, match: { pathPrefix: `/r${i}` }, stable: { version: 'v1', url: 'http://127.0.0.1:9001' }, checks: { json: { schema } } });
  const withId = () => ({ $id: 'https://example.com/answer.schema.json', type: 'object', required: ['label'] });
  const two = parseConfig({ routes: [route(0, withId()), route(1, withId())] }, undefined, dir);
  t.same(two.routes.map((r) => r.checks.json?.schema), [withId(), withId()], 'two routes may use schemas with one $id');
  const again = parseConfig({ routes: [route(0, SCHEMA_FILE), route(1, SCHEMA_FILE)] }, undefined, dir);
  t.equal(again.routes.length, 2, 'and the same schema file, read once per route, again in the same process');
  t.same(
    (() => {
      try {
        parseConfig({ routes: [route(0, '/dev/zero')] }, undefined, dir);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    })(),
    ['routes[0].checks.json.schema: cannot read /dev/zero: not a regular file'],
    'a device is refused without reading it',
  );
});

/** Distinct free loopback ports: each stays bound until all are picked. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<Server>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** What `rollgate serve` must do with a document: start, or exit 2 printing these problems. */
async function serveProblem(file: string, text: string, port: number): Promise<{ valid: boolean; problem: string | null }> {
  let expected: string[] | null = null;
  try {
    parseConfigText(text, file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    expected = err.problems;
  }
  const run = runCli(['serve', '--config', file], { ROLLGATE_ADMIN_TOKEN: 'fuzz', NODE_OPTIONS: '' });
  const killer = setTimeout(() => run.child.kill('SIGKILL'), 40_000);
  try {
    if (expected === null) {
      await waitForPort(port, 30_000);
      run.child.kill('SIGTERM');
      const { code } = await run.exited;
      return { valid: true, problem: code === 0 ? null : `a valid document: exit ${code}\n${run.stderr()}` };
    }
    const { code } = await run.exited;
    if (code !== 2) return { valid: false, problem: `an invalid document: exit ${code}, not 2\n${run.stderr()}` };
    const lines = run.stderr().split('\n');
    const missing = expected.filter((p) => !lines.includes(p));
    return { valid: false, problem: missing.length === 0 ? null : `stderr lacks ${JSON.stringify(missing)}\n${run.stderr()}` };
  } finally {
    clearTimeout(killer);
    run.child.kill('SIGKILL');
  }
}

t.test('rollgate serve on generated documents: exit code 2 with every problem for an invalid one, a start for a valid one', async (t) => {
  const dir = setup(t);
  // Ports and the store are fixed (a changed port could be taken; a file store writes); the routes may change.
  const servable = validDocArb.map((doc) => ({ ...doc, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, store: { kind: 'memory' }, log: { level: 'silent' } }));
  // Each run starts a process: the documents are drawn from the seed, a third of them valid ones
  // as generated and the rest changed, and run six at a time.
  const { seed, numRuns } = fuzzParams(6, 500);
  const unchanged = Math.max(1, Math.round(numRuns / 3));
  const docs = [
    ...fc.sample(servable, { seed, numRuns: unchanged }),
    ...fc.sample(mutatedArb(servable, (p) => p[0] === 'routes').map(({ doc }) => doc), { seed: seed + 1, numRuns: Math.max(1, numRuns - unchanged) }),
  ];
  const seen = { valid: 0, invalid: 0 };
  for (let from = 0; from < docs.length; from += 6) {
    const batch = docs.slice(from, from + 6);
    const ports = await freePorts(batch.length * 2);
    const results = await Promise.all(
      batch.map(async (doc, i) => {
        const port = ports[2 * i] as number;
        Object.assign(doc, { listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: ports[2 * i + 1] } });
        const file = join(dir, `doc-${from + i}.yaml`);
        const text = stringify(doc);
        writeFileSync(file, text);
        return { ...(await serveProblem(file, text, port)), text, index: from + i };
      }),
    );
    for (const r of results) {
      seen[r.valid ? 'valid' : 'invalid']++;
      t.equal(r.problem, null, `document ${r.index} of seed ${seed} (${r.valid ? 'valid' : 'invalid'})${r.problem === null ? '' : `:\n${r.text}`}`);
    }
  }
  t.ok(seen.invalid > 0 && seen.valid > 0, `${seen.invalid} invalid documents exited 2 with their problems, ${seen.valid} valid ones started and stopped`);
});
