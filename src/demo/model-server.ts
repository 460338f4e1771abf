import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a sample model server behaves at a moment: failure probability and answer time. */
export interface ModelBehaviour {
  failureRate: number;
  latencyMs: number;
}

export interface ModelServer {
  readonly url: string;
  readonly server: Server;
  /** Requests by the data snapshot id they asked for (the gateway's data header; '' for none). */
  readonly snapshots: Map<string, number>;
  behaviour: ModelBehaviour;
  close(): Promise<void>;
}

/**
 * A small stand-in for a model server: POST /v1/models/<name>[:predict] answers a JSON
 * prediction after `latencyMs` (log-normal jitter), or 500 with probability `failureRate`.
 * GET /v2/health/ready answers 200. It reads the data snapshot a request names in
 * x-rollgate-data-snapshot (as a model server reading versioned features would) and says which in
 * its answer.
 */
export async function startModelServer(label: string, behaviour: ModelBehaviour, rng: () => number = Math.random): Promise<ModelServer> {
  const state = { behaviour };
  const snapshots = new Map<string, number>();
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v2/health/ready') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ready":true}');
      return;
    }
    req.resume();
    const snapshot = req.headers['x-rollgate-data-snapshot'];
    const data = typeof snapshot === 'string' ? snapshot : '';
    snapshots.set(data, (snapshots.get(data) ?? 0) + 1);
    req.on('end', () => {
      const b = state.behaviour;
      const jitter = Math.exp(0.25 * gaussian(rng));
      setTimeout(() => {
        if (rng() < b.failureRate) {
          res.writeHead(500, { 'content-type': 'application/json' }).end(`{"error":"model ${label} failed"}`);
          return;
        }
        const score = rng();
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(`{"model":"${label}","data":${JSON.stringify(data)},"label":"${score > 0.5 ? 'positive' : 'negative'}","score":${score.toFixed(4)}}`);
      }, b.latencyMs * jitter);
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    snapshots,
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(b: ModelBehaviour) {
      state.behaviour = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function gaussian(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
