import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { GatewayConfig } from '../config/types.js';
import { parseConfig } from '../config/load.js';
import { Gateway } from '../proxy/gateway.js';
import type { Outcome } from '../proxy/outcome.js';
import { startModelServer } from './model-server.js';

interface Tally {
  requests: number;
  failures: number;
  latencies: number[];
}

const tally = (): Tally => ({ requests: 0, failures: 0, latencies: [] });

function p99(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] as number;
}

/**
 * `rollgate demo`: two sample model servers, the gateway in front of them with a 20% canary,
 * and a load generator, all on free loopback ports; shows the split live, then a summary.
 */
export async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { seconds: { type: 'string', default: '8' } }, strict: true });
  const seconds = Math.max(1, Number(values.seconds) || 8);
  const out = process.stdout;

  const stable = await startModelServer('v1', { failureRate: 0.002, latencyMs: 8 });
  const candidate = await startModelServer('v2', { failureRate: 0.002, latencyMs: 8 });
  const config: GatewayConfig = parseConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    routes: [
      {
        name: 'sentiment',
        match: { pathPrefix: '/v1/models/sentiment' },
        stable: { version: 'v1', url: stable.url },
        candidate: { version: 'v2', url: candidate.url, weight: 20 },
      },
    ],
  });

  const windows = { stable: tally(), candidate: tally() };
  const sink = (o: Outcome): void => {
    const t = windows[o.role];
    t.requests++;
    if (o.failure !== 'none' && o.failure !== 'aborted') t.failures++;
    t.latencies.push(o.latencyMs);
  };
  const gateway = new Gateway(config, { onOutcome: sink });
  const addr = await gateway.listen();
  const base = `http://127.0.0.1:${addr.port}`;
  out.write(`rollgate demo: gateway on ${base}, stable v1 on ${stable.url}, candidate v2 on ${candidate.url} at 20%\n\n`);

  const client = new Pool(base, { connections: 8 });
  let stop = false;
  let clientErrors = 0;
  const body = JSON.stringify({ inputs: ['the service was quick and friendly'] });
  const worker = async (): Promise<void> => {
    while (!stop) {
      const r = await client.request({
        path: '/v1/models/sentiment:predict',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      await r.body.dump();
      if (r.statusCode >= 500) clientErrors++;
    }
  };
  const workers = Array.from({ length: 8 }, worker);

  const interrupted = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  const line = (): string => {
    const row = (name: string, t: Tally): string =>
      `${name.padEnd(10)} ${String(t.requests).padStart(7)} req  ${((100 * t.failures) / Math.max(1, t.requests)).toFixed(2).padStart(6)}% failed  p99 ${p99(t.latencies).toFixed(1).padStart(6)} ms`;
    return `${row('stable', windows.stable)}\n${row('candidate', windows.candidate)}\n`;
  };
  const tty = out.isTTY === true;
  const started = Date.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (tty) out.write('\x1b[2A\x1b[J');
      out.write(line());
      if (Date.now() - started >= seconds * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 500);
    if (tty) out.write('\n\n');
    void interrupted.then(() => {
      clearInterval(timer);
      resolve();
    });
  });
  stop = true;
  await Promise.allSettled(workers);
  await client.close();
  await gateway.close(1_000);
  await Promise.all([stable.close(), candidate.close()]);

  const total = windows.stable.requests + windows.candidate.requests;
  const share = (100 * windows.candidate.requests) / Math.max(1, total);
  out.write(`\nsummary: ${total} requests served, ${share.toFixed(1)}% on the candidate (weight 20), ${clientErrors} user-visible errors\n`);
  return 0;
}
