import type { Test } from 'tap';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { RedisState } from '../../src/store/redis-state.js';
import { ReplicaSync } from '../../src/store/replica-sync.js';
import { FleetEvidence } from '../../src/store/fleet-evidence.js';
import type { SharedState } from '../../src/store/shared-state.js';
import { startRedis, type TestRedis } from './redis.js';
import { config, startFailingOnHeader, startGateway, startLabelled, type TestGateway, type TestUpstream } from './servers.js';

let prefixes = 0;

export interface Fleet {
  redis: TestRedis;
  prefix: string;
  /** A plain Redis client, to write and publish what no replica would. */
  raw: Redis;
  stable: TestUpstream;
  candidate: TestUpstream;
}

/** A private Redis and model servers: the candidate fails the requests that carry `x-fail`. */
export async function fleet(t: Test): Promise<Fleet> {
  const redis = await startRedis();
  const stable = await startLabelled('v1');
  const candidate = await startFailingOnHeader();
  const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await raw.connect();
  t.teardown(async () => {
    raw.disconnect();
    await redis.stop();
    await stable.close();
    await candidate.close();
  });
  return { redis, prefix: `rg-refused-${process.pid}-${++prefixes}`, raw, stable, candidate };
}

/** A log that keeps its lines (message and fields) for assertions. */
export function capturingLog() {
  const lines: string[] = [];
  const keep = (obj: object, msg: string) => void lines.push(`${msg} ${JSON.stringify(obj)}`);
  return { lines, info: keep, warn: keep };
}

/** Route `m` (v1, and v2 at `weight`) over two model servers, as the fleet tests use it. */
export function fleetConfig(stableUrl: string, candidateUrl: string, weight = 50, extra: Record<string, unknown> = {}) {
  return config(
    [
      {
        name: 'm',
        match: { pathPrefix: '/m' },
        stable: { version: 'v1', url: stableUrl },
        candidate: { version: 'v2', url: candidateUrl, weight },
        rollback: { latency: { minDelta: '10s' } },
      },
    ],
    extra,
  );
}

/**
 * A gateway in this process joins the processes sharing `shared` as `rollgate serve` wires a
 * replica: its ReplicaSync, and its FleetEvidence (started when `fleetEvidence`; the one lease
 * holder, as a primary, when `soleHolder`), log captured.
 */
export async function joinFleet(t: Test, gw: TestGateway, shared: SharedState, options: { fleetEvidence?: boolean; soleHolder?: boolean } = {}) {
  const log = capturingLog();
  const sync = new ReplicaSync(gw.rollouts, shared, log);
  await sync.start();
  const evidence = new FleetEvidence(gw.rollouts, shared, sync.id, 0.5, { log, soleHolder: options.soleHolder === true });
  if (options.fleetEvidence === true) await evidence.start(50);
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(async () => {
    evidence.close();
    await pool.close();
    await sync.close();
    await gw.close();
  });
  const send = async (headers: Record<string, string> = {}) => {
    const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}', headers });
    await r.body.dump();
    return { status: r.statusCode, version: String(r.headers['x-rollgate-version']) };
  };
  const controller = gw.rollouts.route('m')!;
  return { gw, sync, evidence, controller, send, log: log.lines, traffic: () => gw.gateway.routes.get('m')!.traffic };
}

/**
 * One replica in this process on the fleet's Redis, route `m` (v1, and v2 at `weight`), as
 * `rollgate serve` wires it, with its log captured.
 */
export async function replica(t: Test, f: Fleet, options: { weight?: number; fleetEvidence?: boolean } = {}) {
  const cfg = fleetConfig(f.stable.url, f.candidate.url, options.weight, { store: { kind: 'redis', url: f.redis.url, prefix: f.prefix } });
  const gw = await startGateway(cfg, { alphaScale: 1 / 16 });
  return joinFleet(t, gw, new RedisState(f.redis.url, f.prefix), options);
}

export type Replica = Awaited<ReturnType<typeof replica>>;
