import { once } from 'node:events';
import { connect as h2connect, constants as h2 } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import t from 'tap';
import { peakGrowth } from './helpers/memory.js';
import { config, eventually, seededRng, startGateway, type TestGateway } from './helpers/servers.js';

const PROTO = fileURLToPath(new URL('../../test/fixtures/inference.proto', import.meta.url));
const definition = loader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true });
const inference = (grpc.loadPackageDefinition(definition) as any).inference;
const Service = inference.GRPCInferenceService as grpc.ServiceClientConstructor;

interface InferRequest { model_name: string; id: string; raw_input_contents: Buffer[] }
interface InferResponse { model_name: string; model_version: string; id: string; raw_output_contents: Buffer[] }
type Mode = 'ok' | 'unavailable' | 'invalid' | 'hang';

interface Model {
  port: number;
  calls(): number;
  set(m: Mode): void;
  /** ModelInferChunks: the bytes handed to write() so far, writing only while write() says so. */
  produced(): number;
  /** ModelStreamInfer with `x-hold` metadata reads nothing until this is called. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A grpc-js model server: ModelInfer answers its label (or the mode's error), the streams echo.
 * A ModelStreamInfer call with `x-hold` metadata does not read until release(), then reads it all
 * and answers one message whose id is `<messages>:<bytes>` received.
 */
async function startModel(label: string): Promise<Model> {
  let mode: Mode = 'ok';
  let calls = 0;
  let produced = 0;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = new grpc.Server();
  server.addService(Service.service, {
    ModelInfer(call: grpc.ServerUnaryCall<InferRequest, InferResponse>, cb: grpc.sendUnaryData<InferResponse>) {
      calls++;
      if (mode === 'unavailable') return cb({ code: grpc.status.UNAVAILABLE, details: `${label} is warming up` });
      if (mode === 'hang') return;
      if (mode === 'invalid') return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'input shape [1,3] does not match [1,4]' });
      const sticky = call.metadata.get('x-user')[0];
      cb(null, { model_name: call.request.model_name, model_version: label, id: String(sticky ?? call.request.id), raw_output_contents: call.request.raw_input_contents });
    },
    ModelStreamInfer(call: grpc.ServerDuplexStream<InferRequest, { infer_response: InferResponse }>) {
      calls++;
      if (call.metadata.get('x-hold').length > 0) {
        let messages = 0;
        let bytes = 0;
        void released.then(() => {
          call.on('data', (r: InferRequest) => {
            messages++;
            bytes += r.raw_input_contents[0]?.length ?? 0;
          });
          call.on('end', () => {
            call.write({ infer_response: { model_name: 'm', model_version: label, id: `${messages}:${bytes}`, raw_output_contents: [] } });
            call.end();
          });
        });
        return;
      }
      call.on('data', (r: InferRequest) => call.write({ infer_response: { model_name: r.model_name, model_version: label, id: r.id, raw_output_contents: r.raw_input_contents } }));
      call.on('end', () => call.end());
    },
    ModelInferChunks(call: grpc.ServerWritableStream<{ chunks: number; chunk_bytes: number }, InferResponse>) {
      calls++;
      const { chunks, chunk_bytes } = call.request;
      let i = 0;
      const more = (): void => {
        while (i < chunks) {
          const ok = call.write({ model_name: 'm', model_version: label, id: String(i), raw_output_contents: [Buffer.alloc(chunk_bytes, i % 251)] });
          produced += chunk_bytes;
          i++;
          if (!ok) return void call.once('drain', more);
        }
        call.end();
      };
      more();
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, calls: () => calls, set: (m) => (mode = m), produced: () => produced, release: () => release(), close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

function route(stablePort: number, candidatePort: number, extra: Record<string, unknown> = {}) {
  return {
    name: 'infer',
    match: { pathPrefix: '/inference.GRPCInferenceService/' },
    stable: { version: 'v1', url: `http://127.0.0.1:${stablePort}`, protocol: 'h2c' },
    candidate: { version: 'v2', url: `http://127.0.0.1:${candidatePort}`, protocol: 'h2c', weight: 10 },
    ...extra,
  };
}

type Client = any;

function infer(client: Client, req: Partial<InferRequest>, metadata = new grpc.Metadata()): Promise<{ res?: InferResponse; err?: grpc.ServiceError; version?: string }> {
  return new Promise((resolve) => {
    let version: string | undefined;
    const call = client.ModelInfer({ model_name: 'm', id: '1', raw_input_contents: [], ...req }, metadata, { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null, res: InferResponse) => resolve(err ? { err, ...(version ? { version } : {}) } : { res, ...(version ? { version } : {}) }));
    call.on('metadata', (md: grpc.Metadata) => (version = String(md.get('x-rollgate-version')[0])));
  });
}

async function setup(t: { teardown(fn: () => unknown): void }, extra: Record<string, unknown> = {}, seed = 7): Promise<{ gw: TestGateway; stable: Model; candidate: Model; client: Client }> {
  const stable = await startModel('v1');
  const candidate = await startModel('v2');
  const gw = await startGateway(config([route(stable.port, candidate.port, extra)]), { rng: seededRng(seed) });
  const client = new Service(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    await gw.close();
    await Promise.all([stable.close(), candidate.close()]);
  });
  return { gw, stable, candidate, client };
}

t.test('2,000 unary calls over one channel split at weight 10 per call, and the servers agree', async (t) => {
  const { gw, stable, candidate, client } = await setup(t);
  const versions = { v1: 0, v2: 0 } as Record<string, number>;
  const N = 2_000;
  for (let batch = 0; batch < N / 50; batch++) {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => infer(client, { id: String(batch * 50 + i), raw_input_contents: [Buffer.from([1, 2, 3])] })));
    for (const a of answers) {
      if (a.err !== undefined || a.res?.raw_output_contents[0]?.toString('hex') !== '010203') return t.fail(`call failed or changed: ${a.err?.message}`);
      versions[a.res.model_version] = (versions[a.res.model_version] ?? 0) + 1;
      if (a.version !== a.res.model_version) return t.fail(`x-rollgate-version ${a.version} names the version that answered (${a.res.model_version})`);
    }
  }
  const share = (100 * (versions.v2 ?? 0)) / N;
  t.ok(Math.abs(share - 10) <= 1.5, `candidate share ${share.toFixed(2)}% is within 1.5 points of 10`);
  t.equal(candidate.calls(), versions.v2, 'the candidate server counted the calls it answered');
  t.equal(stable.calls(), versions.v1, 'the stable server counted the calls it answered');
  const text = await gw.metrics.registry.metrics();
  t.match(text, new RegExp(`^rollgate_requests_total\\{route="infer",version="v2",outcome="ok"\\} ${versions.v2}$`, 'm'), 'each call counts once in rollgate_requests_total');
  t.equal(gw.outcomes.length, N, 'one outcome per call');
});

t.test('a sticky metadata key holds each caller to one version over one channel; keys split by weight and stay on the candidate as it rises', async (t) => {
  // Nothing here judges the versions: no rollback however slow a loaded machine makes either.
  const { gw, client } = await setup(t, { sticky: { header: 'x-user' }, rollback: { warmup: 1_000_000 } });
  const controller = gw.rollouts.route('infer')!;
  const USERS = 400;
  const user = (i: number): string => `user-${i}`;
  /** Each user makes `rounds` calls, 50 users' calls at a time multiplexed on the one channel; their versions. */
  const calls = async (rounds: number): Promise<Map<string, Set<string>>> => {
    const versions = new Map<string, Set<string>>();
    for (let r = 0; r < rounds; r++) {
      for (let from = 0; from < USERS; from += 50) {
        const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => {
          const metadata = new grpc.Metadata();
          metadata.set('x-user', user(from + i));
          return infer(client, {}, metadata);
        }));
        answers.forEach((a, i) => {
          const key = user(from + i);
          if (a.err !== undefined || a.res?.id !== key) t.fail(`call of ${key} failed or lost its metadata: ${a.err?.message ?? a.res?.id}`);
          const set = versions.get(key) ?? new Set<string>();
          set.add(a.res?.model_version ?? 'none');
          versions.set(key, set);
        });
      }
    }
    return versions;
  };
  const onCandidate = (v: Map<string, Set<string>>): string[] => [...v].filter(([, s]) => s.has('v2')).map(([k]) => k);
  controller.setWeight(30);
  const at30 = await calls(3);
  t.ok([...at30.values()].every((s) => s.size === 1), 'each user\'s 3 calls landed on one version (by chance at weight 30: 37% a user)');
  const share30 = (100 * onCandidate(at30).length) / USERS;
  t.ok(Math.abs(share30 - 30) <= 7, `${share30.toFixed(1)}% of the users are on the candidate at weight 30`);
  controller.setWeight(60);
  const at60 = await calls(2);
  t.ok([...at60.values()].every((s) => s.size === 1), 'at weight 60, still one version per user');
  t.ok(onCandidate(at30).every((k) => at60.get(k)?.has('v2')), 'every user on the candidate at 30 is still on it at 60');
  const share60 = (100 * onCandidate(at60).length) / USERS;
  t.ok(Math.abs(share60 - 60) <= 7, `${share60.toFixed(1)}% of the users are on the candidate at weight 60`);
  // Without the key, the same channel's calls are split per call.
  const keyless = await Promise.all(Array.from({ length: 100 }, () => infer(client, {})));
  t.equal(new Set(keyless.map((a) => a.res?.model_version)).size, 2, 'calls without the key reach both versions');
});

t.test('a candidate answering UNAVAILABLE is rolled back within consecutiveFailures calls; the client sees its errors', async (t) => {
  const { gw, candidate, client } = await setup(t, { rollback: { consecutiveFailures: 5 } });
  const controller = gw.rollouts.route('infer')!;
  for (let i = 0; i < 200; i++) await infer(client, {});
  t.equal(controller.phase, 'progressing', 'no rollback while both versions answer');
  candidate.set('unavailable');
  const before = candidate.calls();
  let seenErrors = 0;
  for (let i = 0; i < 2_000 && controller.phase !== 'rolled_back'; i++) {
    const a = await infer(client, {});
    if (a.err !== undefined) {
      t.equal(a.err.code, grpc.status.UNAVAILABLE, 'the candidate status reaches the client');
      t.match(a.err.details, /v2 is warming up/, 'with its message');
      seenErrors++;
    }
  }
  t.equal(controller.phase, 'rolled_back', 'the route is rolled back');
  const failed = candidate.calls() - before;
  t.ok(failed >= 1 && failed <= 5, `rolled back after ${failed} failed candidate calls (consecutiveFailures 5)`);
  t.equal(seenErrors, failed, 'every failed candidate call reached the client (no retryOnStable)');
  const after = candidate.calls();
  for (let i = 0; i < 50; i++) t.equal((await infer(client, {})).res?.model_version, 'v1');
  t.equal(candidate.calls(), after, 'no call reaches the candidate after the rollback');
  const text = await gw.metrics.registry.metrics();
  t.match(text, /^rollgate_requests_total\{route="infer",version="v2",outcome="error"\} [1-5]$/m, 'the failures count as errors');
});

t.test('with retryOnStable a candidate answering UNAVAILABLE is replayed on stable: the client sees no error', async (t) => {
  const { gw, stable, candidate, client } = await setup(t, { retryOnStable: true, rollback: { consecutiveFailures: 5 } });
  const controller = gw.rollouts.route('infer')!;
  candidate.set('unavailable');
  let errors = 0;
  const payload = Buffer.from('tensor bytes');
  for (let i = 0; i < 2_000 && controller.phase !== 'rolled_back'; i++) {
    const a = await infer(client, { id: String(i), raw_input_contents: [payload] });
    if (a.err !== undefined || a.res?.model_version !== 'v1' || !a.res.raw_output_contents[0]?.equals(payload)) errors++;
  }
  t.equal(controller.phase, 'rolled_back', 'the candidate failures still count: rolled back');
  t.equal(errors, 0, 'every call got stable\'s whole answer');
  const failed = candidate.calls();
  t.ok(failed >= 1 && failed <= 5, `${failed} candidate calls failed before the rollback`);
  t.ok(gw.outcomes.filter((o) => o.replayed).length === failed, 'each failed candidate call was replayed');
  t.ok(stable.calls() >= failed, 'stable answered the replays');
});

t.test('INVALID_ARGUMENT from the candidate is the caller\'s: never counted, never rolled back', async (t) => {
  const { gw, candidate, client } = await setup(t, { rollback: { consecutiveFailures: 3, warmup: 10 } }, 11);
  candidate.set('invalid');
  let invalid = 0;
  for (let i = 0; i < 600; i++) {
    const a = await infer(client, {});
    if (a.err !== undefined) {
      if (a.err.code !== grpc.status.INVALID_ARGUMENT) t.fail(`unexpected status ${a.err.code}`);
      invalid++;
    }
  }
  t.ok(invalid >= 30, `${invalid} calls answered INVALID_ARGUMENT`);
  t.equal(gw.rollouts.route('infer')!.phase, 'progressing', 'the route is not rolled back');
  const text = await gw.metrics.registry.metrics();
  t.notMatch(text, /^rollgate_requests_total\{route="infer",version="v2",outcome="error"\} [1-9]/m, 'no candidate call counts as an error');
  t.match(text, new RegExp(`^rollgate_requests_total\\{route="infer",version="v2",outcome="ok"\\} ${candidate.calls()}$`, 'm'), 'they count as answered');
});

t.test('errors the gateway makes are gRPC statuses with a message naming the route and version', async (t) => {
  const stable = await startModel('v1');
  const candidate = await startModel('v2');
  const gw = await startGateway(config([
    route(stable.port, candidate.port, { candidate: { version: 'v2', url: `http://127.0.0.1:${candidate.port}`, protocol: 'h2c', weight: 0 }, timeouts: { response: '300ms' } }),
    { name: 'down', match: { pathPrefix: '/down.Service/' }, stable: { version: 'd1', url: 'http://127.0.0.1:1', protocol: 'h2c' } },
    { name: 'rest', match: { pathPrefix: '/rest.Service/' }, stable: { version: 'r1', url: `http://127.0.0.1:${stable.port}` } },
  ]));
  const channel = `127.0.0.1:${gw.port}`;
  const client = new Service(channel, grpc.credentials.createInsecure());
  const generic = new grpc.Client(channel, grpc.credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    generic.close();
    await gw.close();
    await Promise.all([stable.close(), candidate.close()]);
  });
  const raw = (path: string): Promise<grpc.ServiceError> =>
    new Promise((resolve) => generic.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (err) => resolve(err!)));

  const noRoute = await raw('/unknown.Service/Call');
  t.equal(noRoute.code, grpc.status.UNIMPLEMENTED, 'no route: UNIMPLEMENTED, what a gRPC server says of an unknown method');
  t.equal(noRoute.details, 'no route matches path /unknown.Service/Call');
  const down = await raw('/down.Service/Call');
  t.equal(down.code, grpc.status.UNAVAILABLE, 'upstream refused: UNAVAILABLE');
  t.equal(down.details, 'upstream d1 of route down cannot be reached');
  const http1 = await raw('/rest.Service/Call');
  t.equal(http1.code, grpc.status.UNIMPLEMENTED, 'a version that speaks HTTP/1.1: UNIMPLEMENTED');
  t.match(http1.details, /version r1 of route rest speaks HTTP\/1\.1/);
  stable.set('hang');
  const slow = await infer(client, {});
  t.equal(slow.err?.code, grpc.status.DEADLINE_EXCEEDED, 'no answer within timeouts.response: DEADLINE_EXCEEDED');
  t.equal(slow.err?.details, 'upstream v1 of route infer did not answer in time');
  const text = await gw.metrics.registry.metrics();
  t.match(text, /^rollgate_requests_total\{route="infer",version="v1",outcome="timeout"\} 1$/m, 'the timeout counts against the version');
  t.match(text, /^rollgate_requests_total\{route="down",version="d1",outcome="error"\} 1$/m, 'the refused call counts against its version');
});

t.test('a server-streaming call of 50 MB read slowly and a bidirectional call pass through whole', async (t) => {
  const { client } = await setup(t, { candidate: undefined });
  const CHUNK = 256 * 1024;
  const CHUNKS = 200;
  const read = async (): Promise<{ count: number; bytes: number; inOrder: boolean }> => {
    const call = client.ModelInferChunks({ chunks: CHUNKS, chunk_bytes: CHUNK });
    let count = 0;
    let bytes = 0;
    let inOrder = true;
    for await (const m of call as AsyncIterable<InferResponse>) {
      const body = m.raw_output_contents[0]!;
      if (m.id !== String(count) || body[0] !== count % 251 || body[body.length - 1] !== count % 251) inOrder = false;
      count++;
      bytes += body.length;
      // A slow reader: the stream is paused and resumed all along (the flow-control tests below
      // check that the upstream is held back meanwhile).
      if (count % 2 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    return { count, bytes, inOrder };
  };
  const got = await read();
  t.equal(got.count, CHUNKS, 'every message arrived');
  t.equal(got.bytes, CHUNKS * CHUNK, '50 MB arrived');
  t.ok(got.inOrder, 'in order and intact');

  const bidi = client.ModelStreamInfer();
  const echoed: string[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    bidi.on('data', (m: { infer_response: InferResponse }) => {
      echoed.push(`${m.infer_response.id}:${m.infer_response.raw_output_contents[0]?.toString()}`);
      if (echoed.length < 20) bidi.write({ model_name: 'm', id: String(echoed.length), raw_input_contents: [Buffer.from(`msg${echoed.length}`)] });
      else bidi.end();
    });
    bidi.on('end', resolve);
    bidi.on('error', reject);
  });
  bidi.write({ model_name: 'm', id: '0', raw_input_contents: [Buffer.from('msg0')] });
  await ended;
  t.same(echoed, Array.from({ length: 20 }, (_, i) => `${i}:msg${i}`), 'each message answered in turn on one call, the next sent after the answer');
});

const MB = 1_048_576;

/** Reads `value` every 100 ms until it stays the same for `quietMs` (at most `maxMs` in all); returns it. */
async function settled(value: () => number, quietMs = 1_000, maxMs = 30_000): Promise<number> {
  const end = Date.now() + maxMs;
  let last = value();
  let since = Date.now();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}

// Flow control, seen from the ends: without the gateway's backpressure each of these streams
// would be pushed whole (64 MB) into the gateway; with it, the writer is held to what the
// HTTP/2 windows and the streams' buffers on the way hold.
t.test('flow control, upstream to client: a client that stops reading holds a server stream back; then it gets it whole', async (t) => {
  const { stable, client } = await setup(t, { candidate: undefined });
  const CHUNK = 64 * 1024;
  const CHUNKS = 1_024;
  const total = CHUNK * CHUNKS;
  const call = client.ModelInferChunks({ chunks: CHUNKS, chunk_bytes: CHUNK }, { deadline: Date.now() + 120_000 });
  // The client reads the first message, then nothing until the hold is measured. (Before its
  // first read, grpc-js itself takes in whatever arrives, without limit: it must read once.)
  const messages = (call as AsyncIterable<InferResponse>)[Symbol.asyncIterator]();
  const first = await messages.next();
  t.equal(first.value?.id, '0', 'the first message arrived');
  const holding = settled(() => stable.produced());
  const growth = await peakGrowth(holding);
  const held = await holding;
  t.ok(held < 8 * MB, `the upstream is held at ${(held / MB).toFixed(2)} MB of a ${total / MB} MB stream`);
  t.ok(growth < 16 * MB, `peak live memory growth ${(growth / MB).toFixed(1)} MB meanwhile`);
  t.equal((await infer(client, {})).res?.model_version, 'v1', 'another call on the same connection and upstream session is served meanwhile');
  let count = 1;
  let bytes = CHUNK;
  let inOrder = true;
  for (let next = await messages.next(); next.done !== true; next = await messages.next()) {
    const m = next.value;
    const body = m.raw_output_contents[0]!;
    if (m.id !== String(count) || body[0] !== count % 251 || body.length !== CHUNK) inOrder = false;
    count++;
    bytes += body.length;
  }
  t.equal(count, CHUNKS, 'once the client reads, every message arrives');
  t.equal(bytes, total, `${total / MB} MB arrived`);
  t.ok(inOrder, 'in order and intact');
});

t.test('flow control, client to upstream: an upstream that reads nothing holds the client\'s writes back; then it gets them all', async (t) => {
  const { stable, client } = await setup(t, { candidate: undefined });
  const CHUNK = 64 * 1024;
  const CHUNKS = 1_024;
  const total = CHUNK * CHUNKS;
  const metadata = new grpc.Metadata();
  metadata.set('x-hold', '1');
  const call = client.ModelStreamInfer(metadata, { deadline: Date.now() + 120_000 });
  const answers: string[] = [];
  call.on('data', (m: { infer_response: InferResponse }) => answers.push(m.infer_response.id));
  const ended = once(call, 'end');
  ended.catch(() => undefined); // awaited below
  let accepted = 0;
  const message = { model_name: 'm', id: 'x', raw_input_contents: [Buffer.alloc(CHUNK, 7)] };
  // The client writes as fast as write() lets it: on false it waits for 'drain'.
  const writing = (async () => {
    for (let i = 0; i < CHUNKS; i++) {
      accepted += CHUNK;
      if (!call.write(message)) await once(call, 'drain');
    }
    call.end();
  })();
  writing.catch(() => undefined); // awaited below
  const holding = settled(() => accepted);
  const growth = await peakGrowth(holding);
  const held = await holding;
  t.ok(held < 8 * MB, `the client's writes are held at ${(held / MB).toFixed(2)} MB of ${total / MB} MB while the upstream reads nothing`);
  t.ok(growth < 16 * MB, `peak live memory growth ${(growth / MB).toFixed(1)} MB meanwhile`);
  t.equal((await infer(client, {})).res?.model_version, 'v1', 'another call on the same connection and upstream session is served meanwhile');
  stable.release();
  await writing;
  await ended;
  t.same(answers, [`${CHUNKS}:${total}`], `once the upstream reads, it gets every message, ${total / MB} MB`);
});

t.test('HTTP/2 clients that break the protocol are refused; other clients are served meanwhile', async (t) => {
  const { gw, client } = await setup(t, { candidate: undefined });
  const rawSend = (data: Buffer): Promise<Buffer> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const s = netConnect(gw.port, '127.0.0.1', () => s.write(data));
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('error', () => undefined);
      s.on('close', () => resolve(Buffer.concat(chunks)));
      setTimeout(() => s.destroy(), 5_000).unref();
    });
  const badPreface = await rawSend(Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'));
  t.match(badPreface.toString('latin1'), /^HTTP\/1\.1 400 /, 'a broken preface is refused with 400 and the connection closed');
  // The preface, then a DATA frame on stream 0, which RFC 9113 §6.1 makes a connection error.
  const frame = Buffer.from([0, 0, 1, 0x0, 0x0, 0, 0, 0, 0, 0x61]);
  const goaway = await rawSend(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame]));
  t.ok(hasFrame(goaway, 0x7), 'a protocol error gets a GOAWAY and the connection closed');
  t.equal((await infer(client, {})).res?.model_version, 'v1', 'another client is served');

  // A client that ignores SETTINGS_MAX_CONCURRENT_STREAMS: opens 150 streams before the server's
  // settings arrive, sends no message on them and leaves.
  const runtime = gw.gateway.routes.get('infer')!;
  const upstream = runtime.traffic.stable;
  const outcomesBefore = gw.outcomes.length;
  const flood = h2connect(`http://127.0.0.1:${gw.port}`, { peerMaxConcurrentStreams: 1_000 });
  flood.on('error', () => undefined);
  let refused = 0;
  await new Promise<void>((resolve) => {
    setTimeout(resolve, 10_000).unref();
    for (let i = 0; i < 150; i++) {
      const s = flood.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
      s.on('error', () => undefined);
      s.on('close', () => {
        if (s.rstCode === h2.NGHTTP2_REFUSED_STREAM && ++refused === 50) resolve();
      });
    }
  });
  t.equal(refused, 50, 'the 50 streams beyond maxConcurrentStreams (100) are refused with REFUSED_STREAM');
  // Not inside the stream callbacks: node's client aborts (std::bad_alloc) on a destroy from there.
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(upstream.active, 100, 'the 100 accepted streams are calls in flight on the upstream');
  flood.destroy();
  // Every accepted call ends once its client is gone: none stays in flight on the upstream.
  t.ok(await eventually(() => upstream.active === 0, 10_000), `no call left in flight on the upstream (${upstream.active})`);
  t.equal(runtime.inflight.stable.size, 0, 'none in the route\'s in-flight list');
  const flooded = gw.outcomes.slice(outcomesBefore);
  t.equal(flooded.length, 100, 'one outcome per accepted call');
  t.ok(flooded.every((o) => o.failure === 'aborted'), 'each recorded as aborted by its client');
  const counted = await gw.metrics.registry.metrics();
  t.match(counted, /^rollgate_requests_total\{route="infer",version="v1",outcome="ok"\} 1$/m, 'rollgate_requests_total counts only the one call answered: aborted calls never count');
  t.match(counted, /^rollgate_requests_total\{route="infer",version="v1",outcome="error"\} 0$/m, 'and no error');
  const during = await infer(client, {});
  t.equal(during.res?.model_version, 'v1', `another client is served during and after the flood${during.err ? `: ${during.err.message}` : ""}`);

  const big = h2connect(`http://127.0.0.1:${gw.port}`);
  big.on('error', () => undefined);
  const outcome = await new Promise<string>((resolve) => {
    const s = big.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', 'x-big': 'a'.repeat(20_000) });
    s.on('response', (h) => resolve(`status ${h[':status']} grpc-status ${h['grpc-status']}`));
    s.on('error', (e: Error) => resolve(`error ${e.message}`));
    s.on('close', () => resolve(`closed ${s.rstCode}`));
    s.end();
  });
  t.equal(outcome, 'status 200 grpc-status 8', 'a 20 KB header block is refused: RESOURCE_EXHAUSTED');
  big.destroy();
  t.equal((await infer(client, {})).res?.model_version, 'v1', 'another client is served after it');
});

t.test('a client whose connection ends without resetting its streams has its calls ended, as aborted', async (t) => {
  const { gw } = await setup(t, { candidate: undefined });
  const upstream = gw.gateway.routes.get('infer')!.traffic.stable;
  const socket = netConnect(gw.port, '127.0.0.1');
  const session = h2connect(`http://127.0.0.1:${gw.port}`, { createConnection: () => socket });
  session.on('error', () => undefined);
  for (let i = 0; i < 3; i++) {
    const s = session.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
    s.on('error', () => undefined);
  }
  t.ok(await eventually(() => upstream.active === 3, 10_000), 'three calls in flight, waiting for their messages');
  // The TCP connection ends (FIN): no RST_STREAM, no GOAWAY, as from a client that went away.
  socket.end();
  t.ok(await eventually(() => upstream.active === 0, 10_000), `none left in flight on the upstream (${upstream.active})`);
  t.same(gw.outcomes.map((o) => o.failure), ['aborted', 'aborted', 'aborted'], 'each recorded as aborted by its client');
  await new Promise((resolve) => setImmediate(resolve));
  session.destroy();
});

/** Whether a buffer of HTTP/2 frames (after the server's own) holds one of this type. */
function hasFrame(buf: Buffer, type: number): boolean {
  for (let at = 0; at + 9 <= buf.length; ) {
    const length = buf.readUIntBE(at, 3);
    if (buf[at + 3] === type) return true;
    at += 9 + length;
  }
  return false;
}
