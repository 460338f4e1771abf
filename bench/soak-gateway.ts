import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Procs } from './lib.js';
import type { ProbeSample, SampleRequest } from './soak-probe.js';

/**
 * The soaked gateway: `rollgate serve` as a process of its own, as an operator runs it, with the
 * probe (soak-probe.ts) preloaded and an IPC channel to ask it for samples. Its log (JSON lines
 * on stdout, level warn and up) is counted, with the first few lines kept.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const ROLLGATE_MAIN = path.resolve(here, '../src/cli/main.js');
const PROBE = pathToFileURL(path.join(here, 'soak-probe.js')).href;
const KEEP_LINES = 5;

export interface GatewayLog {
  warn: number;
  error: number;
  first: string[];
}

export class SoakedGateway {
  readonly child: ChildProcess;
  readonly log: GatewayLog = { warn: 0, error: 0, first: [] };

  constructor(procs: Procs, configPath: string, env: NodeJS.ProcessEnv) {
    this.child = procs.start('gateway', process.execPath, ['--expose-gc', '--import', PROBE, ROLLGATE_MAIN, 'serve', '--config', configPath], { ipc: true, env });
    let buf = '';
    this.child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.#line(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    // Only what cannot go to the log is written to stderr: count it as an error.
    this.child.stderr?.on('data', (c: Buffer) => this.#keep('error', c.toString().trim()));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Asks the probe for a sample over the IPC channel. */
  sample(): Promise<ProbeSample> {
    const child = this.child;
    return new Promise((resolve, reject) => {
      const onMessage = (m: ProbeSample): void => {
        if (m?.op !== 'soak-sample') return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(m);
      };
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error('the gateway did not answer a sample within 10 s'));
      }, 10_000);
      child.on('message', onMessage);
      child.send({ op: 'soak-sample' } satisfies SampleRequest);
    });
  }

  #line(line: string): void {
    let level: number;
    try {
      level = (JSON.parse(line) as { level?: number }).level ?? 0;
    } catch {
      level = 50;
    }
    if (level >= 50) this.#keep('error', line);
    else if (level >= 40) this.#keep('warn', line);
  }

  #keep(kind: 'warn' | 'error', line: string): void {
    if (line === '') return;
    this.log[kind]++;
    if (this.log.first.length < KEEP_LINES) this.log.first.push(line.slice(0, 400));
  }
}
