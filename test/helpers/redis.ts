import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { waitForPort } from './cli.js';
import { freePort } from './servers.js';

export interface TestRedis {
  url: string;
  port: number;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A private redis-server on a free loopback port, keeping nothing on disk. */
export async function startRedis(): Promise<TestRedis> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) {
    throw new Error("redis-server is not on PATH: install Debian's redis-server package (apt-get install redis-server); .ci/run does");
  }
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    await waitForPort(port, 10_000);
  };
  const kill = async () => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  process.once('exit', () => (child)?.kill('SIGKILL'));
  return { url: `redis://127.0.0.1:${port}`, port, kill, restart: start, stop: kill };
}
