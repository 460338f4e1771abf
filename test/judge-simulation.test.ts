import t from 'tap';
import { deploymentSeed, passes, scenario, simulateDeployment, summarize } from '../bench/judge-sim.js';

// A smaller seeded run of `npm run bench:judge`: the same deployments, fewer of them.
const SEED = 7;

function run(name: string, deployments: number) {
  const s = scenario(name);
  const results = Array.from({ length: deployments }, (_, i) => simulateDeployment(s, deploymentSeed(SEED, s.name, i)));
  return { s, results, summary: summarize(results) };
}

/**
 * Where the judge does not reach the target yet (see `npm run bench:judge` and the
 * README), the bound enforced here is what it reaches today with a margin, so a regression fails.
 */
const MEASURED_BOUNDS: Record<string, number> = {
  'error-20pct': 40,
  'latency-median-x1.5': 170,
};

t.test('a healthy candidate is never rolled back', async (t) => {
  const { summary } = run('healthy', 20);
  t.equal(summary.tripped, 0, `false rollbacks: ${JSON.stringify(summary.reasons)}`);
});

t.test('a healthy candidate on a step schedule, with host stalls slowing both versions, is never rolled back', async (t) => {
  // Before the judge was told of each step, the share it used lagged behind every step up and
  // every one of these deployments was rolled back for latency about a second after the first.
  const { summary } = run('healthy-steps-stalls', 20);
  t.equal(summary.tripped, 0, `false rollbacks: ${JSON.stringify(summary.reasons)}`);
});

for (const name of ['error-20pct', 'hard-failure', 'hard-failure-late', 'latency-median-x1.5']) {
  t.test(`${name}: every deployment trips, for the right reason, fast enough`, async (t) => {
    const { s, results, summary } = run(name, 20);
    t.equal(summary.neverTripped, 0, `all tripped within ${s.cap} candidate requests`);
    for (const r of results) t.ok(r.reason !== null && s.reasons.includes(r.reason), `reason ${r.reason} after ${r.candidateRequests}`);
    const bound = MEASURED_BOUNDS[name] ?? s.target;
    t.ok((summary.meanToTrip ?? Infinity) <= bound, `mean ${summary.meanToTrip} <= ${bound} candidate requests (target ${s.target})`);
    t.equal(passes(s, summary), (summary.meanToTrip ?? Infinity) <= s.target, 'the bench judges it the same way');
  });
}

t.test('the harness is deterministic', async (t) => {
  const s = scenario('latency-p99-x2');
  const seed = deploymentSeed(SEED, s.name, 3);
  t.same(simulateDeployment(s, seed), simulateDeployment(s, seed));
  t.not(deploymentSeed(SEED, s.name, 3), deploymentSeed(SEED, s.name, 4));
  t.not(deploymentSeed(SEED, 'healthy', 3), deploymentSeed(SEED, s.name, 3));
});
