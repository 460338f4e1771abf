import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Pool, request } from 'undici';
import { startAdmin } from '../src/admin/server.js';
import { config, eventually, freePort, seededRng, startGateway, startUpstream } from './helpers/servers.js';

const PROMETHEUS = 'prometheus';
const ROUTE = 'sentiment';

interface Series {
  metric: Record<string, string>;
  values: [number, string][];
}

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
  annotations: { list: { name: string; expr: string }[] };
  templating: { list: { name: string; query?: string }[] };
}

/**
 * A dashboard query as Grafana would send it for this route. The dashboard's own ranges ([1m],
 * [5m], [15m]) are kept as they are: with a 1 s scrape they hold enough samples within seconds.
 * Grafana's interval variables, should a query use them, get ranges that suit a 1 s scrape.
 */
function forRoute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '10s')
    .replaceAll('$__interval', '5s')
    .replaceAll('${route}', ROUTE)
    .replaceAll('$route', ROUTE);
}

/** A real Prometheus scraping `target` every second, with its data in a temp dir. */
async function startPrometheus(t: { teardown(fn: () => unknown): void }, target: string): Promise<{ base: string; logs: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-prometheus-'));
  const file = join(dir, 'prometheus.yml');
  writeFileSync(
    file,
    [
      'global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: rollgate',
      '    metrics_path: /metrics',
      `    static_configs: [{ targets: ['${target}'] }]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const proc: ChildProcess = spawn(
    PROMETHEUS,
    [`--config.file=${file}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let logs = '';
  proc.stderr?.on('data', (c: Buffer) => (logs += c.toString()));
  t.teardown(async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { base: `http://127.0.0.1:${port}`, logs: () => logs };
}

async function promQuery(base: string, path: string, params: Record<string, string>): Promise<{ status: string; data: any; error?: string }> {
  const r = await request(`${base}${path}?${new URLSearchParams(params)}`);
  return (await r.body.json()) as { status: string; data: any; error?: string };
}

/** Traffic through the gateway until stopped: a few requests every 20 ms. */
function keepSending(gatewayUrl: string): { stop(): Promise<void> } {
  const pool = new Pool(gatewayUrl, { connections: 4 });
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          const r = await pool.request({ path: '/v1/models/sentiment:predict', method: 'POST', body: '{"x":1}' });
          await r.body.dump();
        }),
      );
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      await pool.close();
    },
  };
}

t.test('every query of the Grafana dashboard returns data for the route from a real Prometheus, the rollback annotation included', async (t) => {
  if (spawnSync(PROMETHEUS, ['--version']).error !== undefined) {
    t.fail('prometheus is not on PATH: apt-get install prometheus (.ci/run installs it)');
    return;
  }
  const dash = JSON.parse(readFileSync(fileURLToPath(new URL('../../config/grafana/rollgate.json', import.meta.url)), 'utf8')) as Dashboard;

  let failing = false;
  const answer = (label: string) =>
    startUpstream((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(label === 'v2' && failing ? 500 : 200, { 'content-type': 'application/json' }).end(`{"served":"${label}"}`));
    });
  const stable = await answer('v1');
  const candidate = await answer('v2');
  const cfg = config([
    { name: ROUTE, match: { pathPrefix: '/v1/models/sentiment' }, stable: { version: 'v1', url: stable.url }, candidate: { version: 'v2', url: candidate.url, weight: 50 } },
  ]);
  const gw = await startGateway(cfg, { rng: seededRng(7) });
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token: 'prometheus-token', ready: () => true, metrics: gw.metrics });
  t.teardown(async () => {
    await admin.app.close();
    await gw.close();
    await stable.close();
    await candidate.close();
  });

  const prom = await startPrometheus(t, `127.0.0.1:${admin.address.port}`);
  const start = Date.now() / 1000;
  // Successful scrapes so far (up is 1 for each); null until Prometheus answers.
  const scrapes = async () => {
    const r = await promQuery(prom.base, '/api/v1/query', { query: 'sum_over_time(up{job="rollgate"}[1m])' }).catch(() => null);
    return Number(r?.data?.result?.[0]?.value?.[1] ?? 0);
  };
  const traffic = keepSending(gw.url);
  t.ok(await eventually(async () => (await scrapes()) >= 3, 20_000), `Prometheus scraped the admin /metrics three times ${prom.logs()}`);

  // The candidate starts failing: the judge rolls it back on its consecutive failures.
  failing = true;
  const controller = gw.rollouts.route(ROUTE)!;
  const failingAt = Date.now() / 1000;
  t.ok(await eventually(() => controller.phase === 'rolled_back', 10_000), 'the judge rolled the candidate back');
  const trippedAt = Date.now() / 1000;
  const tripped = await scrapes();
  t.ok(await eventually(async () => (await scrapes()) >= tripped + 3, 10_000), 'three more scrapes after the rollback');
  await traffic.stop();
  const end = Date.now() / 1000;
  t.comment(`${Math.round(failingAt - start)} s to three scrapes, rolled back ${Math.round((trippedAt - failingAt) * 1000)} ms after the candidate began failing, ${Math.round(end - start)} s of traffic; ${tripped + 3}+ scrapes`);

  const queries = [
    ...dash.panels.flatMap((p) => p.targets.map((x) => ({ what: `panel "${p.title}"`, expr: x.expr }))),
    ...dash.annotations.list.map((a) => ({ what: `annotation "${a.name}"`, expr: a.expr })),
  ];
  t.comment(`${queries.length} dashboard queries over ${Math.round(end - start)} s at a 1 s step`);
  for (const q of queries) {
    const expr = forRoute(q.expr);
    const r = await promQuery(prom.base, '/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: '1' });
    t.equal(r.status, 'success', `${q.what}: ${expr} ${r.error ?? ''}`);
    const series = (r.data?.result ?? []) as Series[];
    // The decision time has no route label: it is the gateway's, not a route's.
    const ours = series.filter((s) => s.metric.route === ROUTE || (s.metric.route === undefined && !q.expr.includes('$route')));
    const points = ours.flatMap((s) => s.values.map(([, v]) => Number(v))).filter((v) => !Number.isNaN(v));
    t.ok(points.length > 0, `${q.what} returns data for route ${ROUTE}: ${expr}`);
  }

  // What the rollback shows: the annotation fires, and the rollbacks panel counts the trip.
  const annotation = dash.annotations.list.find((a) => /rollgate_rollbacks_total/.test(a.expr))!;
  const fired = await promQuery(prom.base, '/api/v1/query_range', { query: forRoute(annotation.expr), start: String(start), end: String(end), step: '1' });
  t.ok((fired.data.result as Series[]).some((s) => s.metric.route === ROUTE && s.values.length > 0), 'the rollback annotation marks the first rollback of the route');
  const rollbacks = dash.panels.find((p) => /rollback/i.test(p.title))!.targets[0]!.expr;
  const counted = await promQuery(prom.base, '/api/v1/query', { query: forRoute(rollbacks), time: String(end) });
  const reason = controller.state().lastDecision?.reason;
  t.ok(
    (counted.data.result as { metric: Record<string, string>; value: [number, string] }[]).some((s) => s.metric.route === ROUTE && s.metric.reason === reason && Number(s.value[1]) > 0),
    `the rollbacks panel counts the ${String(reason)} rollback`,
  );

  // The $route variable's query: the route is among the values Grafana offers.
  const variable = dash.templating.list.find((v) => v.name === 'route')?.query ?? '';
  const m = /^label_values\((\w+), (\w+)\)$/.exec(variable);
  t.ok(m !== null, `the route variable is a label_values query: ${variable}`);
  const values = await promQuery(prom.base, `/api/v1/label/${m?.[2] ?? 'route'}/values`, { 'match[]': m?.[1] ?? '' });
  t.ok((values.data as string[]).includes(ROUTE), 'the route variable offers the route');
});
