import { Kind, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, ValueErrorType, type ValueError } from '@sinclair/typebox/compiler';

/**
 * A record read back (a state file, a Redis hash, a channel message) that is not what rollgate
 * writes. `source` says where it came from (`state file <path>`, `redis key <key>`, ...) and
 * each problem names its key path: `routes.m.phase: must be one of stable, ...`.
 */
export class RecordError extends Error {
  override readonly name = 'RecordError';
  readonly source: string;
  readonly problems: string[];

  constructor(source: string, problems: string[]) {
    super(`${source}: ${problems.join('; ')}`);
    this.source = source;
    this.problems = problems;
  }
}

/** A compiled check of one kind of record: returns the value typed, or throws RecordError. */
export type RecordCheck<T> = (value: unknown, source: string) => T;

/** At most this many problems are named: the first ones say what is wrong, the rest is noise. */
const MAX_PROBLEMS = 5;

/**
 * Compiles `schema` once (records are read at start, on peer news and every 250 ms, never per
 * request) and returns its check.
 */
export function recordCheck<S extends TSchema>(schema: S): RecordCheck<Static<S>> {
  const compiled = TypeCompiler.Compile(schema);
  return (value, source) => {
    if (compiled.Check(value)) return value;
    throw new RecordError(source, problems(compiled.Errors(value), value));
  };
}

/** Parses JSON text, or throws RecordError saying it is not JSON. */
export function parseJson(text: string, source: string, path = ''): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RecordError(source, [`${path === '' ? '' : `${path}: `}not JSON (${(err as Error).message})`]);
  }
}

/** The problems of a value, one `<key path>: <message>` each, first error per key path only. */
function problems(errors: Iterable<ValueError>, root: unknown): string[] {
  const seen = new Map<string, string>();
  for (const e of errors) {
    for (const { path, message } of describe(e)) if (!seen.has(path)) seen.set(path, message);
    if (seen.size >= MAX_PROBLEMS) break;
  }
  return [...seen].slice(0, MAX_PROBLEMS).map(([path, message]) => (path === '' ? message : `${formatPath(path, root)}: ${message}`));
}

/** A union's leaf schemas (unions of unions flattened). */
function leaves(schema: TSchema): TSchema[] {
  return Array.isArray(schema.anyOf) ? (schema.anyOf as TSchema[]).flatMap(leaves) : [schema];
}

const KIND_NAMES: Record<string, string> = {
  Null: 'null',
  Object: 'an object',
  Record: 'an object',
  Array: 'a list',
  String: 'a string',
  Number: 'a number',
  Integer: 'an integer',
  Boolean: 'true or false',
};

const kindName = (s: TSchema): string => (s.const !== undefined ? JSON.stringify(s.const) : (KIND_NAMES[String(s[Kind])] ?? 'something else'));

/**
 * The errors of the union's variant that got furthest into the value (its first error is the
 * deepest): the variant the writer most likely meant, e.g. the object of `object | null`.
 */
function deepest(e: ValueError): ValueError[] | null {
  let best: ValueError[] | null = null;
  for (const variant of e.errors) {
    const errs = [...variant];
    const first = errs[0];
    if (first !== undefined && first.path.length > e.path.length && (best === null || first.path.length > (best[0] as ValueError).path.length)) best = errs;
  }
  return best;
}

function describe(e: ValueError): { path: string; message: string }[] {
  if (e.type === ValueErrorType.Union) {
    const inner = deepest(e);
    if (inner !== null) return inner.flatMap(describe);
  }
  return [describeOne(e)];
}

function describeOne(e: ValueError): { path: string; message: string } {
  const got = e.value === undefined ? '' : ` (got ${shown(e.value)})`;
  const custom = e.schema['x-message'] as string | undefined;
  switch (e.type) {
    case ValueErrorType.Union: {
      const names = leaves(e.schema).map(kindName);
      const list = names.length > 2 ? `one of ${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names.join(' or ');
      return { path: e.path, message: `must be ${list}${got}` };
    }
    case ValueErrorType.ObjectRequiredProperty:
      return { path: e.path, message: 'is required' };
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return { path: e.path, message: `must be at least ${e.schema.minimum}${got}` };
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return { path: e.path, message: `must be at most ${e.schema.maximum}${got}` };
    case ValueErrorType.StringMinLength:
      return { path: e.path, message: 'must not be empty' };
    case ValueErrorType.StringPattern:
      return { path: e.path, message: `${custom ?? `must match ${e.schema.pattern}`}${got}` };
    case ValueErrorType.Literal:
      return { path: e.path, message: `must be ${JSON.stringify(e.schema.const)}${got}` };
  }
  const name = KIND_NAMES[ValueErrorType[e.type] ?? ''];
  return { path: e.path, message: name === undefined ? `${e.message}${got}` : `must be ${name}${got}` };
}

/** A value as a log line shows it: JSON, cut short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** `/routes/m/revisions/0/revision` as `routes.m.revisions[0].revision`, telling indexes by the data. */
function formatPath(pointer: string, root: unknown): string {
  let node = root;
  let out = '';
  for (const part of pointer.slice(1).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) out += `[${key}]`;
    else out += /^[A-Za-z_$][\w$-]*$/.test(key) ? `${out === '' ? '' : '.'}${key}` : `[${JSON.stringify(key)}]`;
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
  }
  return out;
}
