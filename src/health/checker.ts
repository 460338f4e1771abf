import { request } from '../undici.js';

export interface HealthCheckTarget {
  /** The version's base URL; the check asks `url + path`. */
  url: string;
  path: string;
  intervalMs: number;
  timeoutMs: number;
}

export type HealthResult = (ok: boolean, detail: string) => void;

/**
 * Active health checks of one version: a GET on its health path right away and then every
 * interval, each with its own timeout. A check passes on a 2xx answer and fails on anything
 * else, an error or the timeout. One check at a time: a slow one delays the next, never piles up.
 */
export class HealthChecker {
  readonly target: HealthCheckTarget;
  readonly #onResult: HealthResult;
  readonly #href: string;
  #timer: NodeJS.Timeout | null = null;
  #abort: AbortController | null = null;
  #stopped = false;

  constructor(target: HealthCheckTarget, onResult: HealthResult) {
    this.target = target;
    this.#onResult = onResult;
    this.#href = target.url.replace(/\/$/, '') + target.path;
  }

  start(): void {
    void this.#check();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#abort?.abort();
  }

  async #check(): Promise<void> {
    if (this.#stopped) return;
    const abort = new AbortController();
    this.#abort = abort;
    const timeout = setTimeout(() => abort.abort(), this.target.timeoutMs);
    let ok = false;
    let detail: string;
    try {
      const r = await request(this.#href, { method: 'GET', signal: abort.signal, headersTimeout: this.target.timeoutMs, bodyTimeout: this.target.timeoutMs });
      await r.body.dump().catch(() => undefined);
      ok = r.statusCode >= 200 && r.statusCode < 300;
      detail = `HTTP ${r.statusCode} from ${this.target.path}`;
    } catch (err) {
      const e = err as { code?: string; name?: string; message?: string };
      detail = abort.signal.aborted ? `no answer from ${this.target.path} within ${this.target.timeoutMs} ms` : `${this.target.path}: ${e.code ?? e.name ?? 'error'} ${e.message ?? ''}`.trim();
    } finally {
      clearTimeout(timeout);
    }
    if (this.#stopped) return;
    this.#onResult(ok, detail);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#check(), this.target.intervalMs);
    this.#timer.unref();
  }
}
