import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, round3, type Procs } from './lib.js';

/** The targets of bench:overhead and how each is started, each as its own process. */

export const REGIMES = {
  throughput: { connections: 50, delayMs: 0 },
  latency2ms: { connections: 10, delayMs: 2 },
} as const;
export type Regime = keyof typeof REGIMES;
export const TARGETS = ['direct', 'undici', 'fastify', 'rollgate', 'plugin', 'rollgate-json', 'rollgate-sse', 'rollgate-llm'] as const;
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

/** The bench's processes, and a command prefixed with taskset when pinning is on. */
export interface Harness {
  procs: Procs;
  pinned(cpu: 0 | 1, cmd: string, args: string[]): [string, string[]];
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
export async function startServers({ procs, pinned }: Harness, regime: Regime, targets: Target[], tmp: string, children: ChildProcess[]): Promise<Map<Target, Server>> {
  const [upPort, fastifyPort, rgPort, adminPort, undiciPort, pluginPort, ...checkedPorts] = (await freePorts(12)) as [number, number, number, number, number, number, ...number[]];
  const upstreamUrl = `http://127.0.0.1:${upPort}`;
  const servers = new Map<Target, Server>();

  const up = procs.start(
    'upstream',
    ...pinned(0, node, [path.join(here, 'upstream.js'), '--port', String(upPort), '--delay-ms', String(REGIMES[regime].delayMs)]),
  );
  children.push(up);
  await procs.waitForPort('upstream', upPort);
  if (targets.includes('direct')) servers.set('direct', { url: upstreamUrl, child: up });

  // The proxies that take `--port N --upstream URL`.
  const proxies = [
    { target: 'undici', name: 'undici proxy', script: 'undici-proxy.js', port: undiciPort },
    { target: 'fastify', name: 'fastify proxy', script: 'fastify-proxy.js', port: fastifyPort },
    { target: 'plugin', name: 'rollgate fastify plugin', script: 'fastify-plugin-host.js', port: pluginPort },
  ] as const;
  for (const p of proxies) {
    if (!targets.includes(p.target)) continue;
    const child = procs.start(p.name, ...pinned(0, node, [path.join(here, p.script), '--port', String(p.port), '--upstream', upstreamUrl]));
    children.push(child);
    await procs.waitForPort(p.name, p.port);
    servers.set(p.target, { url: `http://127.0.0.1:${p.port}`, child });
  }

  const rollgates: [Target, string, number, number][] = [['rollgate', '', rgPort, adminPort]];
  (Object.keys(CHECKED) as (keyof typeof CHECKED)[]).forEach((t, i) => rollgates.push([t, CHECKED[t], checkedPorts[2 * i]!, checkedPorts[2 * i + 1]!]));
  for (const [target, checks, port, admin] of rollgates) {
    if (!targets.includes(target)) continue;
    if (!existsSync(ROLLGATE_MAIN)) {
      throw new Error(`rollgate CLI not built (${ROLLGATE_MAIN}); run npm run build, or pass --targets direct,fastify`);
    }
    const config = path.join(tmp, `${target}-${regime}.yaml`);
    writeFileSync(
      config,
      `listen: { host: 127.0.0.1, port: ${port} }
admin:  { host: 127.0.0.1, port: ${admin} }
log: { level: warn }
routes:
  - name: bench
    match: { pathPrefix: / }
    stable:    { version: v1, url: ${upstreamUrl} }
    candidate: { version: v2, url: ${upstreamUrl}, weight: 10 }
${checks}`,
    );
    const rg = procs.start(target, ...pinned(0, node, [ROLLGATE_MAIN, 'serve', '--config', config]));
    children.push(rg);
    await procs.waitForPort(target, port);
    servers.set(target, { url: `http://127.0.0.1:${port}`, child: rg, ...(target === 'rollgate-sse' || target === 'rollgate-llm' ? { path: STREAM_PATH } : {}) });
  }

  for (const [target, server] of servers) {
    const split = target === 'rollgate' || target === 'plugin';
    const versions = await probe(target, server.url + (server.path ?? REQUEST_PATH), split ? 200 : 1);
    if (split) {
      const labelled = versions.filter((v) => v !== null).length;
      server.candidateShare = labelled ? round3(versions.filter((v) => v === 'v2').length / labelled) : null;
    }
  }
  return servers;
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
