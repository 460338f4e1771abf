import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, processTree, round3, type Procs } from './lib.js';
import { nginxArgs } from './overhead-nginx.js';

/** The targets of bench:overhead and how each is started, each as its own process. */

export const REGIMES = {
  throughput: { connections: 50, delayMs: 0 },
  latency2ms: { connections: 10, delayMs: 2 },
} as const;
export type Regime = keyof typeof REGIMES;
export const TARGETS = ['direct', 'floor', 'undici', 'fastify', 'nginx', 'rollgate', 'rollgate-fast', 'rollgate-w2', 'plugin', 'rollgate-json', 'rollgate-sse', 'rollgate-llm'] as const;
/** Targets whose requests go to the streamed chat completion path instead of REQUEST_PATH. */
export const STREAM_PATH = '/v1/chat/completions';
/** rollgate with checks (SPEC §9): the JSON Schema check on the ~240-byte answers; the LLM check on streams, beside rollgate without it on the same streams. */
const CHECKED = {
  'rollgate-json': `    checks: { json: { schema: { type: object, required: [outputs], properties: { outputs: { type: array, items: { type: object, required: [name, data] } } } } } }\n`,
  'rollgate-sse': '',
  'rollgate-llm': '    checks: { llm: { format: openai } }\n',
} as const;
export type Target = (typeof TARGETS)[number];

export const REQUEST_PATH = '/v2/models/sentiment/infer';
export const REQUEST_BODY = JSON.stringify({
  id: '6f1c2a9e-4b7d-4e2a-9c3f-1d8e5b7a2c40',
  inputs: [
    {
      name: 'text',
      datatype: 'BYTES',
      shape: [1],
      data: ['The delivery was late, but the support team sorted it out quickly and kindly.'],
    },
  ],
  parameters: { max_length: 128, truncation: true, return_scores: true, batch: 1 },
  outputs: [{ name: 'label' }, { name: 'score' }],
});

const here = path.dirname(fileURLToPath(import.meta.url));
const ROLLGATE_MAIN = path.resolve(here, '../src/cli/main.js');
const node = process.execPath;

/** The bench's processes, and a command prefixed with taskset (`cpus`: a CPU or a list) when pinning is on. */
export interface Harness {
  procs: Procs;
  pinned(cpus: number | string, cmd: string, args: string[]): [string, string[]];
  layout: Layout;
}

/** rollgate-w2's workers, and the cores they need of their own beside the upstream's and wrk's. */
export const W2_WORKERS = 2;
const CORES_FOR_SCALING = W2_WORKERS + 2;

/**
 * Where the proxies run. With enough cores (one each for the upstream, wrk and rollgate-w2's
 * workers) every proxy leaves the upstream's CPU 0 for CPU 2, and rollgate-w2's workers get
 * CPUs 2 and 3, so workers: 2 against workers: 1 measures scaling and not the upstream's or
 * wrk's share of a core. With fewer, the proxies share CPU 0 with the upstream as before, and
 * `unmeasurable` says why the scaling target cannot be checked.
 */
export interface Layout {
  cores: number;
  proxies: number;
  /** One CPU per rollgate-w2 worker, or null when they share the proxies' CPU. */
  workers: number[] | null;
  unmeasurable: string | null;
}

export function layout(pinned: boolean, cores = os.availableParallelism()): Layout {
  if (!pinned) {
    return { cores, proxies: 0, workers: null, unmeasurable: 'pinning is off: the workers, the upstream and wrk would compete for the same cores' };
  }
  if (cores < CORES_FOR_SCALING) {
    return {
      cores,
      proxies: 0,
      workers: null,
      unmeasurable: `${cores} CPUs: workers: ${W2_WORKERS} needs a core per worker besides the upstream's and wrk's (${CORES_FOR_SCALING} in all), so its workers share CPU 0 with the upstream and only CPU per request compares`,
    };
  }
  return { cores, proxies: 2, workers: Array.from({ length: W2_WORKERS }, (_, i) => 2 + i), unmeasurable: null };
}

export interface Server {
  url: string;
  child: ChildProcess;
  /** Share of probe answers served by the candidate (rollgate's `x-rollgate-version: v2`). */
  candidateShare?: number | null;
  /** The request path, when not REQUEST_PATH. */
  path?: string;
}

/** Starts the upstream and the selected proxies; every child goes into `children` as it starts. */
export async function startServers({ procs, pinned, layout }: Harness, regime: Regime, targets: Target[], tmp: string, children: ChildProcess[]): Promise<Map<Target, Server>> {
  const [upPort, fastifyPort, undiciPort, pluginPort, floorPort, nginxPort, ...rgPorts] = (await freePorts(20)) as [number, number, number, number, number, number, ...number[]];
  const upstreamUrl = `http://127.0.0.1:${upPort}`;
  const servers = new Map<Target, Server>();

  const up = procs.start(
    'upstream',
    ...pinned(0, node, [path.join(here, 'upstream.js'), '--port', String(upPort), '--delay-ms', String(REGIMES[regime].delayMs)]),
  );
  children.push(up);
  await procs.waitForPort('upstream', upPort);
  if (targets.includes('direct')) servers.set('direct', { url: upstreamUrl, child: up });

  // The proxies that take `--port N --upstream URL`, and nginx.
  const proxies = [
    { target: 'floor', name: 'dispatch floor', port: floorPort, cmd: [node, path.join(here, 'dispatch-proxy.js'), '--port', String(floorPort), '--upstream', upstreamUrl] },
    { target: 'undici', name: 'undici proxy', port: undiciPort, cmd: [node, path.join(here, 'undici-proxy.js'), '--port', String(undiciPort), '--upstream', upstreamUrl] },
    { target: 'fastify', name: 'fastify proxy', port: fastifyPort, cmd: [node, path.join(here, 'fastify-proxy.js'), '--port', String(fastifyPort), '--upstream', upstreamUrl] },
    { target: 'nginx', name: 'nginx', port: nginxPort, cmd: ['nginx'] },
    { target: 'plugin', name: 'rollgate fastify plugin', port: pluginPort, cmd: [node, path.join(here, 'fastify-plugin-host.js'), '--port', String(pluginPort), '--upstream', upstreamUrl] },
  ] as const;
  for (const p of proxies) {
    if (!targets.includes(p.target)) continue;
    const [cmd, ...args] = p.cmd;
    const child = procs.start(p.name, ...pinned(layout.proxies, cmd, p.target === 'nginx' ? nginxArgs(tmp, regime, p.port, upPort) : args));
    children.push(child);
    await procs.waitForPort(p.name, p.port);
    servers.set(p.target, { url: `http://127.0.0.1:${p.port}`, child });
  }

  const rollgates: [Target, string][] = [['rollgate', ''], ['rollgate-fast', ''], ['rollgate-w2', ''], ...(Object.entries(CHECKED) as [Target, string][])];
  for (const [i, [target, checks]] of rollgates.entries()) {
    if (!targets.includes(target)) continue;
    if (!existsSync(ROLLGATE_MAIN)) {
      throw new Error(`rollgate CLI not built (${ROLLGATE_MAIN}); run npm run build, or pass --targets direct,fastify`);
    }
    const [port, admin] = [rgPorts[2 * i]!, rgPorts[2 * i + 1]!];
    const w2 = target === 'rollgate-w2';
    // rollgate-fast: `listen.memory: fast` (V8's defaults) beside the lean default.
    const memory = target === 'rollgate-fast' ? ', memory: fast' : '';
    const config = path.join(tmp, `${target}-${regime}.yaml`);
    writeFileSync(
      config,
      `listen: { host: 127.0.0.1, port: ${port}${w2 ? `, workers: ${W2_WORKERS}` : ''}${memory} }
admin:  { host: 127.0.0.1, port: ${admin} }
log: { level: warn }
routes:
  - name: bench
    match: { pathPrefix: / }
    stable:    { version: v1, url: ${upstreamUrl} }
    candidate: { version: v2, url: ${upstreamUrl}, weight: 10 }
${checks}`,
    );
    // rollgate-w2's primary may use every worker's CPU; each worker is then held to its own.
    const cpus = w2 && layout.workers !== null ? layout.workers.join(',') : layout.proxies;
    const rg = procs.start(target, ...pinned(cpus, node, [ROLLGATE_MAIN, 'serve', '--config', config]));
    children.push(rg);
    await procs.waitForPort(target, port);
    if (w2) await awaitWorkers(procs, rg, layout.workers);
    servers.set(target, { url: `http://127.0.0.1:${port}`, child: rg, ...(target === 'rollgate-sse' || target === 'rollgate-llm' ? { path: STREAM_PATH } : {}) });
  }

  for (const [target, server] of servers) {
    const split = target === 'rollgate' || target === 'rollgate-fast' || target === 'rollgate-w2' || target === 'plugin';
    const versions = await probe(target, server.url + (server.path ?? REQUEST_PATH), split ? 200 : 1);
    if (split) {
      const labelled = versions.filter((v) => v !== null).length;
      server.candidateShare = labelled ? round3(versions.filter((v) => v === 'v2').length / labelled) : null;
    }
  }
  return servers;
}

/**
 * Waits until rollgate-w2's primary has forked all its workers, then pins each (all its threads:
 * `taskset -a`) to a CPU of its own when `cpus` gives them one.
 */
async function awaitWorkers(procs: Procs, primary: ChildProcess, cpus: number[] | null): Promise<void> {
  const pid = primary.pid;
  if (pid === undefined) throw new Error('rollgate-w2 did not start');
  const deadline = Date.now() + 20_000;
  let workers = processTree(pid).slice(1);
  while (workers.length < W2_WORKERS) {
    procs.assertAlive();
    if (Date.now() > deadline) throw new Error(`rollgate-w2 has ${workers.length} of its ${W2_WORKERS} workers after 20 s`);
    await new Promise((r) => setTimeout(r, 50));
    workers = processTree(pid).slice(1);
  }
  if (cpus === null) return;
  for (const [i, worker] of workers.entries()) {
    const r = await procs.run('taskset', ['-a', '-p', '-c', String(cpus[i % cpus.length]), String(worker)]);
    if (r.code !== 0) throw new Error(`taskset could not pin rollgate-w2's worker ${worker}: ${r.stderr}`);
  }
}

/**
 * Requests through a target before any load, so a broken proxy fails loudly rather than as
 * 0 req/s; returns each answer's `x-rollgate-version`, to show the split is live.
 */
async function probe(target: Target, url: string, count: number): Promise<(string | null)[]> {
  const versions: (string | null)[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: REQUEST_BODY,
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (res.status !== 200 || !(text.includes('"outputs"') || text.endsWith('data: [DONE]\n\n'))) {
      throw new Error(`${target} probe: expected 200 with the upstream's answer, got ${res.status}: ${text.slice(0, 300)}`);
    }
    versions.push(res.headers.get('x-rollgate-version'));
  }
  return versions;
}
