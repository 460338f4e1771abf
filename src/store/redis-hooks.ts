import { TypeCompiler } from '@sinclair/typebox/compiler';
import { HookJobSchema, type HookJob } from '../hooks/job.js';
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
    await this.#redis.commands.hset(`${this.#redis.prefix}:hooks`, job.id, JSON.stringify(job));
  }

  async lease(id: string, ttlMs: number): Promise<boolean> {
    return (await this.#redis.commands.eval(LEASE, 1, `${this.#redis.prefix}:hook-lease:${id}`, this.#replica, Math.round(ttlMs))) === 1;
  }

  async release(id: string): Promise<void> {
    await this.#redis.commands.eval(RELEASE, 1, `${this.#redis.prefix}:hook-lease:${id}`, this.#replica);
  }

  async unfinished(): Promise<HookJob[]> {
    const all = await this.#redis.commands.hgetall(`${this.#redis.prefix}:hooks`);
    const out: HookJob[] = [];
    for (const text of Object.values(all)) {
      let job: unknown;
      try {
        job = JSON.parse(text);
      } catch {
        continue;
      }
      if (JOB.Check(job) && (job.state === 'pending' || job.state === 'running')) out.push(job);
    }
    return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
  }
}
