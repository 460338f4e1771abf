import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Procs, freePorts, hasCommand, median, parseSeconds, parseWrk, pinning, round3, rssMiB } from './lib.js';

/**
 * Shadow traffic against a hanging candidate: does mirroring slow the clients? One rollgate
 * process with three routes on the same stable upstream (a 2 ms model): `plain` (no candidate),
 * `shadow-ok` (copies to a healthy candidate: the same model server process, through a pool of
 * its own, so that any difference the judge sees is the gateway's) and `shadow-hang` (copies to a
 * candidate that never answers, so its copies pile up to shadow.maxInFlight and the rest are
 * dropped). The routes are
 * measured in interleaved rounds with wrk; the figures that matter are the paired differences of
 * the clients' p99 within each round, and the gateway's memory before and after.
 */

const TARGETS = ['plain', 'shadow-ok', 'shadow-hang'] as const;
type Target = (typeof TARGETS)[number];
const CONNECTIONS = 10;
const REQUEST_BODY = JSON.stringify({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['The delivery was late, but support sorted it out.'] }] });

const here = path.dirname(fileURLToPath(import.meta.url));
const ROLLGATE_MAIN = path.resolve(here, '../src/cli/main.js');
const procs = new Procs();
const pin = pinning();
const node = process.execPath;
const pinned = (cpu: 0 | 1, cmd: string, args: string[]): [string, string[]] => (pin.enabled ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);
const emit = (line: object) => console.log(JSON.stringify(line));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { duration: { type: 'string', default: '5s' }, warmup: { type: 'string', default: '5s' }, rounds: { type: 'string', default: '5' }, quick: { type: 'boolean', default: false } },
  });
  const durationS = values.quick ? 2 : parseSeconds(values.duration);
  const warmupS = values.quick ? 2 : parseSeconds(values.warmup);
  const rounds = values.quick ? 2 : Number(values.rounds);
  if (!hasCommand('wrk', ['--version'])) throw new Error('wrk not found: apt-get install wrk');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'rollgate-bench-'));
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const lua = path.join(tmp, 'post.lua');
  writeFileSync(lua, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[${REQUEST_BODY}]]\n`);

  const [stablePort, hangPort, rgPort, adminPort] = (await freePorts(4)) as [number, number, number, number];
  const children: ChildProcess[] = [];
  try {
    for (const [name, port, extra] of [
      ['stable', stablePort, ['--delay-ms', '2']],
      ['hanging candidate', hangPort, ['--hang']],
    ] as const) {
      children.push(procs.start(name, ...pinned(0, node, [path.join(here, 'upstream.js'), '--port', String(port), ...extra])));
      await procs.waitForPort(name, port);
    }
    const config = path.join(tmp, 'rollgate.yaml');
    const stable = `{ version: v1, url: http://127.0.0.1:${stablePort} }`;
    // A long response timeout: the hanging copies stay in flight for the whole run, and no timeout trips the route.
    const shadow = `strategy: shadow
    shadow: { mirrorPercent: 100, bake: 1h, maxInFlight: 100 }
    timeouts: { connect: 1s, response: 10m }`;
    writeFileSync(
      config,
      `listen: { host: 127.0.0.1, port: ${rgPort} }
admin: { host: 127.0.0.1, port: ${adminPort} }
log: { level: warn }
routes:
  - name: plain
    match: { pathPrefix: /plain }
    stable: ${stable}
  - name: shadow-ok
    match: { pathPrefix: /shadow-ok }
    stable: ${stable}
    candidate: { version: v2, url: http://127.0.0.1:${stablePort}/ }
    ${shadow}
  - name: shadow-hang
    match: { pathPrefix: /shadow-hang }
    stable: ${stable}
    candidate: { version: v2, url: http://127.0.0.1:${hangPort} }
    ${shadow}
`,
    );
    process.env.ROLLGATE_ADMIN_TOKEN = 'shadow-bench';
    const rg = procs.start('rollgate', ...pinned(0, node, [ROLLGATE_MAIN, 'serve', '--config', config]));
    children.push(rg);
    await procs.waitForPort('rollgate', rgPort);
    const url = (t: Target) => `http://127.0.0.1:${rgPort}/${t}/v2/models/sentiment/infer`;
    const wrk = async (t: Target, seconds: number) => {
      const r = await procs.run(...pinned(1, 'wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', lua, url(t)]));
      procs.assertAlive();
      if (r.code !== 0) throw new Error(`wrk failed against ${t}: ${r.stderr || r.stdout}`);
      const res = parseWrk(r.stdout);
      if (res.requests === 0 || res.non2xx + res.socket_errors > 0) throw new Error(`${t}: ${res.non2xx} non-2xx and ${res.socket_errors} socket errors in ${res.requests} requests`);
      return res;
    };
    for (const t of TARGETS) await wrk(t, warmupS);
    const rssStart = rssMiB(rg.pid);
    const results = new Map<Target, { rps: number; p50_ms: number; p99_ms: number }[]>(TARGETS.map((t) => [t, []]));
    for (let round = 0; round < rounds; round++) {
      const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]!);
      for (const t of order) {
        const r = await wrk(t, durationS);
        results.get(t)!.push({ rps: Math.round(r.rps), p50_ms: round3(r.p50_ms), p99_ms: round3(r.p99_ms) });
      }
    }
    const rssEnd = rssMiB(rg.pid);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const metric = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
    const routes = (await (await fetch(`http://127.0.0.1:${adminPort}/api/routes`, { headers: { authorization: 'Bearer shadow-bench' } })).json()) as {
      routes: { name: string; phase: string; lastDecision: { reason: string; message: string } | null }[];
    };
    for (const t of TARGETS) {
      const rs = results.get(t)!;
      emit({ bench: 'shadow', target: t, connections: CONNECTIONS, rps: median(rs.map((r) => r.rps)), p50_ms: round3(median(rs.map((r) => r.p50_ms))), p99_ms: round3(median(rs.map((r) => r.p99_ms))), rounds: rs });
    }
    const paired = (t: Target, k: 'p50_ms' | 'p99_ms') => round3(median(results.get(t)!.map((r, i) => r[k] - results.get('plain')![i]![k])));
    emit({
      bench: 'shadow',
      added_ms_over_plain: {
        'shadow-ok': { p50: paired('shadow-ok', 'p50_ms'), p99: paired('shadow-ok', 'p99_ms') },
        'shadow-hang': { p50: paired('shadow-hang', 'p50_ms'), p99: paired('shadow-hang', 'p99_ms') },
      },
      target_p99_ms: 1,
      hang_p99_within_target: paired('shadow-hang', 'p99_ms') <= 1,
      hang_copies_sent: metric(/rollgate_shadow_copies_total\{route="shadow-hang"\} (\d+)/),
      hang_copies_dropped: metric(/rollgate_shadow_dropped_total\{route="shadow-hang",reason="concurrency"\} (\d+)/),
      ok_copies_sent: metric(/rollgate_shadow_copies_total\{route="shadow-ok"\} (\d+)/),
      rss_mib: { after_warmup: rssStart, end: rssEnd },
      phases: Object.fromEntries(routes.routes.map((r) => [r.name, r.lastDecision === null ? r.phase : `${r.phase}: ${r.lastDecision.message}`])),
    });
  } finally {
    for (const child of children) await procs.stop(child);
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
