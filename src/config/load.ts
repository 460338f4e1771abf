import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type SchemaValidateFunction, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { RollgateError } from '../errors.js';
import { applyDefaults } from './defaults.js';
import { formatDuration, parseDuration } from './duration.js';
import { ConfigSchema, DURATION_MESSAGE, VALUE_CHECKS, type ConfigInput } from './schema.js';
import type { GatewayConfig } from './types.js';
import { crossChecks, isObj, type Problem, type Segment } from './rules.js';
import { resolveChecks } from './checks.js';
import { resolveTls } from './tls.js';
import { dirname } from 'node:path';

/** A config that cannot be used; `problems` lists every reason, one `<key path>: <message>` each. */
export class ConfigError extends RollgateError {
  override readonly name = 'ConfigError';
  readonly problems: string[];

  constructor(problems: string[], source?: string, options?: { cause?: unknown }) {
    const where = source === undefined ? 'invalid config' : `invalid config ${source}`;
    super('ROLLGATE_INVALID_CONFIG', `${where}:\n${problems.map((p) => `  ${p}`).join('\n')}`, options);
    this.problems = problems;
  }
}

/**
 * The compiled config validator, held weakly: a config is validated once at start (and a test
 * validates hundreds in a row), and a running gateway should not keep ajv's generated code and
 * schema caches for the rest of its life. The collector drops it at its next full collection
 * once no validation is under way; the next validation compiles it again.
 */
let compiled: WeakRef<ValidateFunction> | undefined;

/** An ajv keyword whose check returns a problem message, or null when the value is fine. */
function messageKeyword<S, D>(keyword: string, check: (schema: S, data: D) => string | null) {
  const validate: SchemaValidateFunction = (schema: S, data: D) => {
    const message = check(schema, data);
    validate.errors = message === null ? [] : [{ keyword, message, params: {} }];
    return message === null;
  };
  return validate;
}

function validator(): ValidateFunction {
  const held = compiled?.deref();
  if (held !== undefined) return held;
  // multipleOfPrecision: 0.29 is a multiple of 0.01 although 0.29 / 0.01 is 28.999999999999996.
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, multipleOfPrecision: 6 });
  ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
  ajv.addKeyword({
    keyword: 'x-check',
    type: 'string',
    schemaType: 'string',
    errors: true,
    validate: messageKeyword('x-check', (name: string, data: string) => VALUE_CHECKS[name]?.(data) ?? null),
  });
  ajv.addKeyword({
    keyword: 'x-duration',
    type: 'string',
    schemaType: 'object',
    errors: true,
    validate: messageKeyword('x-duration', (spec: { min: number; exclusive: boolean }, data: string) => {
      const ms = parseDuration(data);
      if (ms === null) return DURATION_MESSAGE;
      if (spec.exclusive && ms <= spec.min) return `must be longer than ${formatDuration(spec.min)}`;
      if (ms < spec.min) return `must be at least ${formatDuration(spec.min)}`;
      return null;
    }),
  });
  const validate = ajv.compile(ConfigSchema);
  compiled = new WeakRef(validate);
  return validate;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping of keys',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
};

function fromAjv(e: ErrorObject, raw: unknown): Problem | null {
  const path = pointerPath(e.instancePath, raw);
  const schema = e.parentSchema as { 'x-message'?: string; properties?: object } | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      const hint = closest(key, Object.keys(schema?.properties ?? {}));
      return { path: [...path, key], message: hint ? `unknown key (did you mean ${hint}?)` : 'unknown key' };
    }
    case 'required':
      return { path: [...path, String(e.params.missingProperty)], message: 'is required' };
    case 'x-check':
    case 'x-duration':
      return { path, message: e.message ?? DURATION_MESSAGE };
    case 'anyOf':
    case 'oneOf':
      return null; // the failing branches have reported the real problem
  }
  if (schema?.['x-message'] !== undefined) return { path, message: schema['x-message'] };
  if (e.keyword === 'type') return { path, message: `must be ${TYPE_NAMES[String(e.params.type)] ?? e.params.type}` };
  if (e.keyword === 'uniqueItems') {
    const [first, again] = [e.params.i, e.params.j].map(Number).sort((x, y) => x - y) as [number, number];
    return { path: [...path, again], message: `duplicates ${formatPath([...path, first])}` };
  }
  return { path, message: e.message ?? 'is not valid' };
}

/** `/routes/0/stable` to ['routes', 0, 'stable'], telling array indexes by the data itself. */
function pointerPath(pointer: string, raw: unknown): Segment[] {
  if (pointer === '') return [];
  const out: Segment[] = [];
  let node = raw;
  for (const part of pointer.slice(1).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    const seg = Array.isArray(node) ? Number(key) : key;
    out.push(seg);
    node = (node as Record<Segment, unknown> | undefined)?.[seg];
  }
  return out;
}

/** Optimal string alignment distance: edits needed, a swap of neighbours counting as one. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const swap = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? d[i - 2]![j - 2]! + 1 : Infinity;
      const change = d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, change, swap);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key a typo most likely meant, if one is within reach. */
function closest(key: string, known: string[]): string | undefined {
  const ranked = known
    .map((k) => ({ k, d: distance(key.toLowerCase(), k.toLowerCase()) }))
    .sort((x, y) => x.d - y.d);
  return ranked[0] && ranked[0].d <= (key.length <= 4 ? 1 : 2) ? ranked[0].k : undefined;
}

/** Where a key path sits in the data, as indexes in document order; a missing key sorts last. */
function position(raw: unknown, path: Segment[]): number[] {
  const out: number[] = [];
  let node = raw;
  for (const seg of path) {
    if (Array.isArray(node)) out.push(Number(seg));
    else if (isObj(node)) {
      const index = Object.keys(node).indexOf(String(seg));
      out.push(index === -1 ? Number.MAX_SAFE_INTEGER : index);
    } else out.push(Number.MAX_SAFE_INTEGER);
    node = (node as Record<Segment, unknown> | undefined)?.[seg];
  }
  return out;
}

function comparePositions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** `['routes', 0, 'stable', 'url']` as `routes[0].stable.url`. */
function formatPath(path: Segment[]): string {
  if (path.length === 0) return 'config';
  return path
    .map((seg, i) =>
      typeof seg === 'number' ? `[${seg}]` : /^[A-Za-z_$][\w$-]*$/.test(seg) ? `${i ? '.' : ''}${seg}` : `[${JSON.stringify(seg)}]`,
    )
    .join('');
}

/**
 * Validates a parsed config document (as YAML or JSON gives it), fills defaults and normalises it.
 * @throws ConfigError listing every problem found, in document order.
 */
export function parseConfig(raw: unknown, source?: string, baseDir = source === undefined ? process.cwd() : dirname(source)): GatewayConfig {
  const validate = validator();
  const found: Problem[] = validate(raw) ? [] : (validate.errors ?? []).flatMap((e) => fromAjv(e, raw) ?? []);
  found.push(...crossChecks(raw));
  const checks = resolveChecks(raw, baseDir);
  found.push(...checks.problems);
  const tls = resolveTls(raw, baseDir);
  found.push(...tls.problems);
  if (found.length === 0) return applyDefaults(raw as ConfigInput, checks.schemas, tls.tls);
  const ranked = found
    .map((p) => ({ line: `${formatPath(p.path)}: ${p.message}`, at: position(raw, p.path) }))
    .sort((a, b) => comparePositions(a.at, b.at));
  throw new ConfigError([...new Set(ranked.map((p) => p.line))], source);
}

/**
 * Parses YAML text and then the config in it. YAML syntax errors are reported as
 * `<source>:<line>:<column>: <message>`.
 * @throws ConfigError
 */
export function parseConfigText(text: string, source: string): GatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `${source}:${line}:${col}: ${e.message.split('\n')[0]}`;
      }),
      source,
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    throw new ConfigError([`${source}: ${(err as Error).message}`], source, { cause: err });
  }
  return parseConfig(raw, source);
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
};

/**
 * Reads, validates and normalises a YAML config file.
 * @throws ConfigError, also for a file that cannot be read (`cannot read <path>: <reason>`).
 */
export function loadConfigFile(path: string): GatewayConfig {
  return parseConfigText(readConfigText(path), path);
}

/** A config file's text. @throws ConfigError when it cannot be read */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    throw new ConfigError([`cannot read ${path}: ${READ_ERRORS[code ?? ''] ?? message}`], path, { cause: err });
  }
}
