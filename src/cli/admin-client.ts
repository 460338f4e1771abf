import { request } from 'undici';
import { RollgateError, type ErrorCode } from '../errors.js';

/** Where the CLI finds the admin API when ROLLGATE_ADMIN_URL is not set. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090';

/**
 * The gateway answered, and said no: its `{"error": {"code", "message"}}` body (SPEC §6), or
 * ROLLGATE_BAD_ANSWER when a successful answer is not JSON. Not a RollgateError: the code and
 * status are what the admin API sent, and a gateway of another version may send a code this
 * CLI's table does not have (`HTTP_<status>` when the answer carried no code at all).
 */
export class AdminRefusal extends Error {
  override readonly name = 'AdminRefusal';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Nothing answered at the admin URL (refused connection, unknown host, timeout). */
export class AdminUnreachable extends RollgateError {
  override readonly name = 'AdminUnreachable';

  constructor(
    readonly url: string,
    readonly reason: Error,
  ) {
    const detail = (reason as NodeJS.ErrnoException).code ?? (reason.cause as NodeJS.ErrnoException | undefined)?.code ?? reason.message;
    super('ROLLGATE_ADMIN_UNREACHABLE', `cannot reach the admin API at ${url} (${detail})`, { cause: reason });
  }
}

export interface AdminClientOptions {
  baseUrl: string;
  token: string | undefined;
  /** Per request, ms. */
  timeoutMs?: number;
}

/** A small JSON client for the admin API, with the bearer token on every call. */
export class AdminClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: AdminClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  put<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', path, body);
  }

  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  /** Sends one request; resolves with the parsed JSON answer of a 2xx, throws AdminRefusal or AdminUnreachable. */
  async call<T>(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== undefined && this.#token !== '') headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await request(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (err) {
      throw new AdminUnreachable(this.baseUrl, err as Error);
    }
    const text = await res.body.text();
    let json: unknown;
    let parseError: unknown;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch (err) {
      json = undefined;
      parseError = err;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      if (json === undefined) {
        const message = `the admin API at ${this.baseUrl} answered ${method} ${path} with something that is not JSON`;
        throw new AdminRefusal(res.statusCode, 'ROLLGATE_BAD_ANSWER' satisfies ErrorCode, message, { cause: parseError });
      }
      return json as T;
    }
    const error = (json as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
    const code = typeof error?.code === 'string' ? error.code : `HTTP_${res.statusCode}`;
    const message = typeof error?.message === 'string' ? error.message : `${method} ${path} answered HTTP ${res.statusCode}`;
    throw new AdminRefusal(res.statusCode, code, message);
  }
}

/** The URL path segment for a route name. */
export function routePath(route: string): string {
  return `/api/routes/${encodeURIComponent(route)}`;
}
