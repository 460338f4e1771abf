import type { FastifyError, FastifyReply } from 'fastify';
import { errorBody, isErrorCode, RollgateError } from '../errors.js';
import { RouteParams, WEIGHT_STEP } from './schemas.js';

const ROUTE_NAME_MAX = RouteParams.properties.route.maxLength;

type Validation = NonNullable<FastifyError['validation']>[number];

/** Our wording where ajv's default says less than it should. */
function validationText(v: Validation | undefined): string {
  if (v === undefined) return 'is invalid';
  if (v.keyword === 'multipleOf' && (v.params as { multipleOf?: unknown }).multipleOf === WEIGHT_STEP) return 'must have at most two decimals';
  if (v.keyword === 'additionalProperties') return 'is not a field this call takes';
  return v.message ?? 'is invalid';
}

/** `body.weight: must be <= 100`: the message names the part of the request and the field. */
function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  const params = first?.params as { missingProperty?: string; additionalProperty?: string } | undefined;
  const path = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : '';
  // The field that is missing or not allowed, under the object that should (not) have it.
  const name = params?.missingProperty ?? params?.additionalProperty;
  const field = name !== undefined ? (path === '' ? name : `${path}.${name}`) : path;
  const context = err.validationContext ?? 'request';
  return `${field ? `${context}.${field}` : context}: ${validationText(first)}`;
}

/**
 * What the admin plane answers for an error, decided by its code alone: a `ROLLGATE_*` code
 * keeps its code (and so its status from the table); Fastify's validation and body errors become
 * ROLLGATE_BAD_REQUEST or ROLLGATE_BODY_TOO_LARGE; anything else is ROLLGATE_INTERNAL. A new
 * error keeps the one it replaces as its cause.
 */
export function adminFailure(err: unknown, bodyLimit: number): RollgateError {
  if (err instanceof RollgateError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as Partial<FastifyError>;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (isErrorCode(e.code)) return new RollgateError(e.code, message, { cause: err });
  if (e.validation !== undefined) return new RollgateError('ROLLGATE_BAD_REQUEST', validationMessage(e as FastifyError), { cause: err });
  // The router's own refusals, before any route or hook: the only path parameter is a route's name.
  if (e.code === 'FST_ERR_BAD_URL') return new RollgateError('ROLLGATE_BAD_REQUEST', 'url: the path is not valid percent-encoded UTF-8', { cause: err });
  if (e.code === 'FST_ERR_MAX_PARAM_LENGTH') return new RollgateError('ROLLGATE_BAD_REQUEST', `params.route: must NOT have more than ${ROUTE_NAME_MAX} characters`, { cause: err });
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new RollgateError('ROLLGATE_BODY_TOO_LARGE', `the body is over ${bodyLimit} bytes`, { cause: err });
  if (e.statusCode === 400 || e.code?.startsWith('FST_ERR_CTP') === true) return new RollgateError('ROLLGATE_BAD_REQUEST', `body: ${message}`, { cause: err });
  return new RollgateError('ROLLGATE_INTERNAL', message, { cause: err });
}

/** Sends an error answer: its status from the table, its body from errors.ts's one helper. */
export function sendFailure(reply: FastifyReply, err: RollgateError): FastifyReply {
  return reply.code(err.status).type('application/json; charset=utf-8').send(errorBody(err.code, err.message));
}
