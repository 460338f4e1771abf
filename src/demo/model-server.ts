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
  behaviour: ModelBehaviour;
  close(): Promise<void>;
}

/**
 * A small stand-in for a model server: POST /v1/models/<name>[:predict] answers a JSON
 * prediction after `latencyMs` (log-normal jitter), or 500 with probability `failureRate`.
 * GET /v2/health/ready answers 200.
 */
export async function startModelServer(label: string, behaviour: ModelBehaviour, rng: () => number = Math.random): Promise<ModelServer> {
  const state = { behaviour };
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v2/health/ready') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ready":true}');
      return;
    }
    req.resume();
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
          .end(`{"model":"${label}","label":"${score > 0.5 ? 'positive' : 'negative'}","score":${score.toFixed(4)}}`);
      }, b.latencyMs * jitter);
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
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
