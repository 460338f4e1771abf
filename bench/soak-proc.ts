import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * A process's open descriptors and its TCP sockets to given ports, read from outside through
 * /proc (Linux), so that watching costs the watched process nothing. The soak reads them every
 * second and reports each interval's mean: the sockets come and go with the candidates and the
 * load, and a mean of ten readings shows a trend that one reading would hide in that noise.
 */

export interface Reading {
  fds: number;
  /** Sockets (any state but TIME_WAIT, which belongs to no process) by the name of their remote port. */
  sockets: Record<string, number>;
}

/** Open descriptors of `pid`, and the inodes of those that are sockets. */
function descriptors(pid: number): { count: number; socketInodes: Set<string> } {
  const dir = `/proc/${pid}/fd`;
  const names = readdirSync(dir);
  const socketInodes = new Set<string>();
  for (const name of names) {
    let target: string;
    try {
      target = readlinkSync(`${dir}/${name}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m !== null) socketInodes.add(m[1]!);
  }
  return { count: names.length, socketInodes };
}

export function read(pid: number, ports: ReadonlyMap<number, string>): Reading {
  const fds = descriptors(pid);
  const sockets: Record<string, number> = {};
  for (const name of ports.values()) sockets[name] = 0;
  // The network namespace's table: the process's own rows are those whose inode it holds.
  for (const file of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i]!.trim().split(/\s+/);
      if (f.length < 10 || !fds.socketInodes.has(f[9]!)) continue;
      const remote = f[2]!;
      const name = ports.get(parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16));
      if (name !== undefined) sockets[name]!++;
    }
  }
  return { fds: fds.count, sockets };
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

/** The readings of one interval, summed until taken. */
export class Readings {
  #n = 0;
  #fds = 0;
  #fdsMax = 0;
  #socketsMax = 0;
  #sockets: Record<string, number> = {};

  add(r: Reading): void {
    this.#n++;
    this.#fds += r.fds;
    this.#fdsMax = Math.max(this.#fdsMax, r.fds);
    let total = 0;
    for (const [name, n] of Object.entries(r.sockets)) {
      this.#sockets[name] = (this.#sockets[name] ?? 0) + n;
      total += n;
    }
    this.#socketsMax = Math.max(this.#socketsMax, total);
  }

  /** The interval's means (and maxima), and a fresh start. */
  take(): { fds: number; fdsMax: number; socketsByUpstream: Record<string, number>; socketsMax: number; readings: number } {
    const n = Math.max(1, this.#n);
    const out = {
      fds: round1(this.#fds / n),
      fdsMax: this.#fdsMax,
      socketsByUpstream: Object.fromEntries(Object.entries(this.#sockets).map(([k, v]) => [k, round1(v / n)])),
      socketsMax: this.#socketsMax,
      readings: this.#n,
    };
    this.#n = this.#fds = this.#fdsMax = this.#socketsMax = 0;
    this.#sockets = {};
    return out;
  }
}
