import { runCli, waitForPort, writeConfig, type Running } from './cli.js';
import { freePort } from './servers.js';

export interface ReplicaOptions {
  redisUrl: string;
  prefix: string;
  stableUrl: string;
  candidateUrl: string;
  weight: number;
  token: string;
  /** More YAML for route `m`, indented as its keys. */
  routeYaml?: string;
  /** More environment for the process (its hooks inherit it). */
  env?: NodeJS.ProcessEnv;
}

/**
 * A `rollgate serve` process on Redis with one route `m` (v1, and v2 at `weight`; latency judged
 * only where a test says so), killed in teardown; resolves once both planes listen.
 */
export async function serveReplica(t: { teardown(fn: () => unknown): void }, o: ReplicaOptions): Promise<{ run: Running; port: number; adminPort: number }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const run = runCli(
    [
      'serve',
      '--config',
      writeConfig(`listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
store: { kind: redis, url: ${o.redisUrl}, prefix: ${o.prefix} }
routes:
  - name: m
    match: { pathPrefix: /m }
    stable: { version: v1, url: ${o.stableUrl} }
    candidate: { version: v2, url: ${o.candidateUrl}, weight: ${o.weight} }
    rollback: { latency: { minDelta: 10s } }
${o.routeYaml ?? ''}`),
    ],
    { ROLLGATE_ADMIN_TOKEN: o.token, ...o.env },
  );
  t.teardown(() => void run.child.kill('SIGKILL'));
  await waitForPort(port);
  await waitForPort(adminPort);
  return { run, port, adminPort };
}
