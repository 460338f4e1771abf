import { request } from 'undici';
import type { Load } from './soak-load.js';
import type { SeenEvent, StatsStream } from './soak-stream.js';
import type { Fault, ModelServer } from './soak-upstreams.js';

/**
 * The soak's operator: for one route, a cycle every few seconds through the admin API, as the
 * CLI would call it: deploy a candidate on whichever model server is not stable, move its weight
 * 10 -> 30 -> 50, then one of: make it fail and wait for the judge's trip, promote it, or roll it
 * back by hand. A trip counts as taken once the rollback event arrived on the status page's
 * stream and the route state agrees (rolled back, weight 0, the judge's reason).
 */

/** What ends each cycle, in turn: three trips (one per fault), two promotions, one rollback. */
const ACTIONS: readonly ({ trip: Fault } | 'promote' | 'rollback')[] = [{ trip: 'error' }, 'promote', { trip: 'reset' }, 'rollback', { trip: 'half' }, 'promote'];
/** The longest the driver waits for a trip after switching a fault on. */
const TRIP_WAIT_MS = 15_000;
/** Admin problems kept with their details (all are counted). */
const KEEP_PROBLEMS = 20;

export class Admin {
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(port: number, token: string) {
    this.#base = `http://127.0.0.1:${port}`;
    this.#headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  }

  async call(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await request(`${this.#base}${path}`, { method, headers: this.#headers, ...(method === 'GET' ? {} : { body: JSON.stringify(body ?? {}) }) });
    return { status: res.statusCode, json: await res.body.json() };
  }
}

export interface DriverCounts {
  cycles: number;
  deploys: number;
  weights: number;
  promotes: number;
  rollbacks: number;
  trips: { expected: number; taken: number; byReason: Record<string, number> };
  adminErrors: number;
  problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RouteDriver {
  readonly route: string;
  readonly #servers: readonly [ModelServer, ModelServer];
  readonly #admin: Admin;
  readonly #stream: StatsStream;
  readonly #load: Load;
  readonly #pauseMs: number;
  /** The model server the route's stable version runs on; the candidate goes on the other. */
  #stable: ModelServer;
  readonly counts: DriverCounts = {
    cycles: 0,
    deploys: 0,
    weights: 0,
    promotes: 0,
    rollbacks: 0,
    trips: { expected: 0, taken: 0, byReason: {} },
    adminErrors: 0,
    problems: [],
  };
  /** `route/version` of every candidate whose trip was taken. */
  readonly tripped: string[] = [];

  constructor(route: string, servers: readonly [ModelServer, ModelServer], admin: Admin, stream: StatsStream, load: Load, pauseMs: number) {
    this.route = route;
    this.#servers = servers;
    this.#stable = servers[0];
    this.#admin = admin;
    this.#stream = stream;
    this.#load = load;
    this.#pauseMs = pauseMs;
  }

  /** Runs cycles until `done()` says so; the cycle under way is finished first. */
  async run(done: () => boolean): Promise<void> {
    for (let n = 1; !done(); n++) {
      await this.#cycle(n);
      this.counts.cycles++;
      await sleep(this.#pauseMs);
    }
  }

  async #cycle(n: number): Promise<void> {
    const version = `${this.route}-c${n}`;
    const server = this.#servers[0] === this.#stable ? this.#servers[1] : this.#servers[0];
    if (await this.#ok('PUT', 'candidate', { version, url: server.url, weight: 10 })) this.counts.deploys++;
    for (const weight of [30, 50]) {
      await sleep(this.#pauseMs);
      if (await this.#ok('PUT', 'weight', { weight })) this.counts.weights++;
    }
    await sleep(this.#pauseMs);
    const action = ACTIONS[n % ACTIONS.length]!;
    if (action === 'promote') {
      if (await this.#ok('POST', 'promote')) {
        this.counts.promotes++;
        this.#stable = server;
      }
    } else if (action === 'rollback') {
      if (await this.#ok('POST', 'rollback')) this.counts.rollbacks++;
    } else {
      await this.#trip(version, server, action.trip);
    }
  }

  async #trip(version: string, server: ModelServer, fault: Fault): Promise<void> {
    this.counts.trips.expected++;
    const since = performance.now();
    const window = this.#load.faultStarted(this.route, version);
    server.fault = fault;
    let seen: SeenEvent | undefined;
    const find = (): boolean => {
      seen = this.#stream.events.findLast((e) => e.at >= since && e.route === this.route && e.type === 'rollback' && e.from === version);
      return seen !== undefined;
    };
    await this.#stream.until(find, TRIP_WAIT_MS, `the trip of ${version}`).catch(() => undefined);
    server.fault = null;
    this.#load.faultEnded(window);
    if (seen === undefined) {
      this.#problem(`${version} (${fault}): no rollback within ${TRIP_WAIT_MS} ms`);
      if (await this.#ok('POST', 'rollback')) this.counts.rollbacks++;
      return;
    }
    const cause = seen.cause;
    const state = await this.#admin.call('GET', `/api/routes/${this.route}`);
    const s = state.json;
    if (cause === 'manual' || cause === 'peer') {
      this.#problem(`${version} (${fault}): rolled back with cause ${cause}, not by the judge`);
    } else if (state.status !== 200 || s.phase !== 'rolled_back' || s.weight !== 0 || s.candidate?.version !== version || s.lastDecision?.reason !== cause) {
      this.#problem(`${version} (${fault}): rollback event ${cause}, but the route state says ${JSON.stringify({ phase: s.phase, weight: s.weight, candidate: s.candidate?.version, reason: s.lastDecision?.reason })}`);
    } else {
      this.counts.trips.taken++;
      this.tripped.push(`${this.route}/${version}`);
      this.counts.trips.byReason[cause] = (this.counts.trips.byReason[cause] ?? 0) + 1;
    }
  }

  /** One admin call on this route; anything but a 200 is counted as an admin error. */
  async #ok(method: 'PUT' | 'POST', verb: string, body?: unknown): Promise<boolean> {
    try {
      const r = await this.#admin.call(method, `/api/routes/${this.route}/${verb}`, body);
      if (r.status === 200) return true;
      this.#problem(`${method} ${verb}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    } catch (err) {
      this.#problem(`${method} ${verb}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.counts.adminErrors++;
    return false;
  }

  #problem(text: string): void {
    if (this.counts.problems.length < KEEP_PROBLEMS) this.counts.problems.push(text);
  }
}
