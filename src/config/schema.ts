import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ROUTE_NAME, SNAPSHOT_ID, STRATEGIES, VERSION_LABEL } from '../shapes.js';

/*
 * The YAML shape users write (SPEC §3), as JSON Schema. Besides standard keywords it uses three
 * of our own, which load.ts registers with ajv:
 *   x-message   the message for any failure of this value's own keywords (type, range, format);
 *               not for unknown or missing keys inside it
 *   x-check     the name of a check in VALUE_CHECKS, for string values
 *   x-duration  { min, exclusive? }: a duration string and its lower bound in milliseconds
 */

/** Checks of string values named by `x-check`; each returns a problem message or null. */
export const VALUE_CHECKS: Record<string, (value: string) => string | null> = {
  'http-url': (v) => checkUrl(v, ['http:', 'https:'], 'must be an http(s) URL'),
  'redis-url': (v) => checkUrl(v, ['redis:', 'rediss:'], 'must be a redis:// or rediss:// URL'),
  'path-prefix': (v) =>
    !v.startsWith('/') ? 'must start with /' : /[?#]/.test(v) ? 'must not contain ? or #' : null,
  'http-path': (v) => (v.startsWith('/') ? null : 'must start with /'),
  // The override header takes these two words as roles, so a version may not be called so.
  'version-label': (v) =>
    /^(stable|candidate)$/i.test(v) ? 'must not be "stable" or "candidate" (reserved words)' : null,
};

function checkUrl(value: string, schemes: string[], message: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return message;
  }
  if (!schemes.includes(url.protocol)) return message;
  // WHATWG parsing turns `http:///x` into host `x`; demand the slashes and a host explicitly.
  if (!/^[a-z]+:\/\/[^/?#]/i.test(value) || url.hostname === '') return `${message} with a host`;
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (value.includes('?')) return 'must not have a query string';
  if (value.includes('#')) return 'must not have a fragment';
  return null;
}

/** The message for anything that is not a duration string. */
export const DURATION_MESSAGE = 'must be a duration like 250ms, 5s or 2m';
const Duration = (min: number, exclusive = false) =>
  Type.String({ 'x-duration': { min, exclusive }, 'x-message': DURATION_MESSAGE });
const PositiveDuration = () => Duration(0, true);

const Percent = (message: string, minimum: { exclusiveMinimum: number } | { minimum: number }) =>
  Type.Number({ ...minimum, maximum: 100, multipleOf: 0.01, 'x-message': message });
const Int = (minimum: number, maximum?: number) =>
  Type.Integer({
    minimum,
    ...(maximum === undefined ? {} : { maximum }),
    'x-message':
      maximum === undefined
        ? `must be an integer of at least ${minimum}`
        : `must be an integer between ${minimum} and ${maximum}`,
  });
const Num = (message: string, range: Record<string, number>) =>
  Type.Number({ ...range, 'x-message': message });
const Str = (message: string, pattern?: RegExp, check?: string) =>
  Type.String({
    minLength: 1,
    ...(pattern ? { pattern: pattern.source } : {}),
    ...(check ? { 'x-check': check } : {}),
    'x-message': message,
  });
const Obj = <T extends Record<string, TSchema>>(properties: T, options: object = {}) =>
  Type.Object(properties, { ...options, additionalProperties: false });
const OneOf = <const T extends string>(values: readonly T[]) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], 'x-message': `must be one of ${values.join(', ')}` });
const Flag = () => Type.Boolean({ 'x-message': 'must be true or false' });

const HttpUrl = () => Str('must be an http(s) URL', undefined, 'http-url');
const Host = () => Str('must be a host name or IP address', /^[^\s/?#@]+$/);
const Port = () => Int(0, 65535);
/** The data plane's processes: a count, or `auto` for one per core. */
export const MAX_WORKERS = 64;
const WORKERS_MESSAGE = `must be an integer between 1 and ${MAX_WORKERS}, or auto (one per core)`;
const Workers = () =>
  Type.Unsafe<number | 'auto'>({
    anyOf: [
      { type: 'integer', minimum: 1, maximum: MAX_WORKERS, 'x-message': WORKERS_MESSAGE },
      { type: 'string', enum: ['auto'], 'x-message': WORKERS_MESSAGE },
    ],
  });
const Label = () =>
  Str(
    'must be 1-64 letters, digits or _.:+- starting with a letter or digit',
    VERSION_LABEL,
    'version-label',
  );

const Data = () =>
  Type.Optional(Obj({ snapshot: Str('must be 1-128 letters, digits or _.:@/+-', SNAPSHOT_ID) }));
const PROTOCOLS = ['http1', 'h2c', 'h2'] as const;
const Protocol = () => Type.Optional(OneOf(PROTOCOLS));
const VersionSchema = Obj({ version: Label(), url: HttpUrl(), data: Data(), protocol: Protocol() });
const CandidateSchema = Obj({
  version: Label(),
  url: HttpUrl(),
  data: Data(),
  protocol: Protocol(),
  weight: Type.Optional(
    Percent('must be between 0 and 100 with at most two decimals', { minimum: 0 }),
  ),
});

// One object for both kinds of action, so a wrong kind gives one message; which keys each kind
// needs is checked in rules.ts.
const HookAction = () =>
  Obj({
    kind: OneOf(['exec', 'http']),
    command: Type.Optional(Type.Array(Str('must be a non-empty string'), { minItems: 1, 'x-message': 'must be a non-empty list: the program, then its arguments' })),
    url: Type.Optional(HttpUrl()),
    timeout: Type.Optional(PositiveDuration()),
    maxAttempts: Type.Optional(Int(1, 100)),
  });
const HookList = () => Type.Optional(Type.Array(HookAction()));
const HooksSchema = Obj({ beforeTraffic: HookList(), afterRollback: HookList(), afterPromote: HookList() });

const RollbackSchema = Obj({
  alpha: Type.Optional(Num('must be a number above 0 and below 0.5', { exclusiveMinimum: 0, exclusiveMaximum: 0.5 })),
  consecutiveFailures: Type.Optional(Int(1)),
  errorRate: Type.Optional(
    Obj({
      tolerance: Type.Optional(Num('must be a number of at least 1', { minimum: 1 })),
      maxAbsolute: Type.Optional(Num('must be a number above 0 and at most 1', { exclusiveMinimum: 0, maximum: 1 })),
    }),
  ),
  latency: Type.Optional(
    Obj({
      quantiles: Type.Optional(
        Type.Array(Num('must be a number above 0 and below 1', { exclusiveMinimum: 0, exclusiveMaximum: 1 }), {
          minItems: 1,
          uniqueItems: true,
        }),
      ),
      tolerance: Type.Optional(Num('must be a number of at least 1', { minimum: 1 })),
      minDelta: Type.Optional(Duration(0)),
    }),
  ),
  warmup: Type.Optional(Int(0)),
  window: Type.Optional(Duration(1000)),
});

// The schema itself is checked (and a file path read) in checks.ts, which can say why it is not one.
const ChecksSchema = Obj({
  json: Type.Optional(
    Obj({
      schema: Type.Unknown(),
      maxBytes: Type.Optional(Int(1, 67_108_864)),
      holdForReplay: Type.Optional(Flag()),
    }),
  ),
  llm: Type.Optional(Obj({ format: OneOf(['openai']) })),
});
const AgreementSchema = Obj({
  pointer: Type.String({ 'x-message': 'must be a JSON Pointer: empty, or starting with / (RFC 6901)' }),
  numericTolerance: Type.Optional(Num('must be a number of at least 0', { minimum: 0 })),
  maxDisagreement: Type.Optional(Num('must be a number above 0 and below 1', { exclusiveMinimum: 0, exclusiveMaximum: 1 })),
  mirrorPercent: Type.Optional(Num('must be a number between 0 and 100', { minimum: 0, maximum: 100 })),
});

const RouteSchema = Obj({
  name: Str(
    'must be 1-63 letters, digits or _.- starting with a letter or digit',
    ROUTE_NAME,
  ),
  match: Obj({ pathPrefix: Str('must be a path starting with /', undefined, 'path-prefix') }),
  stable: VersionSchema,
  candidate: Type.Optional(CandidateSchema),
  strategy: Type.Optional(OneOf(STRATEGIES)),
  dataHeader: Type.Optional(Str('must be an HTTP header name', /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/)),
  steps: Type.Optional(
    Type.Array(
      Obj({
        weight: Percent('must be above 0 and at most 100 with at most two decimals', { exclusiveMinimum: 0 }),
        bake: PositiveDuration(),
      }),
    ),
  ),
  autoPromote: Type.Optional(Flag()),
  blueGreen: Type.Optional(Obj({ bake: Type.Optional(PositiveDuration()) })),
  shadow: Type.Optional(
    Obj({
      mirrorPercent: Type.Optional(Num('must be a number between 0 and 100', { minimum: 0, maximum: 100 })),
      bake: Type.Optional(PositiveDuration()),
      maxInFlight: Type.Optional(Int(1)),
      maxBodyBytes: Type.Optional(Int(0)),
    }),
  ),
  sticky: Type.Optional(
    Obj({
      header: Type.Optional(Str('must be an HTTP header name', /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/)),
      cookie: Type.Optional(Str('must be a cookie name (letters, digits, !#$%&\'*+-.^_`|~)', /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/)),
    }),
  ),
  allowOverride: Type.Optional(Flag()),
  retryOnStable: Type.Optional(Flag()),
  maxReplayBodyBytes: Type.Optional(Int(0)),
  replayMethods: Type.Optional(Type.Array(Str('must be an HTTP method name (letters only)', /^[A-Za-z]+$/))),
  timeouts: Type.Optional(
    Obj({ connect: Type.Optional(PositiveDuration()), response: Type.Optional(PositiveDuration()) }),
  ),
  healthCheck: Type.Optional(
    Obj({
      path: Str('must be a path starting with /', undefined, 'http-path'),
      interval: Type.Optional(PositiveDuration()),
      timeout: Type.Optional(PositiveDuration()),
      unhealthyAfter: Type.Optional(Int(1)),
    }),
  ),
  rollback: Type.Optional(RollbackSchema),
  hooks: Type.Optional(HooksSchema),
  checks: Type.Optional(ChecksSchema),
  agreement: Type.Optional(AgreementSchema),
  websocket: Type.Optional(Obj({ keepOnRollback: Type.Optional(Flag()) })),
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** JSON Schema of the YAML config file; every object refuses unknown keys. */
export const ConfigSchema = Obj({
  listen: Type.Optional(
    Obj({
      host: Type.Optional(Host()),
      port: Type.Optional(Port()),
      workers: Type.Optional(Workers()),
      memory: Type.Optional(OneOf(['lean', 'fast'] as const)),
      drainTimeout: Type.Optional(Duration(0)),
      headersTimeout: Type.Optional(PositiveDuration()),
      requestTimeout: Type.Optional(PositiveDuration()),
      idleTimeout: Type.Optional(PositiveDuration()),
      // The files are read in tls.ts, which says why one cannot be used.
      tls: Type.Optional(Obj({ cert: Str('must be a file path'), key: Str('must be a file path') })),
    }),
  ),
  admin: Type.Optional(
    Obj({
      host: Type.Optional(Host()),
      port: Type.Optional(Port()),
      tokenEnv: Type.Optional(Str('must be an environment variable name', /^[A-Za-z_][A-Za-z0-9_]*$/)),
    }),
  ),
  // One object for every kind, so a wrong kind gives one message, not a cascade from each
  // branch of a union; which keys each kind needs is checked in load.ts.
  store: Type.Optional(
    Obj({
      kind: OneOf(['memory', 'file', 'redis']),
      path: Type.Optional(Str('must be a file path')),
      url: Type.Optional(Str('must be a redis:// or rediss:// URL', undefined, 'redis-url')),
      prefix: Type.Optional(Str('must be letters, digits or _.:-', /^[A-Za-z0-9_.:-]+$/)),
      maxReplicas: Type.Optional(Int(1, 1000)),
    }),
  ),
  notify: Type.Optional(Type.Array(Obj({ kind: OneOf(['webhook']), url: HttpUrl() }))),
  log: Type.Optional(Obj({ level: Type.Optional(OneOf(LOG_LEVELS)) })),
  routes: Type.Array(RouteSchema, { minItems: 1, 'x-message': 'must be a non-empty list of routes' }),
}, { 'x-message': 'must be a mapping with at least a routes key' });

/** The config file as written, after schema validation and before defaults. */
export type ConfigInput = Static<typeof ConfigSchema>;
/** One route as written. */
export type RouteInput = ConfigInput['routes'][number];
