import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';

/** Free loopback ports, all held open together so no two are the same. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<net.Server>((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** The bench's child processes; all are killed on exit, on error and on SIGINT/SIGTERM. */
export class Procs {
  readonly #live = new Map<ChildProcess, { name: string; tail: string; expected: boolean }>();
  failure: Error | null = null;

  constructor() {
    process.once('exit', () => this.killAll());
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        this.killAll();
        process.exit(130);
      });
    }
  }

  /**
   * A long-running server; exiting before stop() is a harness failure. With `ipc`, the child has
   * an IPC channel (child.send, 'message').
   */
  start(name: string, cmd: string, args: string[], opts: { ipc?: boolean; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = spawn(cmd, args, {
      stdio: opts.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      ...(opts.env === undefined ? {} : { env: opts.env }),
    });
    const entry = { name, tail: '', expected: false };
    this.#live.set(child, entry);
    const keepTail = (chunk: Buffer) => {
      entry.tail = (entry.tail + chunk.toString()).slice(-2000);
    };
    child.stdout?.on('data', keepTail);
    child.stderr?.on('data', keepTail);
    child.once('error', (err) => {
      this.failure ??= new Error(`${name} could not start: ${err.message}`);
    });
    child.once('exit', (code, signal) => {
      this.#live.delete(child);
      if (!entry.expected) {
        this.failure ??= new Error(
          `${name} exited unexpectedly (code ${code}, signal ${signal})\n${entry.tail.trim()}`,
        );
      }
    });
    return child;
  }

  assertAlive(): void {
    if (this.failure) throw this.failure;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; how it ended (null when it had already gone). */
  async stop(child: ChildProcess, graceMs = 2000): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean } | null> {
    const entry = this.#live.get(child);
    if (!entry) return null;
    entry.expected = true;
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (code, signal) => r([code, signal])));
    child.kill('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, graceMs);
    const [code, signal] = await exited;
    clearTimeout(timer);
    return { code, signal, killed };
  }

  killAll(): void {
    for (const [child, entry] of this.#live) {
      entry.expected = true;
      child.kill('SIGKILL');
    }
  }

  /** Resolves once the port accepts TCP connections; fails if the process dies or time runs out. */
  async waitForPort(name: string, port: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.assertAlive();
      if (await tryConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Runs a command to completion (wrk), killable like the servers. */
  run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.#live.set(child, { name: cmd, tail: '', expected: true });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', reject);
      child.once('close', (code) => {
        this.#live.delete(child);
        resolve({ code, stdout, stderr });
      });
    });
  }
}

export function hasCommand(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error;
}

/** CPU 0 for servers, CPU 1 for the load generator, when both exist and taskset works. */
export function pinning(): { enabled: boolean; servers: string | null; wrk: string | null; reason?: string } {
  if (os.availableParallelism() < 2) return { enabled: false, servers: null, wrk: null, reason: 'fewer than 2 CPUs' };
  const r = spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) return { enabled: false, servers: null, wrk: null, reason: 'taskset unavailable' };
  return { enabled: true, servers: 'cpu0', wrk: 'cpu1' };
}

export interface WrkResult {
  requests: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  non2xx: number;
  socket_errors: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  const f = UNIT_MS[unit];
  if (f === undefined) throw new Error(`unknown wrk time unit: ${unit}`);
  return Number(value) * f;
}

/** Parses `wrk --latency` output. */
export function parseWrk(out: string): WrkResult {
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`wrk output has no ${p}% latency:\n${out}`);
    return toMs(m[1]!, m[2]!);
  };
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const reqs = /^\s*(\d+) requests in /m.exec(out);
  if (!rps || !reqs) throw new Error(`cannot parse wrk output:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(reqs[1]),
    rps: Number(rps[1]),
    p50_ms: pct('50'),
    p99_ms: pct('99'),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socket_errors: sock ? sock.slice(1).reduce((a, n) => a + Number(n), 0) : 0,
  };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `5s`, `500ms`, `2m` or a bare number of seconds, in whole seconds (wrk's resolution). */
export function parseSeconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new Error(`bad duration: ${text}`);
  const n = Number(m[1]);
  const secs = m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
  return Math.max(1, Math.round(secs));
}

/** User+system CPU time of a process in microseconds (Linux /proc; null elsewhere). */
export function cpuMicros(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks / CLOCK_TICKS) * 1e6;
  } catch {
    return null;
  }
}

/**
 * A process and all its descendants (a gateway's workers, nginx's master and worker), found by
 * each process's parent in /proc/<pid>/stat; just `[root]` where there is no /proc to scan.
 */
export function processTree(root: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [root];
  }
  const children = new Map<number, number[]>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone since the directory was read
    }
    // After the parenthesised command name: state, then ppid.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ', 2)[1]);
    const siblings = children.get(ppid);
    if (siblings) siblings.push(Number(entry));
    else children.set(ppid, [Number(entry)]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** CPU microseconds of every process in `root`'s tree now, by pid (empty when /proc has none). */
export function treeCpu(root: number | undefined): Map<number, number> {
  const byPid = new Map<number, number>();
  if (root === undefined) return byPid;
  for (const pid of processTree(root)) {
    const us = cpuMicros(pid);
    if (us !== null) byPid.set(pid, us);
  }
  return byPid;
}

/**
 * CPU the tree spent between two treeCpu() snapshots: a process that started in between counts
 * from zero; one that exited in between loses what it spent after the first snapshot (a
 * restarted worker; /proc keeps nothing of it). Null when the second snapshot is empty.
 */
export function treeCpuSince(start: Map<number, number>, end: Map<number, number>): number | null {
  if (end.size === 0) return null;
  let sum = 0;
  for (const [pid, us] of end) sum += us - (start.get(pid) ?? 0);
  return sum;
}

const CLOCK_TICKS = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout);
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** RSS summed over `root`'s process tree, in MiB (null without /proc). */
export function treeRssMiB(root: number | undefined): number | null {
  if (root === undefined) return null;
  let kib = 0;
  for (const pid of processTree(root)) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      // exited since the scan
    }
  }
  return kib > 0 ? Math.round(kib / 1024) : null;
}

export function rssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

export const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** `cmd args` pinned to `cpu` with taskset when `pin` says so, else as they are. */
export function pinnedTo(pin: ReturnType<typeof pinning>): (cpu: 0 | 1, cmd: string, args: string[]) => [string, string[]] {
  return (cpu, cmd, args) => (pin.enabled ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);
}

/** A wrk script in `dir` that POSTs a small KServe-v2-shaped JSON request; returns its path. */
export function smallPostScript(dir: string): string {
  const body = '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["the film was a quiet, patient delight"]}]}';
  const file = join(dir, 'post.lua');
  writeFileSync(file, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[${body}]]\n`);
  return file;
}

/** The config of `rollgate serve` the memory and profile benches run: one route, 90/10 over one model. */
export function oneRouteConfig(port: number, admin: number, upstreamPort: number): string {
  const url = `http://127.0.0.1:${upstreamPort}`;
  return `listen: { host: 127.0.0.1, port: ${port} }\nadmin: { host: 127.0.0.1, port: ${admin} }\nlog: { level: warn }\nroutes:\n  - name: sentiment\n    match: { pathPrefix: /v1/models/sentiment }\n    stable: { version: v1, url: "${url}" }\n    candidate: { version: v2, url: "${url}", weight: 10 }\n`;
}
