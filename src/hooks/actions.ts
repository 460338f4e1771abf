import { spawn } from 'node:child_process';
import { request } from '../undici.js';
import type { HookAction } from '../config/types.js';
import { OUTPUT_LIMIT, type HookJob } from './job.js';

export interface ActionResult {
  ok: boolean;
  output: string;
  error: string | null;
}

/** The facts an exec hook gets as environment variables (SPEC §9), never interpolated into a shell. */
export function hookEnv(job: HookJob): Record<string, string> {
  return {
    ROLLGATE_EVENT: job.event,
    ROLLGATE_ROUTE: job.route,
    ROLLGATE_REVISION: String(job.revision),
    ROLLGATE_VERSION: job.version,
    ROLLGATE_DATA_SNAPSHOT: job.dataSnapshot ?? '',
    ROLLGATE_FROM_VERSION: job.fromVersion ?? '',
    ROLLGATE_FROM_DATA_SNAPSHOT: job.fromDataSnapshot ?? '',
    ROLLGATE_REASON: job.reason,
  };
}

/** The same facts as an http hook's JSON body, in camelCase, with the evidence. */
export function hookBody(job: HookJob): object {
  const { event, route, revision, version, dataSnapshot, fromVersion, fromDataSnapshot, reason, evidence } = job;
  return { event, route, revision, version, dataSnapshot, fromVersion, fromDataSnapshot, reason, evidence };
}

/** Runs one action of a job to its end, its timeout or its failure; never throws. */
export function runAction(action: HookAction, job: HookJob, signal: AbortSignal): Promise<ActionResult> {
  return action.kind === 'exec' ? runExec(action.command, action.timeoutMs, job, signal) : runHttp(action.url, action.timeoutMs, job, signal);
}

class Output {
  #text = '';

  add(chunk: Buffer): void {
    if (this.#text.length < OUTPUT_LIMIT) this.#text = (this.#text + chunk.toString('utf8')).slice(0, OUTPUT_LIMIT);
  }

  get text(): string {
    return this.#text;
  }
}

function runExec(command: string[], timeoutMs: number, job: HookJob, signal: AbortSignal): Promise<ActionResult> {
  const [program, ...args] = command as [string, ...string[]];
  return new Promise((resolve) => {
    const out = new Output();
    let timedOut = false;
    const child = spawn(program, args, { env: { ...process.env, ...hookEnv(job) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const stop = (): void => void child.kill('SIGKILL');
    signal.addEventListener('abort', stop, { once: true });
    child.stdout.on('data', (c: Buffer) => out.add(c));
    child.stderr.on('data', (c: Buffer) => out.add(c));
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      const why = err.code === 'ENOENT' ? `command not found: ${program}` : err.code === 'EACCES' ? `command not executable: ${program}` : `${program} could not start: ${err.message}`;
      resolve({ ok: false, output: out.text, error: why });
    });
    child.once('close', (code, killedBy) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      if (timedOut) resolve({ ok: false, output: out.text, error: `${program} did not finish within ${timeoutMs / 1000} s` });
      else if (code === 0) resolve({ ok: true, output: out.text, error: null });
      else resolve({ ok: false, output: out.text, error: killedBy !== null ? `${program} was killed by ${killedBy}` : `${program} exited with code ${code}` });
    });
  });
}

async function runHttp(url: string, timeoutMs: number, job: HookJob, signal: AbortSignal): Promise<ActionResult> {
  const out = new Output();
  try {
    const r = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(hookBody(job)),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
    for await (const chunk of r.body) out.add(chunk as Buffer);
    if (r.statusCode >= 200 && r.statusCode < 300) return { ok: true, output: out.text, error: null };
    return { ok: false, output: out.text, error: `${url} answered ${r.statusCode}` };
  } catch (err) {
    const e = err as Error;
    const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${timeoutMs / 1000} s` : e.message;
    return { ok: false, output: out.text, error: `${url}: ${why}` };
  }
}
