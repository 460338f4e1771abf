import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { createRollgate, type Rollgate, type RollgateOptions } from '../../src/app.js';
import type { Gateway } from '../../src/proxy/gateway.js';
import type { Upstream } from '../../src/proxy/upstream.js';
import type { Rollouts } from '../../src/rollout/rollouts.js';
import type { MetricsRecorder } from '../../src/metrics/recorder.js';
import type { Outcome } from '../../src/proxy/outcome.js';

export interface TestUpstream {
  url: string;
  port: number;
  server: Server;
  /** Requests seen, in order. */
  seen: IncomingMessage[];
  /** Sockets currently open to this upstream. */
  openSockets(): number;
  close(): Promise<void>;
}

/** A real HTTP upstream on a free loopback port. */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestUpstream> {
  const seen: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    openSockets: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An upstream that answers `label` as JSON and echoes what it received in headers. */
export function startLabelled(label: string, status = 200): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ served: label, path: req.url, headers: req.headers });
      res.writeHead(status, { 'content-type': 'application/json', 'x-served-by': label });
      res.end(body);
    });
  });
}

/** A candidate model server that answers 500 to the requests carrying `x-fail`, else `{"served":"v2"}`. */
export function startFailingOnHeader(): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(req.headers['x-fail'] ? 500 : 200, { 'content-type': 'application/json' }).end('{"served":"v2"}'));
  });
}

/** Builds a validated config from a partial YAML-shaped object (listen and admin on port 0). */
export function config(routes: unknown[], extra: Record<string, unknown> = {}): GatewayConfig {
  return parseConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    routes,
    ...extra,
  });
}

export interface TestGateway {
  gateway: Gateway;
  rollouts: Rollouts<Upstream>;
  metrics: MetricsRecorder;
  hooks: Rollgate['hooks'];
  url: string;
  port: number;
  /** Copies of every outcome the gateway produced. */
  outcomes: Outcome[];
  openConnections(): Promise<number>;
  close(): Promise<void>;
}

export async function startGateway(cfg: GatewayConfig, options: RollgateOptions = {}): Promise<TestGateway> {
  const outcomes: Outcome[] = [];
  const { gateway, rollouts, metrics, hooks } = createRollgate(cfg, {
    ...options,
    onOutcome: (o) => {
      outcomes.push({ route: o.route, role: o.role, version: o.version, status: o.status, failure: o.failure, latencyMs: o.latencyMs, ttfbMs: o.ttfbMs, startedAt: o.startedAt, streaming: o.streaming, replayed: o.replayed, slowMask: o.slowMask });
      options.onOutcome?.(o);
    },
  });
  hooks.start();
  const addr = await gateway.listen();
  return {
    gateway,
    rollouts,
    metrics,
    hooks,
    url: `http://127.0.0.1:${addr.port}`,
    port: addr.port,
    outcomes,
    openConnections: () =>
      new Promise((resolve, reject) => gateway.server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    close: () => gateway.close(500),
  };
}

export { seededRng } from '../../src/traffic/seeded-rng.js';

/** Writes raw bytes to a port and collects everything the server sends until it closes or `ms` pass. */
export function rawExchange(port: number, data: string | Buffer, ms = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

/** Polls `check` every 10 ms until it is true or `ms` pass; returns its last value. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 3_000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A loopback port nothing listens on (bound, read, released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Closes each in order (client pools first, then the gateway, then upstreams), for t.teardown. */
export function closeAll(...things: { close(): Promise<unknown> }[]): () => Promise<void> {
  return async () => {
    for (const thing of things) await thing.close();
  };
}
