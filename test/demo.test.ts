import net from 'node:net';
import t from 'tap';
import { request } from 'undici';
import { runCli } from './helpers/cli.js';
import { eventually } from './helpers/servers.js';

// `rollgate demo`, the command behind `npm start`, run as a user runs it.

const BANNER = /gateway\s+http:\/\/127\.0\.0\.1:(\d+)[\s\S]*status page\s+(http:\/\/127\.0\.0\.1:\d+\/)\s+\(admin token (\S+)\)/;

const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });

t.test('the demo shows a rollback with its evidence, a summary, and exits 0', async (t) => {
  const run = runCli(['demo', '--degrade-after', '2', '--linger', '1']);
  t.teardown(() => void run.child.kill('SIGKILL'));
  t.ok(await eventually(() => BANNER.test(run.stdout()), 20_000), 'the banner names the gateway and the status page');
  const [, gatewayPort, page, token] = run.stdout().match(BANNER) as RegExpMatchArray;
  const html = await request(page as string);
  t.equal(html.statusCode, 200, 'the status page answers at the address printed');
  t.match(await html.body.text(), /<title>rollgate status<\/title>/);
  const routes = await request(`${page}api/routes`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(routes.statusCode, 200, 'the printed token opens the admin API');
  await routes.body.dump();

  const { code } = await run.exited;
  t.equal(code, 0, 'exit 0');
  const out = run.stdout();
  t.match(out, /candidate v2 degrades now/);
  t.match(out, />>> ROLLBACK \((error_rate|latency|consecutive_failures)\) after [\d.]+ s, decided in \d+ us:\n\s+route sentiment rolled back/, 'the rollback with its evidence');
  t.match(out, /phase rolled_back\s+candidate weight 0%/, 'the live view shows the rollback');
  t.match(out, /summary: \d+ requests served; \d+ candidate requests after the regression began; 0 user-visible errors from the candidate/, 'a summary; retryOnStable hid the candidate failures');
  t.match(out, /rolled back: yes/);
  t.match(out, /stable v1\s+\S+\s+reads data features-2026-11-30\n\s+candidate v2\s+\S+\s+reads data features-2026-12-01/, 'the banner names each version’s data');
  t.match(out, /data pinning: stable v1 got \d+ with features-2026-11-30; candidate v2 got \d+ with features-2026-12-01; after the rollback: stable v1 \d+ with features-2026-11-30, candidate v2 no requests\n/, 'every request read its version’s data, and only stable’s after the rollback');
  t.ok(await refused(Number(gatewayPort)), 'nothing is left listening');
});

t.test('Ctrl-C stops the demo cleanly at any time', async (t) => {
  const run = runCli(['demo', '--degrade-after', '60']);
  t.teardown(() => void run.child.kill('SIGKILL'));
  t.ok(await eventually(() => /phase progressing/.test(run.stdout()), 20_000), 'traffic is flowing');
  const [, gatewayPort] = run.stdout().match(BANNER) as RegExpMatchArray;
  run.child.kill('SIGINT');
  const { code, signal } = await run.exited;
  t.same({ code, signal }, { code: 0, signal: null }, 'exit 0 after Ctrl-C');
  t.match(run.stdout(), /summary: \d+ requests served/, 'with its summary');
  t.ok(await refused(Number(gatewayPort)), 'nothing is left listening');
  t.equal(run.stderr(), '', 'no error on the way out');
});
