import fc from 'fast-check';
import { ERRORS, isErrorCode } from '../../src/errors.js';
import type { Framing, RawAnswer, RawResult } from './raw-http.js';

/*
 * What the fuzz tests share: the seed and run counts (fixed by default so that a run in CI is
 * repeatable; ROLLGATE_FUZZ_SEED and ROLLGATE_FUZZ_RUNS change them) and the generators of the
 * parts of an HTTP request.
 */

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, not ${v}`);
  return n;
}

export const FUZZ_SEED = envInt('ROLLGATE_FUZZ_SEED') ?? 20_240_611;

/**
 * fast-check's parameters for a property that runs `defaultRuns` times. ROLLGATE_FUZZ_RUNS sets
 * the runs of every property instead; one that costs `cost` times more per run (a process
 * started per run) takes that many fewer. A failure prints the seed and the counterexample.
 */
export function fuzzParams(defaultRuns: number, cost = 1): { seed: number; numRuns: number } {
  const runs = envInt('ROLLGATE_FUZZ_RUNS');
  return { seed: FUZZ_SEED, numRuns: runs === undefined ? defaultRuns : Math.max(1, Math.round(runs / cost)) };
}

/** An HTTP method: mostly the usual ones, then rarer or lowercase ones, then any letters. */
export const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT') },
  { weight: 2, arbitrary: fc.constantFrom('HEAD', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'PURGE', 'CONNECT', 'get', 'Post') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z-]{1,12}$/) },
);

/** A header line's value: plain text, any Unicode, control characters, or a very long one. */
export const headerValueArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40, unit: 'grapheme-ascii' }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 20, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 12_000 }).map((n) => 'v'.repeat(n)) },
);

/** A header name: a valid token, a known name in odd case, or any text (a malformed line). */
export const headerNameArb = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,24}$/) },
  { weight: 1, arbitrary: fc.constantFrom('Content-Type', 'ACCEPT', 'x-request-id', 'Cookie', 'Origin', 'Range', 'X-Forwarded-For') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

/** Headers with names a server treats specially, and values near what they should hold. */
export const specialHeaderArb: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(fc.constant('Expect'), fc.constantFrom('100-continue', '100-Continue', 'nonsense', '')),
  fc.tuple(fc.constant('Connection'), fc.constantFrom('keep-alive', 'Upgrade', 'close, x-request-id', 'host', 'te, trailer', 'authorization', 'content-type', ',,,')),
  fc.tuple(fc.constant('Upgrade'), fc.constantFrom('websocket', 'h2c', 'HTTP/2.0')),
  fc.tuple(fc.constant('TE'), fc.constantFrom('trailers', 'gzip', 'chunked')),
  fc.tuple(fc.constant('Keep-Alive'), fc.constantFrom('timeout=5', 'max=0', '')),
  fc.tuple(fc.constant('Host'), fc.constantFrom('', 'a b', 'example.com:99999', '[::1]', '127.0.0.1')),
  fc.tuple(fc.constant('Content-Encoding'), fc.constantFrom('gzip', 'br', 'identity', 'x')),
  fc.tuple(fc.constant('Accept-Encoding'), fc.constantFrom('gzip', 'br, gzip;q=0', '*')),
  fc.tuple(fc.constant('X-Forwarded-For'), fc.constantFrom('1.2.3.4', 'not-an-ip', '::1, 10.0.0.1', '')),
  fc.tuple(fc.constant('x-request-id'), headerValueArb),
  fc.tuple(fc.constant('Cookie'), fc.constantFrom('uid=1', 'uid=', '=;;=', 'a=b; uid=\u00e9')),
);

/** Any extra headers: special ones and arbitrary ones, a few at most. */
export const extraHeadersArb = fc.array(
  fc.oneof({ weight: 2, arbitrary: specialHeaderArb }, { weight: 1, arbitrary: fc.tuple(headerNameArb, headerValueArb) }),
  { maxLength: 4 },
);

/** A Content-Type: JSON as it is usually written and as it may be, other types, nonsense. */
export const contentTypeArb: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constant(null) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/json; charset=latin1',
      'application/json;',
      'application/json ; charset="utf-8"',
      'application/vnd.api+json',
      'application/jsonx',
      'text/plain',
      'text/plain; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      '',
      ';',
      '*/*',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

/** How the body is framed; a Content-Length is never above the body's length (that is a slow client, not bad input). */
export function framingArb(bodyLength: number): fc.Arbitrary<Framing> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant<Framing>({ kind: 'length' }) },
    { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'chunked' }) },
    { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'bad-chunk' }) },
    { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'none' }) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.constantFrom('abc', '-1', '1e3', '0x10', '+1', '', ' ', '1.0', '18446744073709551616'),
        fc.nat(bodyLength).map((n) => String(n)),
        fc.nat(bodyLength).map((n) => `000${n}`),
      ).map((value): Framing => ({ kind: 'header', value })),
    },
  );
}

/** A number where a weight belongs: in range, out of it, odd, or not a number at all. */
export const weirdNumberArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -10, max: 110 }) },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 100, 100.01, 50.005, 33.33, 0.1 + 0.2, 1e308, -0, 5e-324, 2 ** 53, 12.345) },
  { weight: 1, arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e3', '50', '0x10', '', ' 5') },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }), fc.object({ maxDepth: 1 })) },
);

/** JSON text that JSON.stringify cannot make: number literals out of range, duplicate or poisoned keys. */
export const trickyJsonTextArb = fc.constantFrom(
  '{"weight": NaN}',
  '{"weight": 1e999}',
  '{"weight": -1e999}',
  '{"weight": 1e-999}',
  '{"weight": 50, "weight": 150}',
  '{"weight": 0.1e1}',
  '{"__proto__": {"weight": 1}}',
  '{"constructor": {"prototype": {"weight": 1}}}',
  '{"version": "v9", "url": "http://127.0.0.1:1", "__proto__": {"x": 1}}',
  '{"weight": 5',
  '{"weight": 5}}',
  '{"weight": 5} trailing',
  "{'weight': 5}",
  '\ufeff{"weight": 5}',
  '{"weight": "\\ud800"}',
  'null',
  '[]',
  '""',
  '0',
  'true',
);

/** Deep nesting, within the admin API's 64 KiB, and a body over it. */
export const deepJsonTextArb = fc.oneof(
  fc.integer({ min: 1, max: 32_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 10_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.integer({ min: 65_000, max: 70_000 }).map((n) => JSON.stringify({ weight: 5, pad: 'x'.repeat(n) })),
);

/** A body's bytes from a JSON value, JSON-ish text or any bytes. */
export function bodyArb(shaped: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 10, arbitrary: shaped.map((v) => Buffer.from(JSON.stringify(v) ?? '', 'utf8')) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v), 'utf8')) },
    { weight: 2, arbitrary: trickyJsonTextArb.map((s) => Buffer.from(s, 'utf8')) },
    { weight: 1, arbitrary: deepJsonTextArb.map((s) => Buffer.from(s, 'utf8')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  );
}

/** Percent-encodes the characters of `path` that `pick` says to (a way round prefix checks). */
export function percentEncoded(path: string, pick: boolean[]): string {
  return [...path]
    .map((c, i) => (pick[i % Math.max(1, pick.length)] === true && c !== '/' ? `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}` : c))
    .join('');
}

/** Ways to spell a path that a careless router or prefix check could read differently. */
export function pathVariantArb(path: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant(path) },
    { weight: 3, arbitrary: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }).map((pick) => percentEncoded(path, pick)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        `${path}/`,
        `/${path}`,
        path.toUpperCase(),
        path.replace(/^\/api\//, '/api/./'),
        path.replace(/^\/api\//, '/x/../api/'),
        path.replace(/^\/api\//, '/api//'),
        `${path};x=1`,
        `${path}#frag`,
        `${path}%00`,
        `${path}%`,
        `${path}%zz`,
        `${path}%E0%A4%A`,
        `http://127.0.0.1${path}`,
        `//127.0.0.1${path}`,
        path.replaceAll('/', '\\'),
      ),
    },
    { weight: 1, arbitrary: fc.webQueryParameters().map((q) => `${path}?${q}`) },
  );
}

/** A path nothing routes to: web-like, any Unicode, `..`, or very long. */
export const wildPathArb = fc.oneof(
  fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
  fc.string({ maxLength: 30, unit: 'grapheme' }).map((s) => `/${s}`),
  fc.array(fc.constantFrom('..', '.', '%2e%2e', '%2F', '~', 'api', 'routes', ''), { maxLength: 6 }).map((parts) => `/${parts.join('/')}`),
  fc.integer({ min: 100, max: 20_000 }).map((n) => `/${'a'.repeat(n)}`),
  fc.constantFrom('*', '', 'api/routes', 'http://', 'http://[::1', '/?', '/#'),
);

/** Whether an answer is an error in the project's shape: `{"error": {"code", "message"}}`, the code's status its own. */
export function errorShapeProblem(answer: RawAnswer): string | null {
  let body: unknown;
  try {
    body = JSON.parse(answer.body.toString('utf8'));
  } catch {
    return `the body is not JSON: ${JSON.stringify(answer.body.toString('latin1', 0, 200))}`;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error !== 'object' || error === null) return `no error object: ${JSON.stringify(body).slice(0, 200)}`;
  if (!isErrorCode(error.code)) return `not a ROLLGATE_* code: ${JSON.stringify(error.code)}`;
  if (typeof error.message !== 'string' || error.message === '') return `no message: ${JSON.stringify(body).slice(0, 200)}`;
  if (ERRORS[error.code].status !== answer.status) return `${error.code} is ${ERRORS[error.code].status}, answered with ${answer.status}`;
  return null;
}

/** A one-line account of a raw result for assertion messages. */
export function describe(result: RawResult): string {
  if (result.kind !== 'answer') return `${result.kind} after ${JSON.stringify(result.bytes)}`;
  return `${result.status} ${JSON.stringify(result.body.toString('latin1', 0, 300))}`;
}
