import t from 'tap';
import { Pool } from 'undici';
import { config, startGateway, startUpstream, type TestGateway } from './helpers/servers.js';

// agreement (SPEC §9): the candidate's answer and stable's to the same request compared at a
// JSON pointer, with a sequential test of the disagreement rate against maxDisagreement.

/** A classifier: label `positive` for every request, but `negative` on `flip(n)`. */
function classifier(version: string, flip: (n: number) => boolean) {
  let n = 0;
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      const label = flip(n++) ? 'negative' : 'positive';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ predictions: [{ label, score: 0.91 }], version }));
    });
  });
}

const every = (k: number) => (n: number) => n % k === k - 1;

function route(stable: string, candidate: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'sentiment',
    match: { pathPrefix: '/v1/models/sentiment' },
    stable: { version: 'v1', url: stable },
    candidate: { version: 'v2', url: candidate },
    strategy: 'shadow',
    shadow: { mirrorPercent: 100, maxInFlight: 1_000 },
    agreement: { pointer: '/predictions/0/label', maxDisagreement: 0.05 },
    ...extra,
  };
}

async function pairs(gw: TestGateway): Promise<{ agree: number; disagree: number }> {
  const text = await gw.metrics.registry.metrics();
  const count = (outcome: string) => Number(new RegExp(`rollgate_agreement_total\\{route="sentiment",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  return { agree: count('agree'), disagree: count('disagree') };
}

/** Sends requests with 32 callers until `done()` (checked every request) or `max` were sent. */
async function drive(gw: TestGateway, max: number, done: () => boolean): Promise<{ sent: number; labels: Set<string> }> {
  const pool = new Pool(gw.url, { connections: 32 });
  let sent = 0;
  const labels = new Set<string>();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (sent < max && !done()) {
        sent++;
        const r = await pool.request({ path: '/v1/models/sentiment:predict', method: 'POST', body: '{"instances":["good"]}' });
        labels.add(String(r.headers['x-rollgate-version']));
        await r.body.text();
      }
    }),
  );
  await pool.close();
  return { sent, labels };
}

t.test('shadow: a candidate that flips the label in 15% of answers is rolled back for disagreement, with example pairs', async (t) => {
  const stable = await classifier('v1', () => false);
  const candidate = await classifier('v2', (n) => n % 20 < 3);
  const gw = await startGateway(config([route(stable.url, candidate.url)]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  const { labels } = await drive(gw, 5_000, () => gw.rollouts.route('sentiment')!.state().phase === 'rolled_back');
  t.same([...labels], ['v1'], 'clients only ever got stable');
  const d = gw.rollouts.route('sentiment')!.state().lastDecision;
  t.equal(d?.reason, 'disagreement', String(d?.message));
  const examples = d?.evidence?.examples as { stable: string; candidate: string }[];
  t.ok(examples.length >= 1 && examples.length <= 3, `${examples.length} example pairs`);
  t.same(examples[0], { stable: '"positive"', candidate: '"negative"' });
  t.match(d?.message, /disagrees with stable v1 credibly more often than maxDisagreement 5\.0%: \d+ of \d+ compared pairs disagreed; .*for example: stable "positive" \/ candidate "negative"/);
  const p = await pairs(gw);
  t.ok(p.disagree > 0 && p.agree > p.disagree, `metrics: ${JSON.stringify(p)}`);
});

t.test('shadow: a candidate that agrees on 99% of answers is not rolled back over 20,000 pairs', async (t) => {
  const stable = await classifier('v1', () => false);
  const candidate = await classifier('v2', every(100));
  const gw = await startGateway(config([route(stable.url, candidate.url)]));
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  let compared = 0;
  const poll = setInterval(() => void pairs(gw).then((p) => (compared = p.agree + p.disagree)), 100);
  t.teardown(() => clearInterval(poll));
  await drive(gw, 30_000, () => compared >= 20_000);
  const p = await pairs(gw);
  t.ok(p.agree + p.disagree >= 20_000, `${p.agree + p.disagree} pairs compared`);
  t.ok(p.disagree >= 150, `${p.disagree} of them disagreed (1%)`);
  const s = gw.rollouts.route('sentiment')!.state();
  t.equal(s.phase, 'shadowing', String(s.lastDecision?.message ?? 'no decision'));
});

t.test('canary: agreement.mirrorPercent copies candidate requests to stable only to compare them', async (t) => {
  const stable = await classifier('v1', () => false);
  const candidate = await classifier('v2', every(4));
  const gw = await startGateway(
    config([route(stable.url, candidate.url, { strategy: 'canary', candidate: { version: 'v2', url: candidate.url, weight: 50 }, agreement: { pointer: '/predictions/0/label', maxDisagreement: 0.05, mirrorPercent: 100 } })]),
  );
  t.teardown(async () => {
    await gw.close();
    await stable.close();
    await candidate.close();
  });
  await drive(gw, 3_000, () => gw.rollouts.route('sentiment')!.state().phase === 'rolled_back');
  const d = gw.rollouts.route('sentiment')!.state().lastDecision;
  t.equal(d?.reason, 'disagreement', String(d?.message));
  // Stable's copies are compared, never judged or counted as stable's requests.
  const stableServed = stable.seen.length;
  const stableCounted = gw.outcomes.filter((o) => o.role === 'stable').length;
  t.ok(stableServed > stableCounted, `stable served ${stableServed}, of which ${stableCounted} client requests were judged`);
});
