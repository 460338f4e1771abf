import { request } from 'undici';

/**
 * The status page's connection, as the page makes it: `GET /api/events?stats=true`, held open
 * for the whole soak. It keeps the route events (the driver waits on them) and counts the stats
 * events; a stream that ends or fails while the soak runs is reconnected and counted.
 */

export interface SeenEvent {
  type: string;
  route: string;
  cause: string;
  /** The version the event moved away from (a rollback's candidate), if any. */
  from: string | null;
  message: string;
  at: number;
}

export class StatsStream {
  readonly #url: string;
  readonly #token: string;
  readonly events: SeenEvent[] = [];
  #controller: AbortController | null = null;
  #running = false;
  #waiters = new Set<() => void>();
  #lastStatsAt = 0;
  connects = 0;
  stats = 0;
  /** Every rollback the judge decided (any cause but manual or peer). */
  readonly judgeRollbacks: SeenEvent[] = [];
  /** The longest time between two stats events while connected, ms. */
  maxStatsGapMs = 0;
  /** Why the stream dropped, for each drop. */
  readonly drops: string[] = [];

  constructor(adminPort: number, token: string) {
    this.#url = `http://127.0.0.1:${adminPort}/api/events?stats=true`;
    this.#token = token;
  }

  get reconnects(): number {
    return Math.max(0, this.connects - 1);
  }

  /** Resolves once connected and the first stats event is in. */
  async start(): Promise<void> {
    this.#running = true;
    void this.#loop();
    await this.until(() => this.stats > 0, 10_000, 'the first stats event');
  }

  stop(): void {
    this.#running = false;
    this.#controller?.abort();
  }

  /** Resolves once `check` holds (it is asked again after every event), or rejects after `ms`. */
  until(check: () => boolean, ms: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.#waiters.add(waiter);
    });
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      try {
        await this.#follow();
        if (this.#running) this.drops.push('the stream ended');
      } catch (err) {
        if (this.#running) this.drops.push(err instanceof Error ? err.message : String(err));
      }
      if (this.#running) await new Promise((r) => setTimeout(r, 250));
    }
  }

  async #follow(): Promise<void> {
    this.#controller = new AbortController();
    const res = await request(this.#url, { headers: { authorization: `Bearer ${this.#token}` }, signal: this.#controller.signal, bodyTimeout: 0 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`GET /api/events?stats=true: HTTP ${res.statusCode}`);
    }
    this.connects++;
    this.#lastStatsAt = 0;
    let buf = '';
    res.body.setEncoding('utf8');
    for await (const chunk of res.body as AsyncIterable<string>) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        this.#block(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    }
  }

  #block(block: string): void {
    let type = '';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) type = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (type === '' || data === '') return;
    const now = performance.now();
    if (type === 'stats') {
      this.stats++;
      if (this.#lastStatsAt > 0) this.maxStatsGapMs = Math.max(this.maxStatsGapMs, now - this.#lastStatsAt);
      this.#lastStatsAt = now;
    } else {
      const { event } = JSON.parse(data) as { event: { type: string; route: string; cause: string; message: string; from?: { version: string } | null } };
      const seen = { type: event.type, route: event.route, cause: event.cause, from: event.from?.version ?? null, message: event.message, at: now };
      this.events.push(seen);
      if (event.type === 'rollback' && event.cause !== 'manual' && event.cause !== 'peer') this.judgeRollbacks.push(seen);
      // The driver looks back only at the current cycle's events (by time).
      if (this.events.length > 10_000) this.events.splice(0, 5_000);
    }
    for (const w of this.#waiters) w();
  }
}
