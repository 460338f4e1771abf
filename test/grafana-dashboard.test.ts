import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

// The dashboard is built on the SPEC §8 names only, so it keeps working as the gateway changes.
const SPEC_METRICS = new Set([
  'rollgate_requests_total',
  'rollgate_request_duration_seconds_bucket',
  'rollgate_candidate_weight',
  'rollgate_rollbacks_total',
  'rollgate_window_error_rate',
  'rollgate_window_latency_seconds',
  'rollgate_decision_seconds_bucket',
]);

t.test('config/grafana/rollgate.json charts the split, failure rate and p99 per version, with rollbacks as annotations', (t) => {
  const file = fileURLToPath(new URL('../../config/grafana/rollgate.json', import.meta.url));
  const dash = JSON.parse(readFileSync(file, 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
    annotations: { list: { expr: string }[] };
  };
  const exprs = [...dash.panels.flatMap((p) => p.targets.map((x) => x.expr)), ...dash.annotations.list.map((a) => a.expr)];
  const used = new Set(exprs.flatMap((e) => e.match(/rollgate_[a-z_]+/g) ?? []));
  t.same([...used].filter((m) => !SPEC_METRICS.has(m)), [], 'only SPEC §8 metrics');
  for (const m of ['rollgate_candidate_weight', 'rollgate_requests_total', 'rollgate_request_duration_seconds_bucket', 'rollgate_rollbacks_total']) {
    t.ok(used.has(m), `uses ${m}`);
  }
  const titles = dash.panels.map((p) => p.title).join(' | ');
  t.match(titles, /split/i);
  t.match(titles, /failure rate/i);
  t.match(titles, /p99/i);
  t.match(dash.annotations.list[0]?.expr, /rollgate_rollbacks_total/, 'rollbacks are annotations');

  // Every query parses as PromQL: promtool checks them as recording rules.
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-grafana-'));
  const rules = join(dir, 'rules.yml');
  const body = exprs.map((e, i) => `      - record: rollgate:dashboard_query_${i}\n        expr: ${JSON.stringify(e.replaceAll('$route', '.*'))}`).join('\n');
  writeFileSync(rules, `groups:\n  - name: dashboard\n    rules:\n${body}\n`);
  const check = spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  if (check.error !== undefined) t.fail('promtool is not on PATH: apt-get install prometheus (CI installs it)');
  else t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`);
  t.end();
});
