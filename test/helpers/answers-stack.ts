import { Pool } from 'undici';
import { startAdmin } from '../../src/admin/server.js';
import { DEFAULT_ANSWER, startLlm } from './llm-server.js';
import { config, startGateway, startLabelled, startUpstream, type TestGateway } from './servers.js';

/** The schema of the `sentiment` route's answers: `{"predictions": [{"label": ...}]}`. */
export const SENTIMENT_SCHEMA = {
  type: 'object',
  required: ['predictions'],
  properties: { predictions: { type: 'array', items: { type: 'object', required: ['label'] } } },
};

/** Every `INVALID_EVERY`-th answer of both sentiment versions is `{"predictions": "oops"}`. */
export const INVALID_EVERY = 8;

/**
 * A classifier whose every `INVALID_EVERY`-th answer to a client's request fails the schema and,
 * when `flipEvery` > 0, whose every `flipEvery`-th answer says `negative` instead of `positive`.
 * Copies (`x-rollgate-shadow`), which the windows never count, always answer validly, so the
 * windows' invalid counts depend on the clients' requests alone.
 */
function classifier(version: string, flipEvery: number) {
  let n = 0;
  let live = 0;
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      if (req.headers['x-rollgate-shadow'] === undefined) live++;
      const label = flipEvery > 0 && n % flipEvery === 0 ? 'negative' : 'positive';
      const invalid = req.headers['x-rollgate-shadow'] === undefined && live % INVALID_EVERY === 0;
      const body = invalid ? '{"predictions": "oops"}' : JSON.stringify({ predictions: [{ label, score: 0.9 }], version });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
}

export interface AnswersStack {
  gw: TestGateway;
  /** The admin plane's base URL. */
  base: string;
  /** POSTs `n` predictions to the sentiment route. */
  predict(n: number): Promise<void>;
  /** Sends `n` streamed chat completions to the chat route. */
  chat(n: number): Promise<void>;
  /** GETs `n` requests from the plain route. */
  plain(n: number): Promise<void>;
  /** Resolves once the routes' counts (windows, pairs compared) have not moved for 200 ms: copies to stable finish after the client's answer. */
  settled(): Promise<void>;
}

/**
 * A gateway whose routes check their answers, and its admin plane with `token`:
 * - `sentiment`: canary at 50%, `checks.json` with SENTIMENT_SCHEMA (both versions fail it in
 *   one answer of INVALID_EVERY) and an agreement on `/predictions/0/label` with every candidate
 *   request also copied to stable (the candidate flips the label in one answer of 7);
 * - `chat`: canary at 50%, `checks.llm` (OpenAI streams; the candidate's tokens come 8 ms apart, stable's 2 ms);
 * - `plain`: a candidate at 50% and no check.
 * The rollback rules are loose enough that the failures the test makes roll nothing back.
 */
export async function startAnswersStack(t: { teardown(fn: () => unknown): void }, token: string, statsIntervalMs?: number): Promise<AnswersStack> {
  const [s1, s2, l1, l2, p1, p2] = await Promise.all([
    classifier('v1', 0),
    classifier('v2', 7),
    startLlm('v1'),
    startLlm('v2', () => ({ ...DEFAULT_ANSWER, gapMs: 8 })),
    startLabelled('v1'),
    startLabelled('v2'),
  ]);
  const rollback = { consecutiveFailures: 1_000, errorRate: { maxAbsolute: 0.9 }, latency: { minDelta: '10s' } };
  const cfg = config([
    {
      name: 'sentiment',
      match: { pathPrefix: '/v1/models/sentiment' },
      stable: { version: 'v1', url: s1.url },
      candidate: { version: 'v2', url: s2.url, weight: 50 },
      checks: { json: { schema: SENTIMENT_SCHEMA } },
      agreement: { pointer: '/predictions/0/label', maxDisagreement: 0.5, mirrorPercent: 100 },
      rollback,
    },
    {
      name: 'chat',
      match: { pathPrefix: '/v1/chat' },
      stable: { version: 'v1', url: l1.url },
      candidate: { version: 'v2', url: l2.url, weight: 50 },
      checks: { llm: { format: 'openai' } },
      rollback,
    },
    {
      name: 'plain',
      match: { pathPrefix: '/plain' },
      stable: { version: 'v1', url: p1.url },
      candidate: { version: 'v2', url: p2.url, weight: 50 },
    },
  ]);
  const gw = await startGateway(cfg);
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token, ready: () => true, metrics: gw.metrics, ...(statsIntervalMs === undefined ? {} : { statsIntervalMs }) });
  const pool = new Pool(gw.url, { connections: 4 });
  t.teardown(async () => {
    await pool.close();
    await admin.app.close();
    await gw.close();
    for (const u of [s1, s2, l1, l2, p1, p2]) await u.close();
  });
  const send = async (n: number, path: string, method: 'GET' | 'POST', body?: string): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const r = await pool.request({ path, method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body }) });
      await r.body.text();
    }
  };
  const chatBody = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Say hello' }], stream: true });
  const counts = (): string =>
    JSON.stringify(
      ['sentiment', 'chat', 'plain'].map((name) => {
        const st = gw.rollouts.route(name)!.state();
        return [st.windows.stable?.count, st.windows.stable?.failures, st.windows.candidate?.count, st.windows.candidate?.failures, st.answers?.agreement];
      }),
    );
  const settled = async (): Promise<void> => {
    let last = counts();
    for (let still = 0; still < 2; ) {
      await new Promise((r) => setTimeout(r, 100));
      const now = counts();
      still = now === last ? still + 1 : 0;
      last = now;
    }
  };
  return {
    gw,
    settled,
    base: `http://127.0.0.1:${admin.address.port}`,
    predict: (n) => send(n, '/v1/models/sentiment:predict', 'POST', '{"instances":["good"]}'),
    chat: (n) => send(n, '/v1/chat/completions', 'POST', chatBody),
    plain: (n) => send(n, '/plain/x', 'GET'),
  };
}
