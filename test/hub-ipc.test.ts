import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { Pool } from 'undici';
import { serveHub } from '../src/store/hub-ipc.js';
import { SharedHub } from '../src/store/shared-hub.js';
import { eventually, startFailingOnHeader, startLabelled } from './helpers/servers.js';

// Data planes in their own processes sharing route state through the hub in this one, over
// their IPC channels: what the workers of `listen.workers` are built on.
const WORKER = fileURLToPath(new URL('./helpers/hub-worker.js', import.meta.url));

interface State { phase: string; weight: number; weightBp: number; reason: string | null; id: string }

async function worker(t: Test, hub: SharedHub, stable: string, candidate: string) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child: ChildProcess = fork(WORKER, [stable, candidate], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // The records this process asks the hub for (its start reads each route's).
  let reads = 0;
  child.on('message', (m: { t?: string; op?: string }) => {
    if (m.t === 'rollgate-hub' && m.op === 'read') reads++;
  });
  serveHub(hub, child);
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { ready?: number }) => m.ready !== undefined && resolve(m.ready));
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 4 });
  t.teardown(async () => {
    await pool.close();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.disconnect();
      await exited;
    }
  });
  let last: State | null = null;
  child.on('message', (m: { state?: State }) => m.state !== undefined && (last = m.state));
  const state = async (): Promise<State> => {
    last = null;
    child.send({ cmd: 'state' });
    await eventually(() => last !== null);
    return last as unknown as State;
  };
  const send = async (headers: Record<string, string> = {}): Promise<string> => {
    const r = await pool.request({ path: '/m/predict', method: 'POST', body: '{}', headers });
    await r.body.dump();
    return String(r.headers['x-rollgate-version']);
  };
  return { child, state, send, weight: (w: number) => child.send({ cmd: 'weight', weight: w }), reads: () => reads };
}

t.test('processes sharing one hub over IPC: a weight, a trip and a late starter see one state', async (t) => {
  const stable = await startLabelled('v1');
  const candidate = await startFailingOnHeader();
  t.teardown(async () => {
    await stable.close();
    await candidate.close();
  });
  const hub = new SharedHub();
  const [a, b] = [await worker(t, hub, stable.url, candidate.url), await worker(t, hub, stable.url, candidate.url)];
  const readsAtStart = b.reads();

  a.weight(30);
  t.ok(await eventually(async () => (await b.state()).weightBp === 3_000, 5_000), 'a weight set in A is the weight B routes by');

  let sent = 0;
  while (sent < 300 && (await a.state()).phase !== 'rolled_back') {
    await a.send({ 'x-fail': '1' });
    sent++;
  }
  const aState = await a.state();
  t.equal(aState.phase, 'rolled_back', `A tripped on its own traffic after ${sent} requests`);
  t.ok(await eventually(async () => {
    const s = await b.state();
    return s.phase === 'rolled_back' && s.weightBp === 0;
  }, 5_000), 'B rolled back too');
  t.equal((await b.state()).reason, 'peer', 'with reason peer');
  t.equal(b.reads() - readsAtStart, 0, 'B took the weight and the trip from the news alone, without asking the hub for the record');
  t.same(new Set(await Promise.all(Array.from({ length: 20 }, () => b.send()))), new Set(['v1']), 'B serves stable only');

  a.child.kill('SIGKILL');
  await new Promise((r) => a.child.once('exit', r));
  const c = await worker(t, hub, stable.url, candidate.url);
  t.match(await c.state(), { phase: 'rolled_back', weightBp: 0 }, 'a process started after another was killed comes up with the shared state');
  t.same(new Set(await Promise.all(Array.from({ length: 20 }, () => c.send()))), new Set(['v1']), 'and never routes to the candidate');
});
