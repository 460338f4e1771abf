/**
 * Every error the gateway answers with, in one table: a stable `ROLLGATE_*` code, the HTTP status
 * and what it means. Error bodies are always `{"error": {"code", "message"}}` (SPEC §6), with
 * extra fields only where they help the caller (the data plane adds `route`).
 */
export const ERRORS = {
  ROLLGATE_NO_ROUTE: { status: 404, doc: 'No route matches the request path.' },
  ROLLGATE_UPSTREAM_UNAVAILABLE: {
    status: 502,
    doc: 'The upstream refused the connection, reset it or closed it before answering.',
  },
  ROLLGATE_UPSTREAM_TIMEOUT: {
    status: 504,
    doc: 'The upstream did not connect within timeouts.connect or answer within timeouts.response.',
  },
  ROLLGATE_UPSTREAM_ERROR: { status: 502, doc: 'The upstream answered something that is not valid HTTP.' },
  ROLLGATE_BAD_REQUEST: { status: 400, doc: 'The admin request is malformed or a field is invalid; the message names the field.' },
  ROLLGATE_UNAUTHORIZED: { status: 401, doc: 'No bearer token, or not the admin token.' },
  ROLLGATE_UNKNOWN_ROUTE: { status: 404, doc: 'No route has that name.' },
  ROLLGATE_UNKNOWN_VERSION: { status: 404, doc: 'The route has no version with that label and no revision with that number.' },
  ROLLGATE_NOT_FOUND: { status: 404, doc: 'No such admin endpoint.' },
  ROLLGATE_CONFLICT: { status: 409, doc: "The route's state does not allow the change (no candidate, already rolled back)." },
  ROLLGATE_BODY_TOO_LARGE: { status: 413, doc: 'The admin request body is over the admin body limit.' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export function errorStatus(code: ErrorCode): number {
  return ERRORS[code].status;
}

/** The JSON error body, as a string ready to write. */
export function errorBody(code: ErrorCode, message: string, extra?: Record<string, string>): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

/** An error the gateway answers with: it carries its code (and so its status) from the table. */
export class RollgateError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

/** A change the route's state does not allow (409). */
export class RolloutRefusal extends RollgateError {
  override readonly name = 'RolloutRefusal';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ROLLGATE_CONFLICT', message, options);
  }
}

/** No version or revision of that name (404). */
export class UnknownVersion extends RollgateError {
  override readonly name = 'UnknownVersion';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ROLLGATE_UNKNOWN_VERSION', message, options);
  }
}
