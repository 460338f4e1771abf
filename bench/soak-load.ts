import { Pool } from 'undici';

/**
 * The soak's clients: a steady open-loop rate over the routes in turn, through one undici Pool
 * with a bounded number of keep-alive connections. Every answer is counted by status; every one
 * that is not a 200 is an error, classified as caused by the fault injection or not.
 */

export interface LoadRoute {
  name: string;
  /** The request path (under the route's prefix). */
  path: string;
  retryOnStable: boolean;
}

/** A candidate set to fail: from when the fault was switched on until its rollback was seen. */
export interface FaultWindow {
  route: string;
  version: string;
  from: number;
  until: number | null;
}

export interface UnexpectedError {
  route: string;
  status: number;
  version: string | null;
  fault: string | null;
  message?: string;
  atS: number;
}

const BODY = JSON.stringify({ instances: [{ text: 'The delivery was late, but support sorted it out quickly.' }] });
const HEADERS = { 'content-type': 'application/json' };
/** Requests in flight at most; a request due while this many are out is skipped and counted. */
const MAX_IN_FLIGHT = 64;
const TICK_MS = 10;
/** Unexpected errors kept with their details (all are counted). */
const KEEP_UNEXPECTED = 50;

export class Load {
  readonly #pool: Pool;
  readonly #routes: LoadRoute[];
  readonly #rate: number;
  #timer: NodeJS.Timeout | null = null;
  #startedAt = 0;
  #issued = 0;
  #inFlight = 0;
  #idle: (() => void) | null = null;
  #windows: FaultWindow[] = [];
  requests = 0;
  skipped = 0;
  readonly byStatus: Record<string, number> = {};
  readonly errors = { expected: 0, unexpected: 0 };
  readonly unexpected: UnexpectedError[] = [];

  constructor(gatewayUrl: string, routes: LoadRoute[], rate: number, connections: number) {
    this.#pool = new Pool(gatewayUrl, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
    this.#routes = routes;
    this.#rate = rate;
  }

  start(): void {
    this.#startedAt = performance.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Stops issuing requests and resolves once every one in flight has its answer. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    await this.#pool.close();
  }

  /** The candidate `version` of `route` fails from now on, until faultEnded. */
  faultStarted(route: string, version: string): FaultWindow {
    const now = performance.now();
    // Windows that closed a minute ago can explain no answer still to come.
    this.#windows = this.#windows.filter((w) => w.until === null || now - w.until < 60_000);
    const w: FaultWindow = { route, version, from: now, until: null };
    this.#windows.push(w);
    return w;
  }

  faultEnded(w: FaultWindow): void {
    w.until = performance.now();
  }

  #tick(): void {
    const due = Math.floor(((performance.now() - this.#startedAt) * this.#rate) / 1000) - this.#issued;
    for (let i = 0; i < due; i++) {
      const route = this.#routes[this.#issued % this.#routes.length]!;
      this.#issued++;
      if (this.#inFlight >= MAX_IN_FLIGHT) {
        this.skipped++;
        continue;
      }
      void this.#send(route);
    }
  }

  async #send(route: LoadRoute): Promise<void> {
    this.#inFlight++;
    const started = performance.now();
    let status = 0;
    let version: string | null = null;
    let fault: string | null = null;
    let message: string | undefined;
    try {
      const res = await this.#pool.request({ path: route.path, method: 'POST', headers: HEADERS, body: BODY });
      await res.body.dump();
      status = res.statusCode;
      const v = res.headers['x-rollgate-version'];
      version = typeof v === 'string' ? v : null;
      const f = res.headers['x-soak-fault'];
      fault = typeof f === 'string' ? f : null;
    } catch (err) {
      message = err instanceof Error ? err.message : String(err);
    }
    this.#record(route, started, status, version, fault, message);
    if (--this.#inFlight === 0 && this.#idle !== null) this.#idle();
  }

  #record(route: LoadRoute, started: number, status: number, version: string | null, fault: string | null, message: string | undefined): void {
    this.requests++;
    this.byStatus[String(status)] = (this.byStatus[String(status)] ?? 0) + 1;
    if (status === 200) return;
    const ended = performance.now();
    if (this.#causedByFault(route, started, ended, status, version)) {
      this.errors.expected++;
      return;
    }
    this.errors.unexpected++;
    if (this.unexpected.length < KEEP_UNEXPECTED) {
      this.unexpected.push({ route: route.name, status, version, fault, ...(message !== undefined ? { message } : {}), atS: Math.round((ended - this.#startedAt) / 100) / 10 });
    }
  }

  /**
   * A 5xx from the candidate that was set to fail, on a route that does not replay failed
   * candidate requests on stable, for a request that overlapped the fault. Anything else (a
   * status 0, an error from stable, a fault that reached a client of the replaying route) is not.
   */
  #causedByFault(route: LoadRoute, started: number, ended: number, status: number, version: string | null): boolean {
    if (route.retryOnStable || status < 500 || version === null) return false;
    return this.#windows.some((w) => w.route === route.name && w.version === version && ended >= w.from && (w.until === null || started <= w.until));
  }
}
