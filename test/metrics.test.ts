import { spawnSync } from 'node:child_process';
import t from 'tap';
import { request } from 'undici';
import { startAdminStack } from './helpers/admin-stack.js';

const TOKEN = 'metrics-token';

function promtool(): string | null {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0 ? 'promtool' : null;
}

t.test('/metrics has every SPEC §8 name after traffic and a rollback, and promtool finds nothing to complain about', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  await stack.served('/v1/models/sentiment/x', 200);
  await stack.served('/nowhere', 3);
  const rb = await request(`${stack.base}/api/routes/sentiment/rollback`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  await rb.body.dump();
  t.equal(rb.statusCode, 200);
  await new Promise((r) => setTimeout(r, 20)); // the event is published after the change

  const r = await request(`${stack.base}/metrics`);
  t.equal(r.statusCode, 200, 'no token needed');
  t.match(String(r.headers['content-type']), /^text\/plain/);
  const text = await r.body.text();
  for (const name of [
    'rollgate_requests_total',
    'rollgate_request_duration_seconds',
    'rollgate_candidate_weight',
    'rollgate_rollbacks_total',
    'rollgate_window_error_rate',
    'rollgate_window_latency_seconds',
    'rollgate_decision_seconds',
    'rollgate_process_cpu_seconds_total',
    'rollgate_nodejs_heap_size_used_bytes',
  ]) {
    t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exposed`);
  }
  t.match(text, /^rollgate_requests_total\{route="sentiment",version="v1",outcome="ok"\} \d+/m, 'requests by route, version and outcome');
  t.match(text, /^rollgate_rollbacks_total\{route="sentiment",reason="manual"\} 1$/m, 'the manual rollback is counted');
  t.match(text, /^rollgate_candidate_weight\{route="sentiment"\} 0$/m, 'the rolled-back route weighs 0');
  t.match(text, /^rollgate_candidate_weight\{route="chat"\} 10$/m);
  t.match(text, /^rollgate_window_latency_seconds\{route="sentiment",version="v1",q="0.99"\} [\d.e-]+$/m, 'window quantiles under the label q');
  t.notMatch(text, /nodejs_active_\w+_total/, 'no *_total gauges');
  t.notMatch(text, /nowhere/, 'request paths never become labels');

  const tool = promtool();
  if (tool === null) {
    t.fail('promtool is not on PATH: apt-get install prometheus (CI installs it)');
    return;
  }
  const check = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(check.status, 0, `promtool check metrics exits 0 ${check.stderr}`);
  t.equal(`${check.stdout}${check.stderr}`.trim(), '', 'with no complaint');
});

t.test('counters whose labels are known ahead are exported at 0: every reason per route from the start, every outcome per version from its deployment', async (t) => {
  const stack = await startAdminStack(t, TOKEN);
  const scrape = async () => (await request(`${stack.base}/metrics`)).body.text();
  const first = await scrape();
  for (const route of ['sentiment', 'chat', 'plain']) {
    for (const reason of ['consecutive_failures', 'error_rate', 'latency', 'health_check', 'manual', 'peer']) {
      t.match(first, new RegExp(`^rollgate_rollbacks_total\\{route="${route}",reason="${reason}"\\} 0$`, 'm'), `${route} ${reason} at 0 before any rollback`);
    }
  }
  const versions: [string, string][] = [['sentiment', 'v1'], ['sentiment', 'v2'], ['chat', 'v1'], ['chat', 'v2'], ['plain', 'v1']];
  for (const [route, version] of versions) {
    for (const outcome of ['ok', 'client_error', 'error', 'timeout']) {
      t.match(first, new RegExp(`^rollgate_requests_total\\{route="${route}",version="${version}",outcome="${outcome}"\\} 0$`, 'm'), `${route} ${version} ${outcome} at 0 before any request`);
    }
  }
  const deploy = await request(`${stack.base}/api/routes/plain/candidate`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ version: 'v3', url: stack.third.url, weight: 0 }),
  });
  await deploy.body.dump();
  t.equal(deploy.statusCode, 200);
  await new Promise((r) => setTimeout(r, 20)); // the event is published after the change
  const after = await scrape();
  for (const outcome of ['ok', 'client_error', 'error', 'timeout']) {
    t.match(after, new RegExp(`^rollgate_requests_total\\{route="plain",version="v3",outcome="${outcome}"\\} 0$`, 'm'), `the new version's ${outcome} at 0`);
  }
  t.match(after, /^rollgate_requests_total\{route="plain",version="v1",outcome="ok"\} 0$/m, 'stable keeps its series');
});
