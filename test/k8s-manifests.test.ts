import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../src/config/load.js';

// deploy/k8s: each manifest parses, its rollgate config passes rollgate's own validation, and the
// gateway's probes are on the admin port's /healthz and /readyz.

const DIR = fileURLToPath(new URL('../../deploy/k8s/', import.meta.url));

for (const [file, replicas, store] of [
  ['sidecar.yaml', 1, 'file'],
  ['edge.yaml', 3, 'redis'],
] as const) {
  t.test(file, (t) => {
    const docs = parseAllDocuments(readFileSync(DIR + file, 'utf8')).map((d) => {
      t.same(d.errors, [], 'valid YAML');
      return d.toJS();
    });
    const config = docs.find((d) => d.kind === 'ConfigMap' && d.data['rollgate.yaml'] !== undefined);
    const parsed = parseConfigText(config.data['rollgate.yaml'], `${file}: rollgate.yaml`);
    t.equal(parsed.store.kind, store, `store ${store}`);
    t.equal(parsed.admin.host, '0.0.0.0', 'the admin port is reachable for the kubelet probes');
    const gateway = docs.find((d) => d.kind === 'Deployment' && d.spec.template.spec.containers.some((c: any) => c.name === 'rollgate'));
    t.equal(gateway.spec.replicas, replicas, `${replicas} replica(s)`);
    const c = gateway.spec.template.spec.containers.find((x: any) => x.name === 'rollgate');
    const admin = c.ports.find((p: any) => p.name === 'admin');
    t.equal(admin.containerPort, parsed.admin.port, 'the admin port is the config one');
    t.match(c.livenessProbe, { httpGet: { path: '/healthz', port: 'admin' } });
    t.match(c.readinessProbe, { httpGet: { path: '/readyz', port: 'admin' } });
    t.equal(c.ports.find((p: any) => p.name === 'http').containerPort, parsed.listen.port);
    t.match(c.env, [{ name: parsed.admin.tokenEnv, valueFrom: { secretKeyRef: {} } }], 'the admin token comes from a Secret');
    if (store === 'redis') t.ok(docs.some((d) => d.kind === 'Service' && d.metadata.name === 'rollgate-redis'), 'Redis is in the manifest');
    t.end();
  });
}
