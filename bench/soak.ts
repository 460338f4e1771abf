import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Procs, freePorts, hasCommand, round3 } from './lib.js';
import { Admin, RouteDriver } from './soak-driver.js';
import { SoakedGateway } from './soak-gateway.js';
import { Load } from './soak-load.js';
import { read, Readings } from './soak-proc.js';
import { StatsStream } from './soak-stream.js';
import { resourcePass, slopes, TARGETS, type SampleLine } from './soak-summary.js';
import { ModelServer } from './soak-upstreams.js';

/**
 * A long run of everything at once, watching the gateway's resources: `rollgate serve` on a
 * private redis-server, as a child process with a probe preloaded, under a steady client rate
 * over two routes (one replays failed candidate requests on stable, one does not), while a
 * driver per route deploys, moves weights, makes candidates fail and waits for the trip,
 * promotes and rolls back through the admin API, and the status page's stats stream stays
 * connected. Every --interval seconds one JSON line: the gateway's RSS, heap after a forced
 * collection, open descriptors, sockets to each model server and event-loop delay p99; at the
 * end a summary line with the slopes over the last 8 minutes and whether each target was met.
 * The exit code is 1 when one was missed.
 */

const USAGE = `usage: soak.js [--minutes 10] [--rate 250] [--interval 10]
  --minutes  how long the load runs (a fraction is allowed)
  --rate     client requests per second, over both routes
  --interval seconds between two samples`;

const TOKEN = 'soak-bench';
/** Client keep-alive connections to the gateway. */
const CONNECTIONS = 16;
/** Between two steps of a driver's cycle. */
const PAUSE_MS = 600;
const ROUTES = [
  { name: 'plain', retryOnStable: false },
  { name: 'replay', retryOnStable: true },
] as const;

const MiB = 1024 * 1024;
const emit = (line: object): void => console.log(JSON.stringify(line));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class UsageError extends Error {}

interface Options {
  minutes: number;
  rate: number;
  intervalS: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string', default: '250' },
      interval: { type: 'string', default: '10' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const [minutes, rate, intervalS] = [values.minutes, values.rate, values.interval].map(Number) as [number, number, number];
  if (!(minutes > 0) || !(rate > 0) || !(intervalS > 0) || minutes * 60 < 2 * intervalS) throw new UsageError(USAGE);
  return { minutes, rate, intervalS };
}

function config(p: { gateway: number; admin: number; redis: number }, stables: ModelServer[]): string {
  const routes = ROUTES.map(
    (r, i) => `  - name: ${r.name}
    match: { pathPrefix: /${r.name} }
    stable: { version: ${r.name}-v0, url: ${stables[i]!.url} }
    retryOnStable: ${r.retryOnStable}
    # The soak is about resources: a shared machine's scheduling must not look like a slow candidate.
    rollback: { latency: { minDelta: 10s } }`,
  );
  return `listen: { host: 127.0.0.1, port: ${p.gateway} }
admin: { host: 127.0.0.1, port: ${p.admin} }
log: { level: warn }
store: { kind: redis, url: redis://127.0.0.1:${p.redis}, prefix: soak }
routes:
${routes.join('\n')}
`;
}

/** Redis, the model servers and the gateway, all on loopback; resolves once every one listens. */
async function setUp(procs: Procs) {
  if (!hasCommand('redis-server', ['--version'])) throw new Error('redis-server not found: apt-get install redis-server');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'rollgate-soak-'));
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const [redis, gatewayPort, adminPort] = (await freePorts(3)) as [number, number, number];
  procs.start('redis', 'redis-server', ['--port', String(redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await procs.waitForPort('redis', redis);
  const servers = await Promise.all(ROUTES.map(async (r) => [await ModelServer.start(`${r.name}-a`), await ModelServer.start(`${r.name}-b`)] as const));
  const configPath = path.join(tmp, 'soak.yaml');
  writeFileSync(configPath, config({ gateway: gatewayPort, admin: adminPort, redis }, servers.map((s) => s[0])));
  const gateway = new SoakedGateway(procs, configPath, { ...process.env, ROLLGATE_ADMIN_TOKEN: TOKEN });
  await procs.waitForPort('gateway', gatewayPort);
  await procs.waitForPort('gateway admin', adminPort);
  return { servers, gateway, gatewayPort, adminPort };
}

/** One sample line every interval until the run's end; descriptors and sockets read every second. */
async function sampleLoop(procs: Procs, gateway: SoakedGateway, servers: ModelServer[], opts: Options, t0: number, requests: () => { requests: number; errors: SampleLine['errors'] }) {
  const ports = new Map(servers.map((s) => [s.port, s.name]));
  const readings = new Readings();
  const reader = setInterval(() => {
    try {
      readings.add(read(gateway.pid, ports));
    } catch {
      // The gateway is gone: the loop below reports why.
    }
  }, 1000);
  // The first probe only starts the clocks: the event-loop delay of the start-up is not the soak's.
  let previous = await gateway.sample();
  let previousAt = performance.now();
  const samples: SampleLine[] = [];
  try {
    const count = Math.floor((opts.minutes * 60) / opts.intervalS);
    for (let k = 1; k <= count; k++) {
      const at = t0 + k * opts.intervalS * 1000;
      while (performance.now() < at) {
        procs.assertAlive();
        await sleep(Math.min(250, at - performance.now()));
      }
      const p = await gateway.sample();
      const r = readings.take();
      const now = performance.now();
      const intervalUs = (now - previousAt) * 1000;
      const waitedUs = p.runQueueWaitNs !== null && previous.runQueueWaitNs !== null ? (p.runQueueWaitNs - previous.runQueueWaitNs) / 1000 : null;
      const line: SampleLine = {
        kind: 'sample',
        t: round3((now - t0) / 1000),
        rssMiB: round3(p.rssBytes / MiB),
        heapAfterGcMiB: round3(p.heapAfterGcBytes / MiB),
        fds: r.fds,
        fdsMax: r.fdsMax,
        socketsByUpstream: r.socketsByUpstream,
        socketsMax: r.socketsMax,
        eventLoopP99Ms: round3(p.eventLoopP99Ms),
        eventLoopMaxMs: round3(p.eventLoopMaxMs),
        cpuPct: round3(((p.cpuMicros - previous.cpuMicros) / intervalUs) * 100),
        runQueueWaitPct: waitedUs === null ? null : round3((waitedUs / intervalUs) * 100),
        ...requests(),
      };
      samples.push(line);
      emit(line);
      [previous, previousAt] = [p, now];
    }
  } finally {
    clearInterval(reader);
  }
  return samples;
}

async function main(): Promise<number> {
  const opts = options();
  const procs = new Procs();
  const loadStart = round3(os.loadavg()[0]!);
  const { servers, gateway, gatewayPort, adminPort } = await setUp(procs);
  const stream = new StatsStream(adminPort, TOKEN);
  await stream.start();
  const load = new Load(
    `http://127.0.0.1:${gatewayPort}`,
    ROUTES.map((r) => ({ name: r.name, path: `/${r.name}/v1/predict`, retryOnStable: r.retryOnStable })),
    opts.rate,
    CONNECTIONS,
  );
  const admin = new Admin(adminPort, TOKEN);
  const drivers = ROUTES.map((r, i) => new RouteDriver(r.name, servers[i]!, admin, stream, load, PAUSE_MS));
  const driverFailures: string[] = [];
  let stopping = false;

  load.start();
  const t0 = performance.now();
  const running = drivers.map((d) => d.run(() => stopping).catch((err: Error) => void driverFailures.push(`${d.route}: ${err.message}`)));
  const samples = await sampleLoop(procs, gateway, servers.flat(), opts, t0, () => ({ requests: load.requests, errors: { ...load.errors } }));
  const runS = (performance.now() - t0) / 1000;
  stopping = true;
  await Promise.all(running);
  await load.stop();
  stream.stop();
  procs.assertAlive();
  const exit = await procs.stop(gateway.child, 15_000);
  await Promise.all(servers.flat().map((s) => s.close()));
  procs.killAll();

  const figures = slopes(samples, runS);
  const trips = { expected: 0, taken: 0, unexpected: 0, byReason: {} as Record<string, number> };
  for (const d of drivers) {
    trips.expected += d.counts.trips.expected;
    trips.taken += d.counts.trips.taken;
    for (const [k, v] of Object.entries(d.counts.trips.byReason)) trips.byReason[k] = (trips.byReason[k] ?? 0) + v;
  }
  // Rollbacks the judge decided that no trip of the drivers accounts for: a candidate that was
  // not set to fail, or a second rollback event for one.
  const accounted = new Set(drivers.flatMap((d) => d.tripped));
  const unexpectedTrips = stream.judgeRollbacks.filter((e) => !accounted.delete(`${e.route}/${e.from}`));
  trips.unexpected = unexpectedTrips.length;
  const sum = (f: (d: RouteDriver) => number) => drivers.reduce((a, d) => a + f(d), 0);
  const driver = {
    cycles: sum((d) => d.counts.cycles),
    deploys: sum((d) => d.counts.deploys),
    weights: sum((d) => d.counts.weights),
    promotes: sum((d) => d.counts.promotes),
    rollbacks: sum((d) => d.counts.rollbacks),
    adminErrors: sum((d) => d.counts.adminErrors),
    problems: [...drivers.flatMap((d) => d.counts.problems), ...driverFailures],
  };
  const pass = {
    ...resourcePass(figures),
    clientErrors: load.errors.unexpected === 0 && load.requests > 0,
    trips: trips.expected > 0 && trips.taken === trips.expected && trips.unexpected === 0,
    statsStream: stream.reconnects === 0 && stream.drops.length === 0,
    admin: driver.adminErrors === 0 && driver.problems.length === 0,
    shutdown: exit !== null && exit.code === 0 && !exit.killed,
  };
  const overall = Object.values(pass).every(Boolean);
  emit({
    kind: 'summary',
    bench: 'soak',
    minutes: opts.minutes,
    rate: opts.rate,
    slopes: figures,
    targets: TARGETS,
    requests: { total: load.requests, perSecond: round3(load.requests / runS), byStatus: load.byStatus, skipped: load.skipped },
    clientErrors: { expected: load.errors.expected, unexpected: load.errors.unexpected, firstUnexpected: load.unexpected.slice(0, 10) },
    trips: { ...trips, firstUnexpected: unexpectedTrips.slice(0, 10).map((e) => ({ route: e.route, from: e.from, cause: e.cause, message: e.message, atS: round3((e.at - t0) / 1000) })) },
    faultedUpstreamAnswers: Object.fromEntries(servers.flat().map((s) => [s.name, s.faulted])),
    driver,
    statsStream: { connects: stream.connects, reconnects: stream.reconnects, statsEvents: stream.stats, maxGapMs: round3(stream.maxStatsGapMs), drops: stream.drops },
    gatewayLog: gateway.log,
    gatewayExit: exit,
    node: process.version,
    loadAvg1m: { start: loadStart, end: round3(os.loadavg()[0]!) },
    pass: { ...pass, overall },
  });
  return overall ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    }
    console.error(`bench:soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
