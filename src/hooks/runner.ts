import type { HookAction, HookEvent } from '../config/types.js';
import { REAL_TIMERS, type Timers } from '../rollout/bake-timer.js';
import { runAction } from './actions.js';
import { ATTEMPTS_KEPT, FINISHED_JOBS_KEPT, type HookJob } from './job.js';

/** What a job's progress means to the rest of the gateway. */
export type HookChange = 'attempt' | 'attempt_failed' | 'done' | 'failed';

export interface HookRunnerOptions {
  /** The actions a route runs on an event, from its config. */
  actions: (route: string, event: HookEvent) => readonly HookAction[];
  /** Every change of a job, after it was saved. */
  onChange: (job: HookJob, change: HookChange, durationMs: number) => void;
  timers?: Timers;
  wallNow?: () => number;
  /** How long to wait before try n + 1 of an action that failed n times. */
  backoffMs?: (n: number) => number;
}

/**
 * Where replicas share jobs (the Redis store): every job is put there, and a job runs only on the
 * replica holding its lease, which it renews while it runs; a lease that lapses (its holder died)
 * lets another replica take the job over.
 */
export interface HookShare {
  put(job: HookJob): Promise<void>;
  /** Takes the job's lease, or keeps it when this replica holds it; true when it holds it now. */
  lease(id: string, ttlMs: number): Promise<boolean>;
  release(id: string): Promise<void>;
  /** Every shared job that is not finished. */
  unfinished(): Promise<HookJob[]>;
}

/** How long a job's lease lasts without renewal; renewed every third of it while the job runs. */
export const HOOK_LEASE_MS = 5_000;

/** 1 s, 2 s, 4 s ... up to 30 s between tries of an action. */
export const DEFAULT_HOOK_BACKOFF = (n: number): number => Math.min(30_000, 1_000 * 2 ** (n - 1));

/**
 * Runs the data hooks (SPEC §9): one job per event, its actions in order, one job at a time per
 * route, each saved (through `save`, once a store is attached) before it starts and after every
 * attempt. A failed action is tried again after a backoff until its maxAttempts; then the job is
 * failed. Traffic never waits for any of it: the change a hook follows has taken effect already.
 */
export class HookRunner {
  readonly #o: HookRunnerOptions;
  readonly #timers: Timers;
  #jobs: HookJob[] = [];
  readonly #busy = new Set<string>();
  #store: () => Promise<void> = async () => {};
  readonly #abort = new AbortController();
  readonly #cancels = new Set<() => void>();
  #seq = 0;
  #share: HookShare | null = null;
  #leaseMs = HOOK_LEASE_MS;

  constructor(options: HookRunnerOptions) {
    this.#o = options;
    this.#timers = options.timers ?? REAL_TIMERS;
  }

  /** Where jobs are saved from now on (the state store): each save resolves once written. */
  attachStore(save: () => Promise<void>): void {
    this.#store = save;
  }

  /** Saves every job in the store, and the job that changed where replicas share them. */
  async #save(job?: HookJob): Promise<void> {
    await this.#store();
    if (job !== undefined && this.#share !== null) await this.#share.put(job).catch(() => {});
  }

  /**
   * Shares jobs with other replicas from now on (see HookShare), and every `pollMs` takes over
   * the unfinished jobs nobody holds a lease on.
   */
  share(share: HookShare, options: { pollMs?: number; leaseMs?: number } = {}): void {
    this.#share = share;
    this.#leaseMs = options.leaseMs ?? HOOK_LEASE_MS;
    this.attachStore(async () => {});
    const poll = setInterval(() => void this.#takeOver().catch(() => {}), options.pollMs ?? 1_000);
    poll.unref();
    this.#cancels.add(() => clearInterval(poll));
  }

  /** Every job kept, oldest first (what the store saves). */
  jobs(): HookJob[] {
    return this.#jobs.map((j) => ({ ...j, history: [...j.history] }));
  }

  /** The newest job of a route for an event. */
  latest(route: string, event: HookEvent): HookJob | undefined {
    for (let i = this.#jobs.length - 1; i >= 0; i--) {
      const j = this.#jobs[i] as HookJob;
      if (j.route === route && j.event === event) return j;
    }
    return undefined;
  }

  /** Saved jobs at start: the ones a stopped gateway left pending or running run again. */
  restore(jobs: readonly HookJob[]): void {
    this.#jobs = jobs.map((j) => ({ ...j, history: [...j.history], state: j.state === 'running' ? 'pending' : j.state }));
    this.#seq = this.#jobs.length;
    for (const route of new Set(this.#jobs.filter((j) => j.state === 'pending').map((j) => j.route))) this.#drive(route);
  }

  /** A new job for a route's event (when the route has actions for it); saved, then run. */
  enqueue(facts: Omit<HookJob, 'id' | 'state' | 'attempts' | 'actionsDone' | 'actionAttempts' | 'lastError' | 'output' | 'createdAt' | 'startedAt' | 'finishedAt' | 'history'>): HookJob | null {
    if (this.#o.actions(facts.route, facts.event).length === 0 || this.#abort.signal.aborted) return null;
    const at = this.#iso();
    const job: HookJob = {
      ...facts,
      id: `${facts.route}:${facts.event}:${facts.revision}:${Date.parse(at).toString(36)}.${(++this.#seq).toString(36)}`,
      state: 'pending',
      attempts: 0,
      actionsDone: 0,
      actionAttempts: 0,
      lastError: null,
      output: '',
      createdAt: at,
      startedAt: null,
      finishedAt: null,
      history: [],
    };
    this.#jobs.push(job);
    this.#trim();
    this.#drive(job.route);
    return job;
  }

  /** Stops: no new attempt starts, a running action is killed; unfinished jobs stay saved as they are. */
  close(): void {
    this.#abort.abort();
    for (const cancel of this.#cancels) cancel();
    this.#cancels.clear();
  }

  #drive(route: string): void {
    if (this.#busy.has(route) || this.#abort.signal.aborted) return;
    const job = this.#jobs.find((j) => j.route === route && j.state === 'pending');
    if (job === undefined) return;
    this.#busy.add(route);
    void this.#run(job).finally(() => {
      this.#busy.delete(route);
      this.#drive(route);
    });
  }

  async #run(job: HookJob): Promise<void> {
    const share = this.#share;
    if (share === null) return this.#runHere(job);
    // Shared: run only while holding its lease (another replica may be running it), and put it
    // where every replica sees it before it starts.
    let held: boolean | null = null;
    while (held === null) {
      if (this.#abort.signal.aborted) return;
      // Redis unreachable: the job stays here and waits, rather than be lost.
      held = await share.lease(job.id, this.#leaseMs).catch(async () => {
        await this.#wait(1_000);
        return null;
      });
    }
    if (!held) {
      this.#jobs = this.#jobs.filter((j) => j !== job);
      return;
    }
    const renew = setInterval(() => void share.lease(job.id, this.#leaseMs).catch(() => false), this.#leaseMs / 3);
    renew.unref();
    try {
      await this.#runHere(job);
    } finally {
      clearInterval(renew);
      if (!this.#abort.signal.aborted) await share.release(job.id).catch(() => {});
    }
  }

  /** Unfinished shared jobs that no replica holds a lease on (their runner died) run here. */
  async #takeOver(): Promise<void> {
    const share = this.#share;
    if (share === null || this.#abort.signal.aborted) return;
    for (const job of await share.unfinished()) {
      if (this.#busy.has(job.route) || this.#jobs.some((j) => j.id === job.id && (j.state === 'pending' || j.state === 'running'))) continue;
      this.#jobs = [...this.#jobs.filter((j) => j.id !== job.id), { ...job, state: 'pending' }];
      this.#drive(job.route);
    }
  }

  async #runHere(job: HookJob): Promise<void> {
    const actions = this.#o.actions(job.route, job.event);
    // Saved as pending before anything runs: a crash from here on runs it again at start.
    await this.#save(job);
    while (job.actionsDone < actions.length) {
      if (this.#abort.signal.aborted) return;
      const action = actions[job.actionsDone] as HookAction;
      const started = performance.now();
      const at = this.#iso();
      job.state = 'running';
      job.startedAt ??= at;
      job.attempts++;
      job.actionAttempts++;
      job.history.push({ attempt: job.attempts, action: job.actionsDone, startedAt: at, finishedAt: null, ok: null, error: null });
      if (job.history.length > ATTEMPTS_KEPT) job.history.splice(0, job.history.length - ATTEMPTS_KEPT);
      await this.#save(job);
      this.#o.onChange(job, 'attempt', 0);
      // The attempt's event is published on the next turn (after the change, as every event):
      // let it be saved too, so the history shows every attempt, even one a crash cut short.
      await new Promise((resolve) => setImmediate(resolve));
      await this.#save(job);
      const result = await runAction(action, job, this.#abort.signal);
      if (this.#abort.signal.aborted) return;
      const attempt = job.history[job.history.length - 1];
      if (attempt !== undefined) Object.assign(attempt, { finishedAt: this.#iso(), ok: result.ok, error: result.error });
      job.output = result.output;
      job.lastError = result.error;
      if (result.ok) {
        job.actionsDone++;
        job.actionAttempts = 0;
        continue;
      }
      if (job.actionAttempts >= action.maxAttempts) return this.#finish(job, 'failed');
      await this.#save(job);
      this.#o.onChange(job, 'attempt_failed', performance.now() - started);
      await this.#wait((this.#o.backoffMs ?? DEFAULT_HOOK_BACKOFF)(job.actionAttempts));
    }
    await this.#finish(job, 'done');
  }

  async #finish(job: HookJob, state: 'done' | 'failed'): Promise<void> {
    job.state = state;
    job.finishedAt = this.#iso();
    if (state === 'done') job.lastError = null;
    this.#trim();
    await this.#save(job);
    this.#o.onChange(job, state, job.startedAt === null ? 0 : Date.parse(job.finishedAt) - Date.parse(job.startedAt));
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const stop = (): void => {
        cancelTimer();
        resolve();
      };
      const cancelTimer = this.#timers.set(() => {
        this.#cancels.delete(stop);
        resolve();
      }, ms);
      this.#cancels.add(stop);
    });
  }

  /** Unfinished jobs are all kept; of the finished, the newest FINISHED_JOBS_KEPT. */
  #trim(): void {
    const finished = this.#jobs.filter((j) => j.state === 'done' || j.state === 'failed');
    if (finished.length <= FINISHED_JOBS_KEPT) return;
    const drop = new Set(finished.slice(0, finished.length - FINISHED_JOBS_KEPT));
    this.#jobs = this.#jobs.filter((j) => !drop.has(j));
  }

  #iso(): string {
    return new Date(this.#o.wallNow?.() ?? Date.now()).toISOString();
  }
}
