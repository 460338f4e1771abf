import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import t from 'tap';
import { Pool, request } from 'undici';
import { startAdmin } from '../src/admin/server.js';
import { startAnswersStack } from './helpers/answers-stack.js';
import { config, eventually, startGateway, startLabelled, startUpstream } from './helpers/servers.js';

// The status page at the admin port's `/`, driven in a real headless Chromium.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'status-page-token';

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

async function stack(t: { teardown(fn: () => unknown): void }, extra: Record<string, unknown> = {}) {
  let failing = false;
  const stable = await startLabelled('v1');
  const candidate = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ served: 'v2' }));
    });
  });
  const cfg = config([
    {
      name: 'sentiment',
      match: { pathPrefix: '/v1/models/sentiment' },
      stable: { version: 'v1', url: stable.url },
      candidate: { version: 'v2', url: candidate.url, weight: 50 },
      ...extra,
    },
  ]);
  const gw = await startGateway(cfg, { hookBackoffMs: () => 10 });
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token: TOKEN, ready: () => true, metrics: gw.metrics, statsIntervalMs: 250 });
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(async () => {
    await pool.close();
    await admin.app.close();
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const send = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const r = await pool.request({ path: '/v1/models/sentiment:predict', method: 'POST', body: '{}' });
      await r.body.dump();
    }
  };
  return { base: `http://127.0.0.1:${admin.address.port}`, gw, send, fail: () => (failing = true) };
}

t.test('GET / serves one self-contained page with a strict content security policy', async (t) => {
  const { base } = await stack(t);
  const r = await request(`${base}/`);
  t.equal(r.statusCode, 200, 'no token needed for the page itself');
  t.match(r.headers['content-type'], /^text\/html/);
  const csp = String(r.headers['content-security-policy']);
  t.match(csp, /default-src 'none'/);
  t.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/, 'only the inline script, by hash');
  t.match(csp, /connect-src 'self'/);
  const html = await r.body.text();
  t.notMatch(html, /(src|href)="https?:/, 'nothing from another origin');
  t.notMatch(html, /localStorage|document\.cookie/, 'the token is kept in session storage only');
});

t.test('/api/events?stats=true sends live figures per version; bad query is refused', async (t) => {
  const { base, send } = await stack(t);
  const bad = await request(`${base}/api/events?stats=maybe`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(bad.statusCode, 400);
  t.match(await bad.body.json(), { error: { code: 'ROLLGATE_BAD_REQUEST', message: /stats/ } });

  const controller = new AbortController();
  const res = await request(`${base}/api/events?stats=true`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: controller.signal });
  t.equal(res.statusCode, 200);
  const stats: any[] = [];
  let buf = '';
  res.body.setEncoding('utf8');
  res.body.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (block.startsWith('event: stats\n')) stats.push(JSON.parse(block.slice(block.indexOf('data: ') + 6)));
    }
  });
  res.body.on('error', () => {});
  t.ok(await eventually(() => stats.length >= 1), 'a first stats event at once');
  t.match(stats[0], { routes: [{ name: 'sentiment', phase: 'progressing', weight: 50 }] });
  const sending = send(400);
  const busy = (s: any) => (s.routes[0].live.v1?.rate ?? 0) > 0 && (s.routes[0].live.v2?.rate ?? 0) > 0;
  t.ok(await eventually(() => stats.some(busy), 10_000), 'a stats event with traffic on both versions');
  await sending;
  const sample = stats.find(busy);
  for (const v of ['v1', 'v2']) {
    t.equal(sample.routes[0].live[v].failureRate, 0, `${v}: no failures`);
    t.ok(sample.routes[0].live[v].p99Ms > 0 && sample.routes[0].live[v].p99Ms <= 1000, `${v}: a p99 in ms`);
  }
  t.ok(sample.intervalSeconds > 0);
  controller.abort();
});

t.test('the status page in headless Chromium: token once, live charts, the rollback marked', async (t) => {
  const { base, send, fail, gw } = await stack(t);
  const browser = await launch();
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  const page = await context.newPage();
  const requested: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  await page.goto(`${base}/`);
  await page.waitForSelector('#login', { state: 'visible' });
  t.pass('with no token in the session, the page asks for it');

  await page.fill('#token', 'not-the-token');
  await page.click('#login button[type=submit]');
  await page.locator('#login-error', { hasText: 'refused' }).waitFor();
  t.pass('a wrong token is refused and asked again');
  t.equal(await page.evaluate('sessionStorage.length'), 0, 'a refused token is not kept');

  await page.fill('#token', TOKEN);
  await page.click('#login button[type=submit]');
  const route = page.locator('section.route[data-route="sentiment"]');
  await route.waitFor();
  await page.locator('#conn', { hasText: /^live$/ }).waitFor();
  t.equal(await route.locator('.phase').textContent(), 'progressing');
  t.equal(await route.locator('.weight').textContent(), '50%');

  // Healthy traffic until the charts have drawn both versions.
  const drawn = (metric: string, version: string) =>
    (async () => {
      const line = page.locator(`section[data-route="sentiment"] svg[data-metric="${metric}"] polyline[data-version="${version}"]`);
      return (await line.count()) === 0 ? 0 : Number(await line.getAttribute('data-points'));
    })();
  for (let i = 0; i < 40 && ((await drawn('rate', 'v2')) < 2 || (await drawn('p99Ms', 'v1')) < 2); i++) await send(40);
  t.ok((await drawn('rate', 'v1')) >= 2 && (await drawn('rate', 'v2')) >= 2, 'the request-rate chart has a line per version');
  t.ok((await drawn('failureRate', 'v2')) >= 2, 'the failure-rate chart has the candidate');
  t.ok((await drawn('p99Ms', 'v2')) >= 2, 'the p99 chart has the candidate');
  t.equal(await route.locator('.rollback-mark').count(), 0, 'no rollback marked yet');

  // The candidate fails; the judge rolls it back; the page shows it.
  fail();
  const controller = gw.rollouts.route('sentiment')!;
  for (let i = 0; i < 50 && controller.phase !== 'rolled_back'; i++) await send(10);
  t.equal(controller.phase, 'rolled_back', 'the gateway rolled back');
  await page.waitForSelector('section[data-route="sentiment"][data-phase="rolled_back"]');
  t.equal(await route.locator('.weight').textContent(), '0%', 'the weight shown is 0%');
  t.equal(await route.locator('.rollback-mark').count(), 3, 'the rollback is marked on each of the three charts');
  t.match(await route.locator('.rollback-mark text').first().textContent(), /rollback \((consecutive_failures|error_rate)\)/);
  t.match(await route.locator('.decision').textContent(), /consecutive_failures|error_rate/, 'the deciding reason is on the route');
  const logged = page.locator('#events li[data-type="rollback"]');
  t.equal(await logged.count(), 1, 'the rollback is in the event list');
  t.match(await logged.textContent(), /sentiment\s+rollback/);

  t.equal(await page.evaluate(`sessionStorage.getItem('rollgate.adminToken')`), TOKEN, 'the token is in session storage');
  t.equal(await page.evaluate('localStorage.length'), 0, 'and not in local storage');
  t.same(await context.cookies(), [], 'nor in a cookie');

  // A reload in the same tab does not ask again, and finds the rollback in the history.
  await page.reload();
  await page.waitForSelector('section[data-route="sentiment"][data-phase="rolled_back"]');
  t.ok(await page.locator('#login').isHidden(), 'no second token prompt in the same session');
  t.equal(await route.locator('.rollback-mark').count(), 3, 'the rollback is still marked after a reload');

  // A new browser session asks again.
  const other = await (await browser.newContext()).newPage();
  await other.goto(`${base}/`);
  await other.waitForSelector('#login', { state: 'visible' });
  t.pass('another session asks for the token');

  t.same(
    requested.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('data:')),
    [],
    'the page fetched nothing outside the admin origin',
  );
  t.same(problems, [], 'no script error and no content security policy violation');
});

t.test('the live p99 is interpolated within the histogram buckets, as histogram_quantile does', async (t) => {
  const { quantileBetween } = await import('../src/admin/status-feed.js');
  const { DURATION_BUCKETS } = await import('../src/metrics/recorder.js');
  const cumulative = (counts: Record<number, number>): number[] => {
    let sum = 0;
    return DURATION_BUCKETS.map((le) => (sum += counts[le] ?? 0));
  };
  const zero = cumulative({});
  t.equal(quantileBetween(zero, zero, 0, 0.99), null, 'no request, no p99');
  // 100 requests in (10 ms, 25 ms]: p99 is 99% of the way through that bucket.
  t.equal(Math.round(quantileBetween(zero, cumulative({ 0.025: 100 }), 100, 0.99)! * 100) / 100, 24.85);
  // Only the difference counts: 100 earlier fast requests do not pull the p99 down.
  const before = cumulative({ 0.001: 100 });
  const after = cumulative({ 0.001: 100, 0.05: 10 });
  t.ok(quantileBetween(before, after, 10, 0.99)! > 25, 'the interval alone');
  t.equal(quantileBetween(zero, cumulative({}), 5, 0.99), 30_000, 'above every bound: the highest bound');
});

t.test('the status page shows the data a route reads and a failed restore', async (t) => {
  const { base, gw } = await stack(t, {
    stable: { version: 'v1', url: 'http://127.0.0.1:9', data: { snapshot: 'features-2026-11-30' } },
    hooks: { afterRollback: [{ kind: 'exec', command: ['/no/such/restore'], maxAttempts: 2 }] },
  });
  const browser = await launch();
  t.teardown(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/`);
  await page.fill('#token', TOKEN);
  await page.click('#login button[type=submit]');
  const route = page.locator('section.route[data-route="sentiment"]');
  await route.waitFor();
  t.match(await route.textContent(), /data features-2026-11-30/, 'the data the serving version reads');
  gw.rollouts.route('sentiment')!.rollback();
  await page.locator('section[data-route="sentiment"]', { hasText: /data restore failed after 2 attempts/ }).waitFor({ timeout: 10_000 });
  t.match(await route.textContent(), /data restore failed after 2 attempts \(command not found: \/no\/such\/restore\)/, 'a failed restore, with its attempts and error');
});

t.test('the status page shows the checks of the answers, check failures by kind, TTFT, TPOT and the agreement, only on routes with checks', async (t) => {
  const stack = await startAnswersStack(t, TOKEN, 250);
  const browser = await launch();
  t.teardown(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${stack.base}/`);
  await page.fill('#token', TOKEN);
  await page.click('#login button[type=submit]');
  await page.locator('#conn', { hasText: /^live$/ }).waitFor();
  await Promise.all([stack.predict(80), stack.chat(30), stack.plain(10)]);
  await stack.settled();

  const section = (name: string) => page.locator(`section.route[data-route="${name}"]`);
  const heads = async (name: string) => section(name).locator('table.window th').allTextContents();
  const cell = async (name: string, role: string, col: string) => {
    const row = section(name).locator('table.window tr', { has: page.locator(`td.legend-${role}`) });
    return row.locator(`td[data-col="${col}"]`).textContent();
  };
  // The page renders each stats event; wait for one sent after the traffic settled.
  const state = (await (await request(`${stack.base}/api/routes/sentiment`, { headers: { authorization: `Bearer ${TOKEN}` } })).body.json()) as any;
  const g = state.answers.agreement;
  t.ok(g.pairs > 0 && g.disagreements > 0, `the gateway compared ${g.pairs} pairs, ${g.disagreements} disagreed`);
  await section('sentiment').locator('.answers', { hasText: `agreement ${g.disagreements} of ${g.pairs} pairs disagreed` }).waitFor({ timeout: 10_000 });

  const sentiment = await section('sentiment').locator('.answers').textContent();
  t.match(sentiment, /^checks json · agreement \d+ of \d+ pairs disagreed \([\d.]+%\) vs max 50% at \/predictions\/0\/label$/, `sentiment: ${sentiment}`);
  t.same(await heads('sentiment'), ['window (judge)', 'requests', 'failure rate', 'invalid', 'p50', 'p99'], 'sentiment: invalid answers per version; the latency is the response');
  for (const role of ['stable', 'candidate']) {
    t.equal(await cell('sentiment', role, 'invalid'), String(state.windows[role].failuresByKind.invalid), `sentiment ${role}: its invalid answers`);
  }
  t.ok(Number(await cell('sentiment', 'candidate', 'invalid')) > 0, 'the candidate has invalid answers');

  const chat = await section('chat').locator('.answers').textContent();
  t.equal(chat, 'checks llm (latency is time to first token)', 'chat: its check and what its latency measures; no agreement');
  t.same(await heads('chat'), ['window (judge)', 'requests', 'failure rate', 'truncated', 'empty', 'stream_error', 'ttft p50', 'ttft p99', 'tpot p50'], 'chat: the LLM failure kinds, TTFT and TPOT');
  for (const role of ['stable', 'candidate']) {
    t.match(await cell('chat', role, 'tpot p50'), /^[\d.]+ ms$/, `chat ${role}: a TPOT p50`);
    t.match(await cell('chat', role, 'ttft p50'), /^[\d.]+ ms$/, `chat ${role}: a TTFT p50`);
    t.equal(await cell('chat', role, 'truncated'), '0');
  }

  t.ok(await section('plain').locator('.answers').isHidden(), 'plain: no line of checks');
  t.same(await heads('plain'), ['window (judge)', 'requests', 'failure rate', 'p50', 'p99'], 'plain: the table as before');
  t.notMatch(await section('plain').textContent(), /checks|agreement|ttft|tpot|invalid/, 'plain: none of the answer signals');
  t.same(problems, [], 'no script error and no content security policy violation');
});
