import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import type { GatewayConfig } from '../src/config/types.js';
import { runCli, waitForPort, writeConfig } from './helpers/cli.js';
import { config, eventually, freePort, rawExchange, seededRng, startGateway, startUpstream, type TestUpstream } from './helpers/servers.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
const CERT = readFileSync(fixture('tls/cert.pem'));
const KEY = readFileSync(fixture('tls/key.pem'));
const definition = loader.loadSync(fixture('inference.proto'), { keepCase: true, longs: String, defaults: true });
const Service = (grpc.loadPackageDefinition(definition) as any).inference.GRPCInferenceService as grpc.ServiceClientConstructor;

interface InferResponse { model_name: string; model_version: string; id: string }

/** A grpc-js model server whose ModelInfer answers its label: in cleartext, or over TLS with the fixture certificate. */
async function startModel(label: string, secure = false): Promise<{ port: number; calls: () => number; close: () => Promise<void> }> {
  let calls = 0;
  const server = new grpc.Server();
  server.addService(Service.service, {
    ModelInfer(call: grpc.ServerUnaryCall<{ model_name: string; id: string }, InferResponse>, cb: grpc.sendUnaryData<InferResponse>) {
      calls++;
      cb(null, { model_name: call.request.model_name, model_version: label, id: String(call.metadata.get('x-forwarded-proto')[0] ?? '') });
    },
  });
  const creds = secure ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: CERT, private_key: KEY }], false) : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return { port, calls: () => calls, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

function infer(client: any): Promise<{ res?: InferResponse; err?: grpc.ServiceError }> {
  return new Promise((resolve) => client.ModelInfer({ model_name: 'm', id: '1' }, { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null, res: InferResponse) => resolve(err ? { err } : { res })));
}

/** A client to the gateway's TLS port that trusts the fixture certificate. */
const tlsClient = (port: number): any => new Service(`127.0.0.1:${port}`, grpc.credentials.createSsl(CERT));

function withTls(cfg: GatewayConfig): GatewayConfig {
  return { ...cfg, listen: { ...cfg.listen, headersTimeoutMs: 1_000, tls: { certPath: 'cert.pem', keyPath: 'key.pem', cert: CERT.toString(), key: KEY.toString() } } };
}

/** One HTTPS request over HTTP/1.1 (no ALPN offered but http/1.1) trusting the fixture certificate. */
function httpsGet(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, ca: CERT, ALPNProtocols: ['http/1.1'], agent: false };
    const req = httpsRequest(options as unknown as RequestOptions, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, alpn: (res.socket as unknown as { alpnProtocol: string | false }).alpnProtocol }));
    });
    req.on('error', reject).end();
  });
}

async function setup(t: { teardown(fn: () => unknown): void }): Promise<{ port: number; upstream: TestUpstream; seenProto: string[]; stable: Awaited<ReturnType<typeof startModel>>; candidate: Awaited<ReturnType<typeof startModel>> }> {
  const seenProto: string[] = [];
  const upstream = await startUpstream((req, res) => {
    seenProto.push(String(req.headers['x-forwarded-proto']));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"version":"v1"}');
  });
  const stable = await startModel('v1');
  const candidate = await startModel('v2');
  const cfg = config([
    { name: 'rest', match: { pathPrefix: '/v1/' }, stable: { version: 'v1', url: upstream.url } },
    {
      name: 'infer',
      match: { pathPrefix: '/inference.GRPCInferenceService/' },
      stable: { version: 'v1', url: `http://127.0.0.1:${stable.port}`, protocol: 'h2c' },
      candidate: { version: 'v2', url: `http://127.0.0.1:${candidate.port}`, protocol: 'h2c', weight: 20 },
    },
  ]);
  const gw = await startGateway(withTls(cfg), { rng: seededRng(11) });
  t.teardown(async () => {
    await gw.close();
    await Promise.all([upstream.close(), stable.close(), candidate.close()]);
  });
  return { port: gw.port, upstream, seenProto, stable, candidate };
}

t.test('listen.tls: HTTP/1.1 and gRPC (h2 by ALPN) on one TLS port', async (t) => {
  const { port, seenProto, stable, candidate } = await setup(t);

  const h1 = await httpsGet(port, '/v1/models/m:predict');
  t.equal(h1.status, 200, 'an HTTPS request over HTTP/1.1 is served');
  t.equal(h1.alpn, 'http/1.1', 'ALPN chose http/1.1 for a client that offered only it');
  t.equal(h1.headers['x-rollgate-version'], 'v1');
  t.same(seenProto, ['https'], 'the upstream is told the client spoke https (x-forwarded-proto)');

  const client = tlsClient(port);
  t.teardown(() => client.close());
  const versions: Record<string, number> = {};
  for (let batch = 0; batch < 10; batch++) {
    const answers = await Promise.all(Array.from({ length: 50 }, () => infer(client)));
    for (const a of answers) {
      if (a.res === undefined) return t.fail(`a gRPC call over TLS failed: ${a.err?.message}`);
      versions[a.res.model_version] = (versions[a.res.model_version] ?? 0) + 1;
      if (a.res.id !== 'https') return t.fail(`the model server saw x-forwarded-proto ${a.res.id}`);
    }
  }
  const share = (100 * (versions.v2 ?? 0)) / 500;
  t.ok(share >= 14 && share <= 26, `500 calls over one TLS channel split per call: ${share.toFixed(1)}% to the candidate at weight 20`);
  t.equal(stable.calls() + candidate.calls(), 500, 'every call reached a model server');
});

t.test('listen.tls: plain HTTP, a broken handshake and a silent client are refused; others are served', async (t) => {
  const { port } = await setup(t);

  const plain = await rawExchange(port, 'GET /v1/models/m HTTP/1.1\r\nhost: x\r\n\r\n');
  t.match(plain, /^HTTP\/1\.1 400 /, 'plain HTTP to the TLS port gets a 400 in cleartext');
  t.match(plain, /"code":"ROLLGATE_MALFORMED_REQUEST","message":"this port speaks TLS \(listen.tls is set\): send the request over https"/, 'that says why');

  const h2c = await rawExchange(port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  t.equal(h2c, '', 'h2c prior knowledge on the TLS port is closed without an answer');

  const garbage = await rawExchange(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  t.ok(garbage === '' || garbage.charCodeAt(0) === 0x15, `a broken TLS handshake gets at most a TLS alert (${JSON.stringify(garbage.slice(0, 8))}) and is closed`);

  // A client that starts a handshake and never finishes it is closed at listen.headersTimeout (1 s here).
  const closed = await new Promise<boolean>((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => s.write(Buffer.from([0x16, 0x03, 0x01])));
    s.on('error', () => undefined).on('close', () => resolve(true));
    setTimeout(() => resolve(false), 15_000).unref();
  });
  t.ok(closed, 'a handshake that never finishes is closed');

  // A client that does not trust the certificate fails its own handshake; the gateway goes on.
  const untrusted = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost' });
    s.on('secureConnect', () => resolve('connected')).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  t.equal(untrusted, 'DEPTH_ZERO_SELF_SIGNED_CERT', 'a client without the CA refuses the certificate');

  t.equal((await httpsGet(port, '/v1/models/m')).status, 200, 'an HTTPS client is served after all of that');
  const client = tlsClient(port);
  t.teardown(() => client.close());
  t.ok((await infer(client)).res, 'and a gRPC client too');
});

t.test('listen.tls: an HTTP/2 client is served per stream on one TLS connection; ALPN h2 is chosen when offered', async (t) => {
  const { port, seenProto } = await setup(t);
  const session = h2connect(`https://localhost:${port}`, { ca: CERT });
  t.teardown(() => session.close());
  await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
  t.equal(session.alpnProtocol, 'h2', 'ALPN chose h2');
  const get = (): Promise<{ status: number; version: string; body: string }> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':path': '/v1/models/m:predict' });
      let body = '';
      let head = { status: 0, version: '' };
      s.on('response', (h) => (head = { status: Number(h[':status']), version: String(h['x-rollgate-version']) }));
      s.setEncoding('utf8').on('data', (c: string) => (body += c));
      s.on('end', () => resolve({ ...head, body })).on('error', reject);
    });
  const answers = await Promise.all(Array.from({ length: 10 }, get));
  t.same(answers.map((a) => `${a.status} ${a.version} ${a.body}`), Array(10).fill('200 v1 {"version":"v1"}'), 'ten requests over one TLS connection reach the http1 version');
  t.same(seenProto, Array(10).fill('https'), 'and the upstream is told x-forwarded-proto https');
});

t.test('listen.tls: a WebSocket over TLS (wss) is routed and echoes', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws, req) => ws.on('message', (m: Buffer) => ws.send(`${String(req.headers['x-forwarded-proto'])}:${m.toString()}`)));
  const wsPort = (wss.address() as { port: number }).port;
  const cfg = config([{ name: 'live', match: { pathPrefix: '/live' }, stable: { version: 'v1', url: `http://127.0.0.1:${wsPort}` } }]);
  const gw = await startGateway(withTls(cfg));
  t.teardown(async () => {
    await gw.close();
    await new Promise((resolve) => wss.close(resolve));
  });
  const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/live`, { ca: CERT });
  const version = await new Promise<string>((resolve, reject) => ws.once('upgrade', (res) => resolve(String(res.headers['x-rollgate-version']))).once('error', reject));
  t.equal(version, 'v1', 'the handshake over TLS is routed');
  const echo = await new Promise<string>((resolve) => {
    ws.once('message', (m: Buffer) => resolve(m.toString()));
    ws.send('hello');
  });
  t.equal(echo, 'https:hello', 'messages echo, and the upstream was told x-forwarded-proto https');
  ws.close();
});

t.test('rollgate serve: listen.tls from files, and a version with protocol h2 reached over TLS', async (t) => {
  const secure = await startModel('v2-tls', true);
  const stable = await startModel('v1');
  t.teardown(async () => Promise.all([secure.close(), stable.close()]));
  const port = await freePort();
  const yaml = `listen: { host: 127.0.0.1, port: ${port}, tls: { cert: ${fixture('tls/cert.pem')}, key: ${fixture('tls/key.pem')} } }
admin: { host: 127.0.0.1, port: ${await freePort()} }
routes:
  - name: infer
    match: { pathPrefix: /inference.GRPCInferenceService/ }
    stable: { version: v1, url: "http://127.0.0.1:${stable.port}", protocol: h2c }
    candidate: { version: v2, url: "https://127.0.0.1:${secure.port}", protocol: h2, weight: 100 }
`;
  // The model server's certificate is trusted the way Node trusts any private CA.
  const run = runCli(['serve', '--config', writeConfig(yaml)], { NODE_EXTRA_CA_CERTS: fixture('tls/cert.pem') });
  t.teardown(() => run.child.kill('SIGKILL'));
  await waitForPort(port);
  t.ok(await eventually(() => run.stdout().includes('data plane listening'), 10_000), 'it starts with listen.tls');
  const client = tlsClient(port);
  t.teardown(() => client.close());
  const answers = await Promise.all(Array.from({ length: 20 }, () => infer(client)));
  t.same(answers.map((a) => a.res?.model_version ?? a.err?.message), Array(20).fill('v2-tls'), 'calls over TLS reach the h2 version over TLS');
  t.equal(secure.calls(), 20);
  run.child.kill('SIGTERM');
  t.equal((await run.exited).code, 0, 'and it stops cleanly');
});
