import { request } from '../undici.js';
import type { RouteEvent } from '../rollout/types.js';

export interface WebhookOptions {
  /** Per attempt: the receiver must answer within this long. */
  timeoutMs?: number;
  /** Retries stop once the first attempt is this old. */
  retryForMs?: number;
  /** First backoff; it doubles per attempt. */
  backoffMs?: number;
  /** Notifications waiting beyond this many are dropped, oldest first (and counted). */
  maxQueued?: number;
  onGiveUp?: (event: RouteEvent, err: string) => void;
}

/** The body a webhook receives: Slack and Teams incoming webhooks show `text` as is. */
export interface WebhookBody {
  text: string;
  route: string;
  type: RouteEvent['type'];
  reason: RouteEvent['cause'];
  at: string;
  from: RouteEvent['from'] | null;
  to: RouteEvent['to'] | null;
  message: string;
  evidence: RouteEvent['evidence'] | null;
}

export function webhookBody(e: RouteEvent): WebhookBody {
  const what = e.type === 'promote' ? 'promoted' : e.type === 'health' ? 'health' : 'rolled back';
  const versions = `${e.from?.version ?? '?'} -> ${e.to?.version ?? '?'}`;
  return {
    text: e.type === 'health' ? `rollgate: ${e.message}` : `rollgate: route ${e.route} ${what} (${e.cause}): ${versions}. ${e.message}`,
    route: e.route,
    type: e.type,
    reason: e.cause,
    at: e.at,
    from: e.from ?? null,
    to: e.to ?? null,
    message: e.message,
    evidence: e.evidence ?? null,
  };
}

/**
 * Posts every promote and rollback to one URL, one at a time, retrying with exponential backoff
 * for a bounded time. Nothing here is awaited by a caller: `notify()` only queues, so a slow or
 * dead receiver can never delay routing or a rollback.
 */
export class WebhookNotifier {
  readonly url: string;
  readonly #timeoutMs: number;
  readonly #retryForMs: number;
  readonly #backoffMs: number;
  readonly #maxQueued: number;
  readonly #onGiveUp: (event: RouteEvent, err: string) => void;
  readonly #queue: RouteEvent[] = [];
  #running = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  dropped = 0;

  constructor(url: string, options: WebhookOptions = {}) {
    this.url = url;
    this.#timeoutMs = options.timeoutMs ?? 2_000;
    this.#retryForMs = options.retryForMs ?? 30_000;
    this.#backoffMs = options.backoffMs ?? 250;
    this.#maxQueued = options.maxQueued ?? 1_000;
    this.#onGiveUp = options.onGiveUp ?? (() => {});
  }

  /** Queues the event when it is a promote, a rollback or a health change; returns at once. */
  notify(event: RouteEvent): void {
    // A replica that applies another's change does not notify again: the deciding one did.
    const failedHook = event.type === 'hook' && event.hook?.state === 'failed';
    if (this.#closed || event.cause === 'peer' || (event.type !== 'promote' && event.type !== 'rollback' && event.type !== 'health' && !failedHook)) return;
    this.#queue.push(event);
    if (this.#queue.length > this.#maxQueued) {
      this.#queue.shift();
      this.dropped++;
    }
    if (!this.#running) void this.#run();
  }

  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    if (this.#timer !== null) clearTimeout(this.#timer);
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let e = this.#queue.shift(); e !== undefined && !this.#closed; e = this.#queue.shift()) await this.#deliver(e);
    } finally {
      this.#running = false;
    }
  }

  async #deliver(event: RouteEvent): Promise<void> {
    const body = JSON.stringify(webhookBody(event));
    const first = Date.now();
    let wait = this.#backoffMs;
    for (;;) {
      let problem: string;
      try {
        const r = await request(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          headersTimeout: this.#timeoutMs,
          bodyTimeout: this.#timeoutMs,
        });
        await r.body.dump();
        if (r.statusCode >= 200 && r.statusCode < 300) return;
        problem = `HTTP ${r.statusCode}`;
      } catch (err) {
        problem = (err as Error).message;
      }
      if (this.#closed || Date.now() - first + wait > this.#retryForMs) {
        this.#onGiveUp(event, problem);
        return;
      }
      await new Promise<void>((resolve) => {
        this.#timer = setTimeout(resolve, wait);
        this.#timer.unref();
      });
      wait *= 2;
    }
  }
}
