import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { adminFailure } from '../src/admin/failures.js';
import { buildAdmin } from '../src/admin/server.js';
import type { GatewayConfig } from '../src/config/types.js';
import type { Rollouts } from '../src/rollout/rollouts.js';
import { ERRORS, RolloutRefusal } from '../src/errors.js';

// The README's "Error codes" table and src/errors.ts list the same codes, statuses and meanings.
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function readmeTable(): Map<string, { status: number; from: string; doc: string }> {
  const start = README.indexOf('\n### Error codes\n');
  if (start === -1) return new Map();
  const section = README.slice(start + 1).split(/\n#{2,3} /)[0] as string;
  const rows = new Map<string, { status: number; from: string; doc: string }>();
  for (const m of section.matchAll(/^\| `(ROLLGATE_[A-Z_]+)` \| (\d+) \| ([^|]+) \| (.+) \|$/gm)) {
    rows.set(m[1] as string, { status: Number(m[2]), from: (m[3] as string).trim(), doc: (m[4] as string).trim() });
  }
  return rows;
}

t.test('the README has an Error codes table', async (t) => {
  t.ok(readmeTable().size > 0, 'a "### Error codes" section with a table of codes');
});

t.test('every code in src/errors.ts is in the README table, with its status, origin and meaning', async (t) => {
  const rows = readmeTable();
  for (const [code, e] of Object.entries(ERRORS)) {
    const row = rows.get(code);
    t.ok(row !== undefined, `${code} is documented`);
    if (row !== undefined) t.same(row, { status: e.status, from: e.from, doc: e.doc }, `${code}: the same status, origin and meaning`);
  }
});

t.test('the README lists no code that src/errors.ts does not have', async (t) => {
  const extra = [...readmeTable().keys()].filter((code) => !Object.hasOwn(ERRORS, code));
  t.same(extra, [], 'no unknown code');
});

t.test('every ROLLGATE_* code used in src/ is in the table', async (t) => {
  // Environment variable names share the prefix; they are not error codes.
  const NOT_CODES = new Set(['ROLLGATE_ADMIN_URL', 'ROLLGATE_ADMIN_TOKEN']);
  const src = fileURLToPath(new URL('../../src/', import.meta.url));
  const used = new Set<string>();
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/'(ROLLGATE_[A-Z_]+)'/g)) used.add(m[1] as string);
  }
  const missing = [...used].filter((code) => !NOT_CODES.has(code) && !Object.hasOwn(ERRORS, code));
  t.same(missing, [], 'no code outside the table');
  t.ok(used.size >= 10, `found the codes in use (${used.size})`);
});

t.test('the admin plane answers an error by its code: one mapping, as a table', async (t) => {
  const refusal = new RolloutRefusal('route plain has no candidate to promote');
  const coded = Object.assign(new Error('route x has no version or revision v9'), { code: 'ROLLGATE_UNKNOWN_VERSION' });
  const validation = (keyword: string, instancePath: string, params: object, message: string) =>
    Object.assign(new Error(message), { validation: [{ keyword, instancePath, params, message, schemaPath: '' }], validationContext: 'body' });
  const boom = new TypeError('boom');
  const cases: [string, unknown, number, string, string][] = [
    ['a RollgateError', refusal, 409, 'ROLLGATE_CONFLICT', 'route plain has no candidate to promote'],
    ['any error with a ROLLGATE_* code', coded, 404, 'ROLLGATE_UNKNOWN_VERSION', 'route x has no version or revision v9'],
    ['a range', validation('maximum', '/weight', { limit: 100 }, 'must be <= 100'), 400, 'ROLLGATE_BAD_REQUEST', 'body.weight: must be <= 100'],
    ['two decimals', validation('multipleOf', '/weight', { multipleOf: 0.01 }, 'must be multiple of 0.01'), 400, 'ROLLGATE_BAD_REQUEST', 'body.weight: must have at most two decimals'],
    ['a missing field', validation('required', '', { missingProperty: 'weight' }, "must have required property 'weight'"), 400, 'ROLLGATE_BAD_REQUEST', "body.weight: must have required property 'weight'"],
    ['not an object', validation('type', '', { type: 'object' }, 'must be object'), 400, 'ROLLGATE_BAD_REQUEST', 'body: must be object'],
    ['a body too large', Object.assign(new Error('too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), 413, 'ROLLGATE_BODY_TOO_LARGE', 'the body is over 65536 bytes'],
    ['malformed JSON', Object.assign(new Error('Unexpected end of JSON input'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400 }), 400, 'ROLLGATE_BAD_REQUEST', 'body: Unexpected end of JSON input'],
    ['another media type', Object.assign(new Error('Unsupported Media Type'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), 400, 'ROLLGATE_BAD_REQUEST', 'body: Unsupported Media Type'],
    ['anything else', boom, 500, 'ROLLGATE_INTERNAL', 'boom'],
    ['a thrown string', 'oops', 500, 'ROLLGATE_INTERNAL', 'oops'],
  ];
  for (const [what, err, status, code, message] of cases) {
    const mapped = adminFailure(err, 64 * 1024);
    t.same([mapped.status, mapped.code, mapped.message], [status, code, message], what);
    if (mapped !== err) t.equal(mapped.cause, err, `${what}: the original is kept as the cause`);
  }
  t.equal(adminFailure(refusal, 1), refusal, 'a RollgateError is answered as it is');
});

t.test('an unexpected failure is a 500 ROLLGATE_INTERNAL, logged once with its cause', async (t) => {
  const boom = new TypeError('boom');
  // Only what the admin plane calls on its way to the failure.
  const rollouts = { route: () => { throw boom; }, routes: () => [], subscribe: () => () => {} } as unknown as Rollouts<unknown>;
  const logged: { obj: Record<string, unknown>; msg: string }[] = [];
  const app = buildAdmin({ config: {} as GatewayConfig, rollouts, token: 'x', ready: () => true, log: { error: (obj, msg) => logged.push({ obj: obj as Record<string, unknown>, msg }) } });
  t.teardown(() => app.close());
  const r = await app.inject({ method: 'GET', url: '/api/routes/sentiment', headers: { authorization: 'Bearer x' } });
  t.equal(r.statusCode, 500);
  t.same(r.json(), { error: { code: 'ROLLGATE_INTERNAL', message: 'boom' } });
  t.equal(logged.length, 1, 'logged once');
  t.equal(logged[0]?.obj.err, boom, 'with the original error');
  t.match(logged[0]?.obj, { method: 'GET', url: '/api/routes/sentiment' });
  const refused = await app.inject({ method: 'GET', url: '/api/routes/sentiment', headers: { authorization: 'Bearer y' } });
  t.equal(refused.statusCode, 401, 'a refusal is not logged');
  t.equal(logged.length, 1);
});
