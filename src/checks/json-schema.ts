import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/**
 * The JSON Schemas of `checks.json`, compiled once each: one Ajv instance for every route, and a
 * cache keyed by the schema object the config holds, so a route rebuilt from the same config
 * compiles nothing again.
 */
let ajv: Ajv | undefined;
const compiled = new WeakMap<object, ValidateFunction>();

function instance(): Ajv {
  // strict: false, as users' schemas carry keywords of their own tools (examples, x-*), which are
  // no error; an unknown type or a malformed keyword still is.
  ajv ??= new Ajv({ allErrors: false, strict: false, validateSchema: true });
  return ajv;
}

/**
 * The compiled validator of `schema`. Each schema stands alone: Ajv forgets it once compiled, so
 * that two routes (or two loads of one config) may use schemas with the same `$id`.
 * @throws Error when it is not a valid JSON Schema.
 */
export function compileSchema(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (v === undefined) {
    const a = instance();
    try {
      v = a.compile(schema);
    } finally {
      a.removeSchema(schema);
    }
    compiled.set(schema, v);
  }
  return v;
}

/** Why a schema does not compile, in one line; null when it does. */
export function schemaProblem(schema: unknown): string | null {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return 'must be a JSON Schema object';
  try {
    compileSchema(schema);
    return null;
  } catch (err) {
    return `is not a valid JSON Schema: ${(err as Error).message.split('\n')[0] ?? ''}`;
  }
}

/** The first validation error as `<instance path> <message>`, the path `/` for the document itself. */
export function describeSchemaError(errors: readonly ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (e === undefined) return '/ is not valid';
  return `${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? 'is not valid'}`;
}
