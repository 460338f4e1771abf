/**
 * Every error code rollgate uses, in one table: a stable `ROLLGATE_*` code, the HTTP status and
 * what it means. Error bodies are always `{"error": {"code", "message"}}` (SPEC §6), with extra
 * fields only where they help the caller (the data plane adds `route`). A few codes never travel
 * over HTTP (`from` says where each one comes from); their status is what they would mean as an
 * answer. README.md lists the same table, and test/error-codes.test.ts keeps the two in step.
 */
export const ERRORS = {
  ROLLGATE_NO_ROUTE: { status: 404, from: 'data plane', doc: 'No route matches the request path.' },
  ROLLGATE_UPSTREAM_UNAVAILABLE: {
    status: 502,
    from: 'data plane',
    doc: 'The upstream refused the connection, reset it or closed it before answering.',
  },
  ROLLGATE_UPSTREAM_TIMEOUT: {
    status: 504,
    from: 'data plane',
    doc: 'The upstream did not connect within timeouts.connect or answer within timeouts.response.',
  },
  ROLLGATE_BAD_FRAMING: {
    status: 400,
    from: 'data plane',
    doc: 'The request\'s Transfer-Encoding is not exactly `chunked` (RFC 9112 §6: a coding list two parsers could read differently); it is not forwarded.',
  },
  ROLLGATE_UPSTREAM_ERROR: {
    status: 502,
    from: 'data plane',
    doc: 'The upstream answered something that is not valid HTTP, or that the gateway cannot pass on (response headers over 16 KiB, a transfer coding other than chunked, a 1xx it did not ask for).',
  },
  ROLLGATE_MALFORMED_REQUEST: {
    status: 400,
    from: 'both planes',
    doc: "The request is not valid HTTP/1.1 (Node's parser refused its request line, a header or its framing, or it has no Host header); the connection is closed. An HTTP/2 CONNECT is refused the same way, on its stream alone.",
  },
  ROLLGATE_HEADERS_TOO_LARGE: { status: 431, from: 'both planes', doc: 'The request line and headers are over 16 KiB; the connection is closed.' },
  ROLLGATE_EXPECTATION_FAILED: {
    status: 417,
    from: 'both planes',
    doc: "The request's Expect header asks for something other than 100-continue (RFC 9110 §10.1.1); the request is not handled.",
  },
  ROLLGATE_REQUEST_TIMEOUT: {
    status: 408,
    from: 'both planes',
    doc: "The request's head or body did not arrive within the server's time limits (listen.headersTimeout, listen.requestTimeout on the data plane); the connection is closed.",
  },
  ROLLGATE_BAD_REQUEST: {
    status: 400,
    from: 'admin API',
    doc: 'The admin request is malformed (not JSON) or a field is invalid; the message names the field, e.g. `body.weight: must be <= 100`.',
  },
  ROLLGATE_UNAUTHORIZED: { status: 401, from: 'admin API', doc: 'No bearer token, or not the admin token.' },
  ROLLGATE_UNKNOWN_ROUTE: { status: 404, from: 'admin API', doc: 'No route has that name.' },
  ROLLGATE_UNKNOWN_VERSION: {
    status: 404,
    from: 'admin API',
    doc: 'The route has no version with that label and no revision with that number.',
  },
  ROLLGATE_NOT_FOUND: { status: 404, from: 'admin API', doc: 'No such admin endpoint.' },
  ROLLGATE_CONFLICT: {
    status: 409,
    from: 'admin API',
    doc: "The route's state does not allow the change (no candidate, already rolled back, pausing twice).",
  },
  ROLLGATE_BODY_TOO_LARGE: { status: 413, from: 'admin API', doc: 'The admin request body is over 64 KiB.' },
  ROLLGATE_INTERNAL: {
    status: 500,
    from: 'admin API',
    doc: 'An unexpected failure while handling an admin request; the gateway logs it with its cause.',
  },
  ROLLGATE_USAGE: {
    status: 400,
    from: 'CLI',
    doc: 'The command line is malformed (unknown verb, missing argument, bad option value): exit code 2.',
  },
  ROLLGATE_ADMIN_UNREACHABLE: {
    status: 503,
    from: 'CLI',
    doc: 'Nothing answered at ROLLGATE_ADMIN_URL (connection refused, unknown host, timeout): exit code 1.',
  },
  ROLLGATE_BAD_ANSWER: {
    status: 502,
    from: 'CLI',
    doc: 'The admin API answered a successful status with a body that is not JSON (something else listens there): exit code 1.',
  },
  ROLLGATE_INVALID_CONFIG: {
    status: 400,
    from: 'serve',
    doc: 'The config file cannot be read or is invalid; every problem is printed with its key path: exit code 2.',
  },
  ROLLGATE_UNUSABLE_STATE: {
    status: 500,
    from: 'serve',
    doc: 'A saved state file exists but cannot be read or is not a rollgate state file; the gateway does not start: exit code 1.',
  },
} as const satisfies Record<string, { status: number; from: string; doc: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Whether a value is one of the codes in ERRORS (an error from anywhere is mapped by its code). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

export function errorStatus(code: ErrorCode): number {
  return ERRORS[code].status;
}

/** The JSON error body, as a string ready to write: the one place that shapes it. */
export function errorBody(code: ErrorCode, message: string, extra?: Record<string, string>): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

/** An error rollgate answers or exits with: it carries its code (and so its status) from the table. */
export class RollgateError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'RollgateError';
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
