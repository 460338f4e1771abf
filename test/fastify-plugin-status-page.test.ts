import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import t from 'tap';
import { host, route, send, TOKEN } from './helpers/fastify-host.js';
import { config, startLabelled } from './helpers/servers.js';

// The status page mounted by rollgateAdmin under a host's prefix, in a real headless Chromium:
// it must find the admin API under the same prefix.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

t.test('the status page under /rollgate reads the API and the live events under /rollgate', async (t) => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set CHROMIUM_PATH`);
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const h = await host(config([route(stable.url, candidate.url)]));
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  t.teardown(async () => {
    await browser.close();
    await h.pool.close();
    await h.app.close();
    await stable.close();
    await candidate.close();
  });
  await send(h.pool, 20);
  for (const path of ['/rollgate/', '/rollgate']) {
    const page = await browser.newPage();
    const asked: string[] = [];
    page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    await page.goto(`${h.base}${path}`);
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    const section = page.locator('section.route[data-route="m"]');
    await section.waitFor();
    await page.locator('#conn', { hasText: /^live$/ }).waitFor();
    t.equal(await section.locator('.weight').textContent(), '30%', `${path}: the route's state is shown`);
    const api = asked.filter((p) => p.includes('/api/'));
    t.ok(api.length >= 3 && api.every((p) => p.startsWith('/rollgate/api/')), `${path}: every API call under the prefix (${[...new Set(api)].join(', ')})`);
    await page.close();
  }
});
