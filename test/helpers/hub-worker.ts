// A data-plane process for test/hub-ipc.test.ts: a gateway whose route state is shared through
// the hub in its parent, over its IPC channel. argv: stable URL, candidate URL.
import { createRollgate } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { FleetEvidence } from '../../src/store/fleet-evidence.js';
import { hubClient, type IpcChannel } from '../../src/store/hub-ipc.js';
import { ReplicaSync } from '../../src/store/replica-sync.js';

const [stable, candidate] = process.argv.slice(2);
const cfg = parseConfig({
  listen: { host: '127.0.0.1', port: 0 },
  admin: { host: '127.0.0.1', port: 0 },
  log: { level: 'silent' },
  routes: [{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: stable }, candidate: { version: 'v2', url: candidate, weight: 50 }, rollback: { latency: { minDelta: '10s' } } }],
});
const { gateway, rollouts } = createRollgate(cfg, { alphaScale: 1 / 16 });
const log = { info: () => undefined, warn: () => undefined };
const shared = hubClient(process as unknown as IpcChannel);
const sync = new ReplicaSync(rollouts, shared, log);
await sync.start();
const evidence = new FleetEvidence(rollouts, shared, sync.id, 0.5, { log });
await evidence.start(50);
const { port } = await gateway.listen();
const controller = rollouts.route('m')!;
process.on('message', (m: { cmd?: string; weight?: number }) => {
  if (m.cmd === 'weight') controller.setWeight(m.weight ?? 0, 'manual');
  if (m.cmd === 'state') {
    const traffic = gateway.routes.get('m')!.traffic;
    process.send?.({ state: { phase: controller.phase, weight: controller.state().weight, weightBp: traffic.weightBp, reason: controller.state().lastDecision?.reason ?? null, id: sync.id } });
  }
});
process.send?.({ ready: port });
process.on('disconnect', () => {
  evidence.close();
  void sync.close().then(() => gateway.close(0)).then(() => process.exit(0));
});
