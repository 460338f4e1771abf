import t from 'tap';
import { runCli } from './helpers/cli.js';
import { startAdminStack } from './helpers/admin-stack.js';
import { startAnswersStack } from './helpers/answers-stack.js';
import { freePort } from './helpers/servers.js';

const TOKEN = 'cli-admin-token';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  const run = runCli(args, env);
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

async function setup(t: { teardown(fn: () => unknown): void }) {
  const { base, served, third, gw } = await startAdminStack(t, TOKEN);
  const env = { ROLLGATE_ADMIN_URL: base, ROLLGATE_ADMIN_TOKEN: TOKEN };
  const run = (...args: string[]) => cli(args, env);
  return { env, run, served, third, gw };
}

t.test('status, history and watch read the routes; refusals, bad tokens and usage errors exit 1 or 2', async (t) => {
  const { env, run, served } = await setup(t);
  await served('/v1/models/sentiment/x', 30);
  const unreachable = `http://127.0.0.1:${await freePort()}`;
  const [table, json, detail, detailJson, missing, history, watch, watchJson, refused, wrongToken, noToken, down, ten, noUrl, unknown, noPercent, tooBig, badInterval] =
    await Promise.all([
      run('status'),
      run('status', '--json'),
      run('status', 'sentiment'),
      run('status', 'sentiment', '--json'),
      run('status', 'nope'),
      run('history', 'sentiment'),
      run('watch', '--once'),
      run('watch', '--once', '--json'),
      run('promote', 'plain'),
      cli(['status'], { ...env, ROLLGATE_ADMIN_TOKEN: 'not-it' }),
      cli(['status'], { ...env, ROLLGATE_ADMIN_TOKEN: '' }),
      cli(['status'], { ...env, ROLLGATE_ADMIN_URL: unreachable }),
      run('weight', 'sentiment', 'ten'),
      run('deploy', 'sentiment', '--version', 'v3'),
      run('frobnicate', 'sentiment'),
      run('weight', 'sentiment'),
      run('weight', 'sentiment', '101'),
      run('watch', '--interval', 'soon'),
    ]);

  t.equal(table.code, 0, 'status: exit 0');
  t.match(table.stdout, /^ROUTE\s+PHASE\s+WEIGHT\s+STABLE\s+CANDIDATE/, 'a table with a header');
  for (const [name, phase] of [['sentiment', 'progressing'], ['chat', 'progressing'], ['plain', 'stable']]) {
    t.match(table.stdout, new RegExp(`^${name}\\s+${phase}\\s`, 'm'), `${name} is ${phase}`);
  }
  t.match(table.stdout, /sentiment\s+progressing\s+10%\s+v1 \(r1\)\s+v2 \(r2\)/, 'weight, stable and candidate with revisions');
  t.match(table.stdout, /^plain\s+stable\s+0%\s+v1 \(r1\)\s+-/m, 'no candidate: a dash');

  t.equal(json.code, 0);
  const parsed = JSON.parse(json.stdout) as { routes: { name: string; windows: { stable: { count: number }; candidate: { count: number } } }[] };
  t.same(parsed.routes.map((r) => r.name), ['sentiment', 'chat', 'plain'], '--json prints the admin answer');
  const s = parsed.routes[0];
  t.equal((s?.windows.stable.count ?? 0) + (s?.windows.candidate.count ?? 0), 30, 'with the window counts');

  t.equal(detail.code, 0);
  t.match(detail.stdout, /route:\s+sentiment/);
  t.match(detail.stdout, /phase:\s+progressing/);
  t.match(detail.stdout, /^stable\s+v1\s+r1\s+\d+/m, 'a row per version with its requests');
  t.match(detail.stdout, /^candidate\s+v2\s+r2\s+\d+/m);
  t.match(JSON.parse(detailJson.stdout), { name: 'sentiment', stable: { version: 'v1' }, candidate: { version: 'v2' } });

  t.equal(missing.code, 1, 'an unknown route: exit 1');
  t.match(missing.stderr, /no route named nope/);
  t.match(missing.stderr, /ROLLGATE_UNKNOWN_ROUTE.*404/);
  t.equal(missing.stdout, '');

  t.equal(history.code, 0);
  t.match(history.stdout, /revisions of sentiment, newest first/);
  t.ok(history.stdout.indexOf('v2') < history.stdout.indexOf('v1'), 'revision 2 before revision 1');
  t.match(history.stdout, /events of sentiment/);

  t.equal(watch.code, 0, 'watch --once: exit 0');
  for (const name of ['sentiment', 'chat', 'plain']) t.match(watch.stdout, new RegExp(`^${name}\\s`, 'm'), `watch shows ${name}`);
  t.match(watch.stdout, /^sentiment\s+progressing\s+candidate\s+v2 \(r2\)\s+10%/m, 'per version, with its share');
  t.notMatch(watch.stdout, new RegExp(`${String.fromCharCode(27)}\\[`), 'no cursor movement when stdout is not a terminal');
  t.match(JSON.parse(watchJson.stdout), { routes: [{ name: 'sentiment' }, { name: 'chat' }, { name: 'plain' }] });

  t.equal(refused.code, 1, 'promote without a candidate: refused, exit 1');
  t.match(refused.stderr, /route plain has no candidate to promote \(ROLLGATE_CONFLICT, HTTP 409\)/);

  t.equal(wrongToken.code, 1, 'a wrong token: exit 1');
  t.match(wrongToken.stderr, /not the admin token.*ROLLGATE_UNAUTHORIZED/);
  t.equal(noToken.code, 1, 'no token: exit 1');
  t.match(noToken.stderr, /Authorization: Bearer/);

  t.equal(down.code, 1, 'nothing listening: exit 1');
  t.match(down.stderr, `cannot reach the admin API at ${unreachable}`, 'says where it tried');

  for (const [what, r, message] of [
    ['weight ten', ten, /percent must be a number from 0 to 100; got 'ten'/],
    ['deploy without --url', noUrl, /deploy needs --url URL/],
    ['an unknown verb', unknown, /unknown command 'frobnicate'/],
    ['weight without a percent', noPercent, /weight needs <percent>/],
    ['weight 101', tooBig, /from 0 to 100/],
    ['a bad interval', badInterval, /--interval/],
  ] as const) {
    t.equal(r.code, 2, `${what}: exit 2`);
    t.match(r.stderr, message, `${what}: says why`);
    t.match(r.stderr, /usage: rollgate/, `${what}: prints usage`);
  }

  // Usage errors are caught before any request: the state is as it was.
  const after = await run('status', 'sentiment', '--json');
  t.match(JSON.parse(after.stdout), { weight: 10, phase: 'progressing', candidate: { version: 'v2' } }, 'nothing changed');
});

t.test('deploy, weight, promote, rollback to a revision, pause and resume, history', async (t) => {
  const { run, served, third } = await setup(t);

  const deploy = await run('deploy', 'sentiment', '--version', 'v3', '--url', third.url, '--weight', '5');
  t.equal(deploy.code, 0, deploy.stderr);
  t.match(deploy.stdout, /sentiment: candidate v3 \(r3\) deployed at 5%/);
  const [status, pause] = await Promise.all([run('status'), run('pause', 'chat')]);
  t.match(status.stdout, /^sentiment\s+progressing\s+5%\s+v1 \(r1\)\s+v3 \(r3\)/m, 'status shows the new candidate');
  t.equal(pause.code, 0, pause.stderr);
  t.match(pause.stdout, /chat: paused/);
  t.match(pause.stdout, /^chat\s+paused\s/m);

  const [weight, resume, pauseAgain] = await Promise.all([run('weight', 'sentiment', '100', '--json'), run('resume', 'chat'), run('pause', 'plain')]);
  t.equal(weight.code, 0, weight.stderr);
  t.match(JSON.parse(weight.stdout), { name: 'sentiment', weight: 100 }, 'weight --json: the route state');
  t.same(await served('/v1/models/sentiment/x', 20), ['v3'], 'weight 100: every request answers from the candidate');
  t.equal(resume.code, 0, resume.stderr);
  t.match(resume.stdout, /^chat\s+progressing\s/m, 'resumed');
  t.equal(pauseAgain.code, 1, 'pausing a route with no candidate is refused');
  t.match(pauseAgain.stderr, /no progressing candidate to pause/);

  const promote = await run('promote', 'sentiment');
  t.equal(promote.code, 0, promote.stderr);
  t.match(promote.stdout, /sentiment: v3 \(r3\) is now stable/);
  t.match(promote.stdout, /^sentiment\s+stable\s+0%\s+v3 \(r3\)\s+-/m);
  t.same(await served('/v1/models/sentiment/x', 10), ['v3']);

  const back = await run('rollback', 'sentiment', '--version', '1');
  t.equal(back.code, 0, back.stderr);
  t.match(back.stdout, /sentiment: v1 \(r1\) is now stable/);
  t.same(await served('/v1/models/sentiment/x', 10), ['v1'], 'revision 1 serves again');
  const unknownRevision = await run('rollback', 'sentiment', '--version', '42');
  t.equal(unknownRevision.code, 1);
  t.match(unknownRevision.stderr, /no version or revision 42.*ROLLGATE_UNKNOWN_VERSION/);

  const [history, historyJson] = await Promise.all([run('history', 'sentiment'), run('history', 'sentiment', '--json')]);
  t.equal(history.code, 0);
  const revisionLines = history.stdout
    .split('\n')
    .filter((l) => /^\d+\s+v\d\s/.test(l))
    .map((l) => l.split(/\s+/).slice(0, 3).join(' '));
  t.match(revisionLines, [/^3 v3 retired$/, /^2 v2 \w+$/, /^1 v1 stable$/], 'revisions, newest first, with their status');
  t.equal(revisionLines.length, 3);
  const events = history.stdout.slice(history.stdout.indexOf('events of sentiment'));
  const order = ['rollback', 'promote', 'weight', 'deploy'].map((type) => events.search(new RegExp(`\\s${type}\\s+manual`)));
  t.ok(order.every((i) => i > 0), 'the manual changes are all there');
  t.same([...order].sort((a, b) => a - b), order, 'events, newest first');
  const hj = JSON.parse(historyJson.stdout) as { revisions: unknown[]; events: unknown[] };
  t.equal(hj.revisions.length, 3, 'history --json: the admin answer');
  t.ok(hj.events.length >= 4);
});

t.test('partial and full rollback', async (t) => {
  const { run, served } = await setup(t);
  const partial = await run('rollback', 'sentiment');
  t.equal(partial.code, 0, partial.stderr);
  t.match(partial.stdout, /sentiment: rolled back to v1 \(r1\)/);
  t.match(partial.stdout, /^sentiment\s+rolled_back\s+0%/m);
  t.same(await served('/v1/models/sentiment/x', 10), ['v1']);
  t.same(await served('/v1/chat/x', 40), ['v1', 'v2'], 'the other route still splits');

  const twice = await run('rollback', 'sentiment');
  t.equal(twice.code, 1, 'nothing left to roll back: refused');
  t.match(twice.stderr, /ROLLGATE_CONFLICT/);

  const full = await run('rollback', '--json');
  t.equal(full.code, 0, full.stderr);
  t.same(JSON.parse(full.stdout).rolledBack, ['chat'], 'the full rollback: every route with a live candidate');
  t.same(await served('/v1/chat/x', 20), ['v1']);
  const again = await run('rollback');
  t.equal(again.code, 0);
  t.match(again.stdout, /nothing rolled back/);
  t.match(again.stdout, /^chat\s+rolled_back\s/m);
});

t.test('watch keeps polling until SIGINT, then exits 0', async (t) => {
  const { env } = await setup(t);
  const run = runCli(['watch', '--interval', '200ms'], env);
  const frames = async (n: number) => {
    const end = Date.now() + 5_000;
    while ((run.stdout().match(/rollgate watch/g) ?? []).length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  };
  await frames(2);
  t.ok((run.stdout().match(/rollgate watch/g) ?? []).length >= 2, 'more than one frame');
  run.child.kill('SIGINT');
  const { code, signal } = await run.exited;
  t.equal(code, 0, 'SIGINT: exit 0');
  t.equal(signal, null);
  t.equal(run.stderr(), '');
});

t.test('deploy --strategy: shadow and blue-green from the command line; a bad strategy is a usage error', async (t) => {
  const { run, third } = await setup(t);
  const bad = await run('deploy', 'sentiment', '--version', 'v3', '--url', third.url, '--strategy', 'bigbang');
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--strategy must be canary, blueGreen or shadow/);
  const shadow = await run('deploy', 'chat', '--version', 'v3', '--url', third.url, '--strategy', 'shadow');
  t.equal(shadow.code, 0, shadow.stderr);
  t.match(shadow.stdout, /chat: candidate v3 \(r3\) deployed in shadow \(100% of requests copied\)/);
  const detail = await run('status', 'chat');
  t.match(detail.stdout, /strategy:\s+shadow, 100% of requests copied to the candidate/);
  t.match(detail.stdout, /bake:\s+shadow: [\d.]+ s left, until /);
  const blueGreen = await run('deploy', 'sentiment', '--version', 'v3', '--url', third.url, '--strategy', 'blueGreen');
  t.equal(blueGreen.code, 0, blueGreen.stderr);
  t.match(blueGreen.stdout, /sentiment: candidate v3 \(r3\) deployed at 100%/);
});

t.test('status shows what the checks of the answers found: check failures by kind, TTFT, TPOT and the agreement', async (t) => {
  const stack = await startAnswersStack(t, TOKEN);
  const env = { ROLLGATE_ADMIN_URL: stack.base, ROLLGATE_ADMIN_TOKEN: TOKEN };
  await Promise.all([stack.predict(80), stack.chat(30), stack.plain(10)]);
  await stack.settled();
  const [table, json, sentiment, chat, plain] = await Promise.all([
    cli(['status'], env),
    cli(['status', '--json'], env),
    cli(['status', 'sentiment'], env),
    cli(['status', 'chat'], env),
    cli(['status', 'plain'], env),
  ]);
  for (const r of [table, json, sentiment, chat, plain]) t.equal(r.code, 0, r.stderr);

  // --json prints the admin answer as it came.
  const state = JSON.parse(json.stdout).routes as any[];
  const [s, c] = state;
  t.same(state.map((r) => r.answers?.checks ?? null), [['json'], ['llm'], null], '--json: the answers of each route as the admin API gave them');
  const invalid = (role: 'stable' | 'candidate') => String(s.windows[role].failuresByKind.invalid);
  t.ok(s.windows.candidate.failuresByKind.invalid > 0, 'the candidate failed the schema');

  // The routes table: the TTFT of the LLM route is marked; a block per route with checks below.
  t.match(table.stdout, /^chat\s+progressing\s+50%\s+v1 \(r1\)\s+v2 \(r2\)\s+\d+\s+\S+\s+[\d.]+ms ttft\s+\d+\s+\S+\s+[\d.]+ms ttft/m, 'the LLM route: p99 marked ttft');
  t.notMatch(table.stdout.split('\n').filter((l) => /^(sentiment|plain)\s/.test(l)).join('\n'), /ttft/, 'the other routes: not');
  const blocks = table.stdout.slice(table.stdout.indexOf('checks of answers'));
  t.ok(table.stdout.includes('checks of answers'), 'a section for the checks of answers');
  const g = s.answers.agreement;
  const rate = `${((g.disagreements / g.pairs) * 100).toFixed(1)}%`;
  t.match(blocks, `sentiment: checks json; agreement ${g.disagreements} of ${g.pairs} pairs disagreed (${rate}) vs max 50% at /predictions/0/label`);
  t.match(blocks, /^ {2}ROLE\s+VERSION\s+INVALID\s+P50\s+P99$/m, 'sentiment: the invalid answers by version, and the response latency');
  t.match(blocks, new RegExp(`^ {2}stable\\s+v1\\s+${invalid('stable')}\\s+[\\d.]+ms\\s+[\\d.]+ms$`, 'm'));
  t.match(blocks, new RegExp(`^ {2}candidate\\s+v2\\s+${invalid('candidate')}\\s+[\\d.]+ms\\s+[\\d.]+ms$`, 'm'));
  t.match(blocks, /chat: checks llm \(latency is time to first token\)\n/, 'chat: its check, and what its latency measures');
  t.match(blocks, /^ {2}ROLE\s+VERSION\s+TRUNCATED\s+EMPTY\s+STREAM_ERROR\s+TTFT P50\s+TTFT P99\s+TPOT P50$/m, 'chat: the LLM failure kinds, TTFT and TPOT');
  t.match(blocks, /^ {2}candidate\s+v2\s+0\s+0\s+0\s+[\d.]+ms\s+[\d.]+ms\s+[\d.]+ms$/m);
  t.notMatch(blocks, /^plain/m, 'no block for the route without checks');
  t.notMatch(blocks, /INVALID.*TRUNCATED|TRUNCATED.*INVALID/, 'each route shows the kinds of its own checks');

  // One route in detail.
  t.match(sentiment.stdout, /^checks:\s+json$/m);
  t.match(sentiment.stdout, new RegExp(`^agreement:\\s+${g.disagreements} of ${g.pairs} pairs disagreed \\(${rate.replace('.', '\\.')}\\) vs max 50% at /predictions/0/label$`, 'm'));
  t.match(sentiment.stdout, /^ROLE\s+VERSION\s+REVISION\s+REQUESTS\s+RATE\s+FAIL\s+INVALID\s+P50\s+P99$/m);
  t.match(sentiment.stdout, new RegExp(`^candidate\\s+v2\\s+r2\\s+\\d+\\s+\\S+/s\\s+\\S+%\\s+${invalid('candidate')}\\s`, 'm'));
  t.match(chat.stdout, /^checks:\s+llm \(latency is time to first token\)$/m);
  t.notMatch(chat.stdout, /^agreement:/m, 'no agreement on chat');
  t.match(chat.stdout, /^ROLE\s+VERSION\s+REVISION\s+REQUESTS\s+RATE\s+FAIL\s+TRUNCATED\s+EMPTY\s+STREAM_ERROR\s+TTFT P50\s+TTFT P99\s+TPOT P50$/m);
  const tpot = (role: 'stable' | 'candidate') => {
    const row = chat.stdout.split('\n').find((l) => l.startsWith(`${role} `));
    return row?.trim().split(/\s+/).at(-1);
  };
  t.match(tpot('stable'), /^[\d.]+ms$/, `stable TPOT p50: ${tpot('stable')}`);
  t.match(tpot('candidate'), /^[\d.]+ms$/, `candidate TPOT p50: ${tpot('candidate')}`);
  t.ok(c.answers.tpotMs.candidate['0.5'] > c.answers.tpotMs.stable['0.5'], 'the slower candidate has the higher TPOT');

  // A route without checks prints as before.
  t.match(plain.stdout, /^ROLE\s+VERSION\s+REVISION\s+REQUESTS\s+RATE\s+FAIL\s+P50\s+P99$/m);
  t.notMatch(plain.stdout, /checks|agreement|TTFT|TPOT|INVALID/);
});
