import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';

/*
 * The admin plane's schema compilers. It answers a few calls a minute, so nothing is compiled
 * for it at start: Fastify would otherwise build a fast-json-stringify serializer for every
 * response schema and an ajv validator for every request part before the first call (about
 * 0.3 s of CPU and, through the young generation it grows, tens of MB of a sidecar's memory).
 */

/**
 * Answers with JSON.stringify. The response schemas still describe the answers in /docs and in
 * the handlers' types; every handler answers with exactly the fields they list.
 */
export const stringifyAnswers: FastifySerializerCompiler<unknown> = () => (data) => JSON.stringify(data);

let shared: Ajv | undefined;

/**
 * Fastify's own ajv options (coercion of query strings and params, defaults filled in, one error
 * at a time so that a hostile body cannot make the validator work harder) with the admin plane's
 * two changes: multipleOfPrecision (0.29 is a multiple of 0.01 although 0.29 / 0.01 is
 * 28.999999999999996, as in the config file's validator) and removeAdditional: false, so that a
 * field the API does not take (a hook, say) is refused with a 400 rather than dropped in silence.
 */
function adminAjv(): Ajv {
  shared ??= new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, addUsedSchema: false, allErrors: false, multipleOfPrecision: 6 });
  return shared;
}

/** Compiles a request part's validator on the first request that needs it. */
export const validateOnFirstUse: FastifySchemaCompiler<AnySchema> = ({ schema }) => {
  let compiled: ValidateFunction | undefined;
  const validate = (data: unknown): boolean => {
    compiled ??= adminAjv().compile(schema);
    const valid = compiled(data);
    validate.errors = compiled.errors;
    return valid;
  };
  validate.errors = null as ErrorObject[] | null | undefined;
  return validate;
};
