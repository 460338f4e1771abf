import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

// `npm run bench:soak` for one minute: `rollgate serve` on Redis as its own process, steady load
// over two routes, candidates deployed, weighted, failed, promoted and rolled back through the
// admin API, the status page's stream connected. What a minute can show without depending on the
// machine's speed: no client error the fault injection did not cause, every trip taken, the
// stream never dropped, descriptors and sockets back where they were, the gateway exits cleanly.
// The heap slope and the event-loop delay are the bench's targets, not asserted here.

const SOAK = fileURLToPath(new URL('../bench/soak.js', import.meta.url));
const UPSTREAMS = ['plain-a', 'plain-b', 'replay-a', 'replay-b'];

t.test('a one-minute soak', { timeout: 240_000 }, async (t) => {
  const child = spawn(process.execPath, [SOAK, '--minutes', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(stderr, '', 'nothing on stderr');

  const lines = stdout.trim().split('\n');
  const parsed = lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, any>;
    } catch {
      return null;
    }
  });
  t.ok(parsed.every((l) => l !== null), 'every line of output is JSON');
  const samples = parsed.filter((l) => l?.kind === 'sample') as Record<string, any>[];
  const summary = parsed.at(-1) as Record<string, any>;
  t.equal(summary?.kind, 'summary', `the last line is the summary (exit code ${code})`);
  t.equal(samples.length, 6, 'one sample every 10 s');
  for (const s of samples) {
    t.match(
      s,
      {
        t: Number,
        rssMiB: Number,
        heapAfterGcMiB: Number,
        fds: Number,
        fdsMax: Number,
        socketsMax: Number,
        eventLoopP99Ms: Number,
        eventLoopMaxMs: Number,
        cpuPct: Number,
        requests: Number,
        errors: { expected: Number, unexpected: Number },
      },
      `sample at ${s.t} s has every field`,
    );
    t.same(Object.keys(s.socketsByUpstream).sort(), UPSTREAMS, 'sockets counted for each model server');
    t.ok(s.rssMiB > 0 && s.heapAfterGcMiB > 0 && s.fds > 0, 'memory and descriptors read from the gateway');
  }
  t.ok(samples.every((s, i) => i === 0 || s.requests > samples[i - 1]!.requests), 'the load ran throughout');

  t.equal(summary.clientErrors.unexpected, 0, `no client error the fault injection did not cause: ${JSON.stringify(summary.clientErrors.firstUnexpected)}`);
  t.ok(summary.clientErrors.expected > 0, 'the failing candidates reached clients of the route without retryOnStable');
  const replayFaults = summary.faultedUpstreamAnswers['replay-a'] + summary.faultedUpstreamAnswers['replay-b'];
  t.ok(replayFaults > 0, `the replaying route's candidates failed ${replayFaults} requests, and none reached a client`);
  t.ok(summary.trips.expected > 0, `${summary.trips.expected} trips expected`);
  t.equal(summary.trips.taken, summary.trips.expected, 'every failing candidate was rolled back by the judge');
  t.equal(summary.trips.unexpected, 0, 'no healthy candidate was rolled back');
  t.ok(summary.driver.promotes > 0 && summary.driver.rollbacks > 0, 'candidates were promoted and rolled back by hand too');
  t.equal(summary.driver.adminErrors, 0, `every admin call succeeded: ${JSON.stringify(summary.driver.problems)}`);
  t.equal(summary.statsStream.reconnects, 0, 'the stats stream never dropped');
  t.same(summary.statsStream.drops, []);
  t.ok(summary.statsStream.statsEvents >= 30, `stats events kept coming (${summary.statsStream.statsEvents})`);
  t.match(summary.gatewayExit, { code: 0, killed: false }, 'the gateway shut down cleanly on SIGTERM');

  // Sockets to the model servers come and go with the candidates and the client's 16 connections;
  // a leak of one per cycle (about 40 cycles a minute) would be above these bounds.
  const sockets = (s: Record<string, any>) => Object.values(s.socketsByUpstream as Record<string, number>).reduce((a, b) => a + b, 0);
  const [first, last] = [samples[0]!, samples.at(-1)!];
  t.ok(last.fds <= first.fds + 20, `descriptors: ${first.fds} at ${first.t} s, ${last.fds} at the end`);
  t.ok(sockets(last) <= sockets(first) + 16, `sockets to the model servers: ${sockets(first)} at ${first.t} s, ${sockets(last)} at the end`);
  t.match(summary.slopes, { heapMiBPer10Min: Number, fdsPer10Min: Number, socketsPer10Min: Number, eventLoopP99MaxMs: Number }, 'the summary has the slopes');
});
