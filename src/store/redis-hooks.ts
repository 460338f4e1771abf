import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FINISHED_JOBS_KEPT, HookJobSchema, type HookJob } from '../hooks/job.js';
import type { HookShare } from '../hooks/runner.js';
import type { RedisState } from './redis-state.js';

const JOB = TypeCompiler.Compile(HookJobSchema);

// Take the lease when nobody holds it, keep it when this replica does (1); else 0.
const LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Hook jobs shared by replicas in Redis: every job in one hash (`<prefix>:hooks`, id -> JSON) and
 * a lease per running job (`<prefix>:hook-lease:<id>`). A record that is not a job a replica wrote
 * is never run (checked against the job schema, like every record read back).
 */
export class RedisHooks implements HookShare {
  readonly #redis: RedisState;
  readonly #replica: string;

  constructor(redis: RedisState, replica: string) {
    this.#redis = redis;
    this.#replica = replica;
  }

  async put(job: HookJob): Promise<void> {
    await this.#redis.commands.hset(this.#key, job.id, JSON.stringify(job));
    if (job.state === 'done' || job.state === 'failed') await this.#prune();
  }

  /** Of the finished jobs, the newest FINISHED_JOBS_KEPT stay; unfinished ones always do. */
  async #prune(): Promise<void> {
    const finished = Object.entries(await this.#redis.commands.hgetall(this.#key))
      .map(([id, text]) => ({ id, job: parse(text) }))
      .filter((e) => e.job === null || e.job.state === 'done' || e.job.state === 'failed')
      .sort((a, b) => ((a.job?.finishedAt ?? '') < (b.job?.finishedAt ?? '') ? -1 : 1));
    const drop = finished.slice(0, Math.max(0, finished.length - FINISHED_JOBS_KEPT)).map((e) => e.id);
    if (drop.length > 0) await this.#redis.commands.hdel(this.#key, ...drop);
  }

  get #key(): string {
    return `${this.#redis.prefix}:hooks`;
  }

  async lease(id: string, ttlMs: number): Promise<boolean> {
    return (await this.#redis.commands.eval(LEASE, 1, `${this.#redis.prefix}:hook-lease:${id}`, this.#replica, Math.round(ttlMs))) === 1;
  }

  async release(id: string): Promise<void> {
    await this.#redis.commands.eval(RELEASE, 1, `${this.#redis.prefix}:hook-lease:${id}`, this.#replica);
  }

  async unfinished(): Promise<HookJob[]> {
    const out: HookJob[] = [];
    for (const text of Object.values(await this.#redis.commands.hgetall(this.#key))) {
      const job = parse(text);
      if (job !== null && (job.state === 'pending' || job.state === 'running')) out.push(job);
    }
    return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
  }
}

/** A job as a replica wrote it, or null for anything else (never run, pruned with the finished). */
function parse(text: string): HookJob | null {
  try {
    const job: unknown = JSON.parse(text);
    return JOB.Check(job) ? job : null;
  } catch {
    return null;
  }
}
