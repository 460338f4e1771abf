import { spawnSync } from 'node:child_process';
import t from 'tap';
import OpenAI from 'openai';
import { config, startGateway, type TestGateway } from './helpers/servers.js';
import { DEFAULT_ANSWER, startLlm, type LlmAnswer } from './helpers/llm-server.js';

// LLM answers judged by what they carry (SPEC §9 checks.llm), with the official `openai` client
// streaming through the gateway as users call models.

const MESSAGES = [{ role: 'user' as const, content: 'Say hello' }];

function llmRoute(stable: string, candidate: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'chat',
    match: { pathPrefix: '/v1' },
    stable: { version: 'v1', url: stable },
    candidate: { version: 'v2', url: candidate, weight: 50 },
    checks: { llm: { format: 'openai' } },
    rollback: { warmup: 10 },
    ...extra,
  };
}

function client(gw: TestGateway): OpenAI {
  return new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'test', maxRetries: 0 });
}

/** One streamed completion: its text and whether the client saw the end of the stream. */
async function streamed(c: OpenAI): Promise<{ text: string; finish: string | null }> {
  const s = await c.chat.completions.create({ model: 'm', messages: MESSAGES, stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const part of s) {
    text += part.choices[0]?.delta?.content ?? '';
    finish = part.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

/** Calls `once` with `concurrency` callers until `done()` or `max` calls. */
async function drive(max: number, concurrency: number, once: () => Promise<unknown>, done: () => boolean = () => false): Promise<number> {
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (calls < max && !done()) {
        calls++;
        await once();
      }
    }),
  );
  return calls;
}

const rolledBack = (gw: TestGateway) => () => gw.rollouts.route('chat')?.state().phase === 'rolled_back';

t.test('a candidate whose streams end cleanly after two tokens, without a finish, is rolled back for truncated', async (t) => {
  const stable = await startLlm('v1');
  const candidate = await startLlm('v2', () => ({ ...DEFAULT_ANSWER, truncateAfter: 2 }));
  const gw = await startGateway(config([llmRoute(stable.url, candidate.url)]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const c = client(gw);
  const texts: string[] = [];
  await drive(200, 1, async () => texts.push((await streamed(c)).text), rolledBack(gw));
  const state = gw.rollouts.route('chat')!.state();
  t.equal(state.phase, 'rolled_back');
  t.equal(state.lastDecision?.reason, 'truncated', String(state.lastDecision?.message));
  t.match(state.lastDecision?.message, /were truncated streams/);
  t.ok(['consecutive_failures', 'error_rate'].includes(String(state.lastDecision?.evidence?.rule)), 'the evidence names the rule that crossed');
  t.ok(texts.includes('Hello'), 'the truncated answers reached the client as they were: two tokens');
  const metrics = await gw.metrics.registry.metrics();
  t.match(metrics, /rollgate_response_checks_total\{route="chat",version="v2",check="llm",outcome="truncated"\} [1-9]/);
  t.match(metrics, /rollgate_rollbacks_total\{route="chat",reason="truncated"\} 1/);
  // The names of SPEC §9, every one exposed and promtool-clean.
  for (const name of ['rollgate_response_checks_total counter', 'rollgate_ttft_seconds histogram', 'rollgate_tpot_seconds histogram', 'rollgate_agreement_total counter']) {
    t.match(metrics, new RegExp(`^# TYPE ${name}$`, 'm'), name);
  }
  const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
  if (check.error !== undefined) t.fail('promtool is not on PATH: apt-get install prometheus (CI installs it)');
  else t.equal(`${check.status} ${check.stdout}${check.stderr}`.trim(), '0', 'promtool check metrics: no complaint');
  // After the trip, every stream comes from stable, whole, and passes its check.
  for (let i = 0; i < 5; i++) t.same(await streamed(c), { text: 'Hello there.', finish: 'stop' });
  const passed = Number(/rollgate_response_checks_total\{route="chat",version="v1",check="llm",outcome="pass"\} (\d+)/.exec(await gw.metrics.registry.metrics())?.[1]);
  t.ok(passed >= 5, `${passed} of stable's streams passed the check`);
});

t.test('a late first token behind an instant role chunk is rolled back for ttft; time to first byte alone would not have tripped', async (t) => {
  const fast: LlmAnswer = { ...DEFAULT_ANSWER, firstTokenMs: 40 };
  const stable = await startLlm('v1', () => fast);
  const candidate = await startLlm('v2', () => ({ ...fast, firstTokenMs: 120 }));
  const withChecks = await startGateway(config([llmRoute(stable.url, candidate.url)]));
  const { checks: _omit, ...plain } = llmRoute(stable.url, candidate.url);
  const firstByteOnly = await startGateway(config([plain]));
  t.teardown(async () => {
    await withChecks.close();
    await firstByteOnly.close();
    await stable.close();
    await candidate.close();
  });
  const sent = await drive(600, 8, () => streamed(client(withChecks)), rolledBack(withChecks));
  const state = withChecks.rollouts.route('chat')!.state();
  t.equal(state.lastDecision?.reason, 'ttft', String(state.lastDecision?.message));
  t.match(state.lastDecision?.message, /^time to first token: candidate v2 is credibly slower/);
  // The same traffic judged on first byte: the role chunk comes at once from both versions.
  await drive(Math.max(sent, 300), 8, () => streamed(client(firstByteOnly)));
  const plainState = firstByteOnly.rollouts.route('chat')!.state();
  t.equal(plainState.phase, 'progressing', `first byte alone: no trip after ${Math.max(sent, 300)} streams (${plainState.lastDecision?.message ?? 'no decision'})`);
  // The role chunk comes at once from both: first byte differs by less than the judge's minDelta (5 ms).
  const [c50, s50] = [plainState.windows.candidate!.latencyMs['0.5']!, plainState.windows.stable!.latencyMs['0.5']!];
  t.ok(c50 < Math.max(s50 * 1.25, s50 + 5), `first byte p50: candidate ${c50.toFixed(2)} ms, stable ${s50.toFixed(2)} ms`);
  const metrics = await withChecks.metrics.registry.metrics();
  t.match(metrics, /rollgate_ttft_seconds_count\{route="chat",version="v2"\} [1-9]/);
  t.match(metrics, /rollgate_tpot_seconds_count\{route="chat",version="v1"\} [1-9]/);
});

t.test('an error object inside a 200 stream, and a finished stream with no content, are failures of their kinds', async (t) => {
  let n = 0;
  const stable = await startLlm('v1');
  const candidate = await startLlm('v2', () => (n++ % 2 === 0 ? { ...DEFAULT_ANSWER, errorInStream: true } : { ...DEFAULT_ANSWER, tokens: [] }));
  const gw = await startGateway(config([llmRoute(stable.url, candidate.url, { allowOverride: true, rollback: { warmup: 10, consecutiveFailures: 100 } })]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const c = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'test', maxRetries: 0, defaultHeaders: { 'x-rollgate-version': 'candidate' } });
  // The client reads the error event as an APIError; the empty stream as a stream with no text.
  const seen = [];
  for (let i = 0; i < 4; i++) seen.push(await streamed(c).then((r) => r.text, (err: Error) => err.message));
  t.same(seen, ['model overloaded', '', 'model overloaded', ''], 'what the client saw');
  const metrics = await gw.metrics.registry.metrics();
  t.match(metrics, /rollgate_response_checks_total\{route="chat",version="v2",check="llm",outcome="stream_error"\} 2/);
  t.match(metrics, /rollgate_response_checks_total\{route="chat",version="v2",check="llm",outcome="empty"\} 2/);
  t.match(metrics, /rollgate_requests_total\{route="chat",version="v2",outcome="error"\} 4/);
});

t.test('whole (not streamed) answers: a missing finish_reason is truncated, and time to first token is the answer', async (t) => {
  const stable = await startLlm('v1');
  const candidate = await startLlm('v2', () => ({ ...DEFAULT_ANSWER, truncateAfter: 2 }));
  const gw = await startGateway(config([llmRoute(stable.url, candidate.url, { allowOverride: true })]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const c = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'test', maxRetries: 0 });
  const ok = await c.chat.completions.create({ model: 'm', messages: MESSAGES }, { headers: { 'x-rollgate-version': 'stable' } });
  t.equal(ok.choices[0]?.message.content, 'Hello there.');
  await c.chat.completions.create({ model: 'm', messages: MESSAGES }, { headers: { 'x-rollgate-version': 'candidate' } });
  const metrics = await gw.metrics.registry.metrics();
  t.match(metrics, /rollgate_response_checks_total\{route="chat",version="v1",check="llm",outcome="pass"\} 1/);
  t.match(metrics, /rollgate_response_checks_total\{route="chat",version="v2",check="llm",outcome="truncated"\} 1/);
  t.match(metrics, /rollgate_ttft_seconds_count\{route="chat",version="v1"\} 1/);
});
