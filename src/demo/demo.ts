import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startAdmin } from '../admin/server.js';
import { createRollgate } from '../app.js';
import { parseConfig } from '../config/load.js';
import type { Outcome } from '../proxy/outcome.js';
import type { RouteEvent } from '../rollout/types.js';
import type { WindowSnapshot } from '../stats/window.js';
import { startModelServer } from './model-server.js';

const HEALTHY = { failureRate: 0.002, latencyMs: 20 };
const DEGRADED = { failureRate: 0.2, latencyMs: 45 };
const CONCURRENCY = 16;
/** The data each version was built for: every request upstream names its version's (SPEC §9 pinning). */
const STABLE_DATA = 'features-2026-11-30';
const CANDIDATE_DATA = 'features-2026-12-01';

function row(name: string, w: WindowSnapshot | null): string {
  if (w === null) return `  ${name.padEnd(16)} -`;
  const p99 = w.latencyMs['0.99'];
  return (
    `  ${name.padEnd(16)} ${String(w.count).padStart(7)} req  ${w.rate.toFixed(0).padStart(5)} req/s  ` +
    `${(w.failureRate * 100).toFixed(2).padStart(6)}% failed  p99 ${p99 === null || p99 === undefined ? '    -' : p99.toFixed(1).padStart(6)} ms`
  );
}

/**
 * `rollgate demo` (`npm start`): two sample model servers, the gateway in front of them with a
 * 20% canary and retryOnStable, and a load generator, all on free loopback ports. A few seconds
 * in, the candidate degrades; the judge rolls it back; the demo prints the evidence and a summary.
 */
export async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { 'degrade-after': { type: 'string', default: '4' }, linger: { type: 'string', default: '2' } },
    strict: true,
  });
  const degradeAfterMs = Math.max(1, Number(values['degrade-after']) || 4) * 1000;
  const lingerMs = Math.min(600, Math.max(0, Number(values.linger) || 0)) * 1000;
  const out = process.stdout;
  const tty = out.isTTY === true;

  const stable = await startModelServer('v1', HEALTHY);
  const candidate = await startModelServer('v2', HEALTHY);
  const config = parseConfig({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    routes: [
      {
        name: 'sentiment',
        match: { pathPrefix: '/v1/models/sentiment' },
        stable: { version: 'v1', url: stable.url, data: { snapshot: STABLE_DATA } },
        candidate: { version: 'v2', url: candidate.url, weight: 20, data: { snapshot: CANDIDATE_DATA } },
        retryOnStable: true,
      },
    ],
  });

  let degradedAt = Number.POSITIVE_INFINITY;
  let candidateAfterRegression = 0;
  const onOutcome = (o: Outcome): void => {
    if (o.role === 'candidate' && o.startedAt >= degradedAt) candidateAfterRegression++;
  };
  const { gateway, rollouts, metrics, hooks } = createRollgate(config, { onOutcome });
  hooks.start();
  const addr = await gateway.listen();
  const base = `http://127.0.0.1:${addr.port}`;
  const token = process.env.ROLLGATE_ADMIN_TOKEN || randomBytes(12).toString('base64url');
  const admin = await startAdmin({ config, rollouts, token, ready: () => true, metrics });
  const controller = rollouts.route('sentiment')!;
  let trip: RouteEvent | null = null;
  rollouts.subscribe((e) => {
    if (e.type === 'rollback') trip = e;
  });

  out.write(
    `rollgate demo\n  gateway      ${base}  (route sentiment: /v1/models/sentiment)\n` +
      `  stable v1    ${stable.url}  reads data ${STABLE_DATA}\n` +
      `  candidate v2 ${candidate.url}  reads data ${CANDIDATE_DATA}; at 20% of traffic, retryOnStable on\n` +
      `  status page  http://127.0.0.1:${admin.address.port}/  (admin token ${token})\n` +
      `  the candidate degrades after ${degradeAfterMs / 1000} s (20% errors, 2x slower); Ctrl-C stops\n` +
      `  (more time to open the status page: npm start -- --degrade-after 30 --linger 60)\n\n`,
  );

  const client = new Pool(base, { connections: CONCURRENCY });
  let stop = false;
  let served = 0;
  let userErrors = 0;
  let candidateErrorsSeen = 0;
  const body = JSON.stringify({ inputs: ['the service was quick and friendly'] });
  const worker = async (): Promise<void> => {
    while (!stop) {
      try {
        const r = await client.request({ path: '/v1/models/sentiment:predict', method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await r.body.dump();
        served++;
        if (r.statusCode >= 500) {
          userErrors++;
          if (r.headers['x-rollgate-version'] === 'v2') candidateErrorsSeen++;
        }
      } catch {
        if (!stop) userErrors++;
      }
    }
  };
  const workers = Array.from({ length: CONCURRENCY }, worker);

  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSigint);
  const started = performance.now();
  let linesDrawn = 0;
  let tripShownAt = 0;
  let atTrip: { stable: Map<string, number>; candidate: Map<string, number> } | null = null;
  const draw = (): void => {
    const s = controller.state();
    const lines = [
      `  phase ${s.phase.padEnd(12)} candidate weight ${s.weight}%   ${((performance.now() - started) / 1000).toFixed(1)} s`,
      row('stable v1', s.windows.stable),
      row('candidate v2', s.windows.candidate),
    ];
    if (tty && linesDrawn > 0) out.write(`\x1b[${linesDrawn}A\x1b[J`);
    out.write(`${lines.join('\n')}\n`);
    linesDrawn = lines.length;
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      if (degradedAt === Number.POSITIVE_INFINITY && now - started >= degradeAfterMs) {
        degradedAt = now;
        candidate.behaviour = DEGRADED;
        if (tty) linesDrawn = 0;
        out.write(`\n>>> candidate v2 degrades now: 20% errors, 2x latency\n\n`);
      }
      if (tty || Math.round((now - started) / 250) % 4 === 0) draw();
      if (trip !== null && tripShownAt === 0) {
        tripShownAt = now;
        atTrip = { stable: new Map(stable.snapshots), candidate: new Map(candidate.snapshots) };
        const e = trip;
        out.write(`\n>>> ROLLBACK (${e.cause}) after ${((now - degradedAt) / 1000).toFixed(2)} s, decided in ${((e.decisionSeconds ?? 0) * 1e6).toFixed(0)} us:\n    ${e.message}\n\n`);
        if (tty) linesDrawn = 0;
      }
      const done = (tripShownAt > 0 && now - tripShownAt > lingerMs) || now - degradedAt > 60_000 || interrupted;
      if (done) {
        clearInterval(timer);
        resolve();
      }
    }, 250);
  });
  process.off('SIGINT', onSigint);
  stop = true;
  await Promise.allSettled(workers);
  await client.close();
  await admin.app.close();
  await gateway.close(1_000);
  await Promise.all([stable.close(), candidate.close()]);

  out.write(
    `summary: ${served} requests served; ${candidateAfterRegression} candidate requests after the regression began; ` +
      `${candidateErrorsSeen} user-visible errors from the candidate (retryOnStable replayed its failures on stable), ` +
      `${userErrors - candidateErrorsSeen} from stable's own failure rate; rolled back: ${trip === null ? 'no' : 'yes'}\n`,
  );
  out.write(pinningSummary(stable.snapshots, candidate.snapshots, atTrip));
  return trip === null && !interrupted ? 1 : 0;
}

/**
 * What each model server was asked to read: every request carried its version's snapshot id
 * (the candidate's failures replayed on stable carried stable's), and after the rollback stable's.
 */
function pinningSummary(stable: Map<string, number>, candidate: Map<string, number>, atTrip: { stable: Map<string, number>; candidate: Map<string, number> } | null): string {
  const words = (m: Map<string, number>): string =>
    [...m].map(([id, n]) => `${n} with ${id === '' ? 'no snapshot' : id}`).join(', ') || 'no requests';
  let text = `data pinning: stable v1 got ${words(stable)}; candidate v2 got ${words(candidate)}`;
  if (atTrip !== null) {
    const after = (now: Map<string, number>, then: Map<string, number>): Map<string, number> =>
      new Map([...now].map(([id, n]): [string, number] => [id, n - (then.get(id) ?? 0)]).filter(([, n]) => n > 0));
    text += `; after the rollback: stable v1 ${words(after(stable, atTrip.stable))}, candidate v2 ${words(after(candidate, atTrip.candidate))}`;
  }
  return `${text}\n`;
}
