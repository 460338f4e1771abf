import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool } from 'undici';
import { rollgate, rollgateAdmin } from '../../src/fastify.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { seededRng, startUpstream, type TestUpstream } from './servers.js';

/** The admin token of the host apps these helpers build. */
export const TOKEN = 'plugin-admin-token';

/** A model server that answers its label, the path and the sha256 and size of the body it got. */
export function hashing(label: string, status = 200): Promise<TestUpstream & { set(status: number): void }> {
  let answer = status;
  return startUpstream((req, res) => {
    const h = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      bytes += c.length;
    });
    req.on('end', () => {
      res.writeHead(answer, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ served: label, path: req.url, bytes, sha: h.digest('hex') }));
    });
  }).then((up) => Object.assign(up, { set: (s: number) => void (answer = s) }));
}

/** Route `m` on /v1/models/m, the candidate at 30%. */
export function route(stableUrl: string, candidateUrl: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'm',
    match: { pathPrefix: '/v1/models/m' },
    stable: { version: 'v1', url: stableUrl },
    candidate: { version: 'v2', url: candidateUrl, weight: 30 },
    ...extra,
  };
}

export interface Host {
  app: FastifyInstance;
  pool: Pool;
  base: string;
  /** What the host's own onResponse hook saw, one status per request. */
  responses: number[];
}

/** A host Fastify app with its own route and hooks, rollgate registered, the admin under /rollgate. */
export async function host(cfg: GatewayConfig | string, seed = 7): Promise<Host> {
  const app = Fastify({ logger: false });
  const responses: number[] = [];
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('x-host-hook', 'ran');
  });
  app.addHook('onResponse', async (_req, reply) => {
    responses.push(reply.statusCode);
  });
  app.get('/hello', async () => ({ hello: 'from the host' }));
  await app.register(rollgate, { config: cfg, rng: seededRng(seed) });
  await app.register(rollgateAdmin, { prefix: '/rollgate', token: TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { app, pool: new Pool(base, { connections: 2 }), base, responses };
}

/** POSTs `n` small JSON bodies one after another; the versions and statuses that answered. */
export async function send(pool: Pool, n: number, path = '/v1/models/m:predict'): Promise<{ versions: string[]; statuses: number[] }> {
  const versions: string[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await pool.request({ path, method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } });
    await r.body.dump();
    versions.push(String(r.headers['x-rollgate-version']));
    statuses.push(r.statusCode);
  }
  return { versions, statuses };
}
