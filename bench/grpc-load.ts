import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { ANSWER, MODEL_INFER_PATH, REQUEST, decodeAnswer, identity } from './grpc-messages.js';

/**
 * bench:overhead's gRPC load generator, a child process driven over IPC: a fixed number of unary
 * `ModelInfer` calls kept in flight over one grpc-js channel per target (each answer starts the
 * next call, as wrk does with connections). The request is encoded once and answers are checked
 * by length, so the client's CPU goes to grpc-js's call path, not to protobuf.
 *
 * Messages in: `{ kind: 'probe', target, count }` (calls one at a time, returns each answer's
 * `x-rollgate-version`) and `{ kind: 'run', target, inFlight, seconds }`; one answer each.
 */

export interface ProbeAnswer { kind: 'probe'; versions: (string | null)[]; error?: string }
export interface RunAnswer {
  kind: 'run';
  calls: number;
  errors: number;
  first_error: string | null;
  elapsed_s: number;
  p50_ms: number;
  p99_ms: number;
  /** This process's user+system CPU over the run. */
  cpu_us: number;
}
export type LoadRequest = { kind: 'probe'; target: string; count: number } | { kind: 'run'; target: string; inFlight: number; seconds: number };

const clients = new Map<string, grpc.Client>();
function client(target: string): grpc.Client {
  let c = clients.get(target);
  if (!c) clients.set(target, (c = new grpc.Client(target, grpc.credentials.createInsecure())));
  return c;
}

async function probe(target: string, count: number): Promise<ProbeAnswer> {
  const versions: (string | null)[] = [];
  for (let i = 0; i < count; i++) {
    const r = await new Promise<{ version: string | null; err?: string }>((resolve) => {
      let version: string | null = null;
      const call = client(target).makeUnaryRequest(MODEL_INFER_PATH, identity, identity, REQUEST, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) => {
        if (err) return resolve({ version, err: `${grpc.status[err.code]}: ${err.details}` });
        const answer = decodeAnswer(res!);
        if (answer.model_name !== 'sentiment' || answer.raw_output_contents[0]?.toString() !== 'positive') resolve({ version, err: 'the answer is not the server\'s' });
        else resolve({ version });
      });
      call.on('metadata', (md: grpc.Metadata) => {
        const v = md.get('x-rollgate-version')[0];
        version = v === undefined ? null : String(v);
      });
    });
    if (r.err !== undefined) return { kind: 'probe', versions, error: r.err };
    versions.push(r.version);
  }
  return { kind: 'probe', versions };
}

function run(target: string, inFlight: number, seconds: number): Promise<RunAnswer> {
  const c = client(target);
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let active = 0;
  let done = false;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  return new Promise((resolve) => {
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      const cpu = process.cpuUsage(cpu0);
      // Calls still open after the grace period count as errors.
      errors += active;
      const sorted = Float64Array.from(latencies).sort();
      const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);
      resolve({
        kind: 'run',
        calls: latencies.length,
        errors,
        first_error: firstError,
        elapsed_s: (performance.now() - t0) / 1000,
        p50_ms: pct(50),
        p99_ms: pct(99),
        cpu_us: cpu.user + cpu.system,
      });
    };
    const watchdog = setTimeout(finish, seconds * 1000 + 10_000);
    const start = (): void => {
      active++;
      const sent = performance.now();
      c.makeUnaryRequest(MODEL_INFER_PATH, identity, identity, REQUEST, (err, res) => {
        active--;
        const now = performance.now();
        if (err || res?.length !== ANSWER.length) {
          errors++;
          firstError ??= err ? `${grpc.status[err.code]}: ${err.details}` : `an answer of ${res?.length} bytes`;
        } else {
          latencies.push(now - sent);
        }
        if (done) return;
        if (now < end) start();
        else if (active === 0) finish();
      });
    };
    for (let i = 0; i < inFlight; i++) start();
  });
}

process.on('message', (msg: LoadRequest) => {
  const answer = msg.kind === 'probe' ? probe(msg.target, msg.count) : run(msg.target, msg.inFlight, msg.seconds);
  void answer.then((a) => process.send!(a));
});
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
