import http2, { type ClientHttp2Session } from 'node:http2';

/**
 * The HTTP/2 connection to one version's upstream (`protocol: h2c` or `h2`): one session that
 * every call multiplexes on, made when first needed and made again once it closed or failed.
 */
export class H2Client {
  readonly origin: string;
  readonly #connectMs: number;
  #session: ClientHttp2Session | null = null;
  #closed = false;
  /** Sessions that completed their connection: a call failing on another one never reached the upstream. */
  readonly #connected = new WeakSet<ClientHttp2Session>();

  constructor(origin: string, connectMs: number) {
    this.origin = origin;
    this.#connectMs = connectMs;
  }

  /** The live session, or a new one; null once closed for good. */
  session(): ClientHttp2Session | null {
    if (this.#closed) return null;
    const s = this.#session;
    if (s !== null && !s.closed && !s.destroyed) return s;
    const made = http2.connect(this.origin, { settings: { enablePush: false } });
    this.#session = made;
    const drop = (): void => {
      if (this.#session === made) this.#session = null;
    };
    // A session error reaches every stream on it as a reset; it must not reach the process.
    made.on('error', drop).on('close', drop).on('goaway', drop);
    // No connection within the route's connect timeout: the session and its streams fail.
    const timer = setTimeout(() => made.destroy(new Error('connect timeout')), this.#connectMs);
    timer.unref();
    made.once('connect', () => {
      clearTimeout(timer);
      this.#connected.add(made);
    }).once('close', () => clearTimeout(timer));
    made.unref();
    return made;
  }

  /** Whether the session ever connected to the upstream. */
  connected(session: ClientHttp2Session): boolean {
    return this.#connected.has(session);
  }

  /**
   * Closes the session after the streams still on it; no new one is made. Never from inside one
   * of its streams' callbacks (a rollback decided on a call's outcome): node 20 aborts the
   * process when a client session goes while nghttp2 is still in that stream's close, so the
   * session goes on the next turn of the loop.
   */
  close(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    this.#session = null;
    if (s === null || s.closed) return Promise.resolve();
    return new Promise((resolve) => setImmediate(() => (s.closed ? resolve() : s.close(() => resolve()))));
  }

  destroy(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    this.#session = null;
    if (s === null) return Promise.resolve();
    return new Promise((resolve) =>
      setImmediate(() => {
        s.destroy();
        resolve();
      }),
    );
  }
}
