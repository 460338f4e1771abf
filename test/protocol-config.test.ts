import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { runCli } from './helpers/cli.js';
import { config } from './helpers/servers.js';

const CERT = fileURLToPath(new URL('../../test/fixtures/tls/cert.pem', import.meta.url));

const ROUTE = `
  - name: infer
    match: { pathPrefix: /inference.GRPCInferenceService/ }`;

const cases = [
  { name: 'unknown protocol', body: `routes:${ROUTE}\n    stable: { version: v1, url: "http://127.0.0.1:9001", protocol: grpc }`, expect: 'routes[0].stable.protocol: must be one of http1, h2c, h2' },
  { name: 'h2 on an http URL', body: `routes:${ROUTE}\n    stable: { version: v1, url: "http://127.0.0.1:9001", protocol: h2 }`, expect: 'routes[0].stable.protocol: h2 needs an https URL' },
  { name: 'h2c on an https URL', body: `routes:${ROUTE}\n    stable: { version: v1, url: "http://127.0.0.1:9001" }\n    candidate: { version: v2, url: "https://127.0.0.1:9002", protocol: h2c }`, expect: 'routes[0].candidate.protocol: h2c needs an http URL' },
  { name: 'tls cert missing', tls: '{ cert: ./no-such.crt, key: ./gw.key }', expect: 'listen.tls.cert: cannot read ' },
  { name: 'tls key not PEM', tls: '{ cert: ./gw.crt, key: ./gw.crt }', expect: 'listen.tls.key: ' },
  { name: 'tls without key', tls: '{ cert: ./gw.crt }', expect: 'listen.tls.key: is required' },
  { name: 'tls cert not a certificate', tls: '{ cert: ./gw.crt, key: ./gw.key }', expect: 'listen.tls.cert: is not a usable certificate' },
  { name: 'tls key of another certificate', tls: `{ cert: ${CERT}, key: ./other.key }`, expect: 'listen.tls.key: does not match the certificate in listen.tls.cert' },
];

t.test('protocol and listen.tls errors exit 2 naming the key path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-protocol-config-'));
  writeFileSync(join(dir, 'gw.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(join(dir, 'gw.key'), '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
  writeFileSync(join(dir, 'other.key'), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  await Promise.all(cases.map(async (c, i) => {
    const file = join(dir, `c${i}.yaml`);
    const tls = 'tls' in c ? `, tls: ${c.tls}` : '';
    const body = 'body' in c ? c.body : `routes:${ROUTE}\n    stable: { version: v1, url: "http://127.0.0.1:9001", protocol: h2c }`;
    writeFileSync(file, `listen: { host: 127.0.0.1, port: 0${tls} }\nadmin: { host: 127.0.0.1, port: 0 }\n${body}\n`);
    const run = runCli(['serve', '--config', file], env);
    const { code } = await run.exited;
    t.equal(code, 2, `${c.name}: exit 2`);
    t.ok(run.stderr().includes(c.expect), `${c.name}: says "${c.expect}" (${run.stderr().trim().split('\n').slice(-1)[0]})`);
  }));
});

t.test('protocol defaults to http1 and is kept per version', async (t) => {
  const cfg = config([{ name: 'a', match: { pathPrefix: '/a' }, stable: { version: 'v1', url: 'http://h:1' }, candidate: { version: 'v2', url: 'https://h:2', protocol: 'h2' } }]);
  t.equal(cfg.routes[0]!.stable.protocol, 'http1');
  t.equal(cfg.routes[0]!.candidate!.protocol, 'h2');
  t.equal(cfg.listen.tls, null, 'no listen.tls: plain TCP');
});
