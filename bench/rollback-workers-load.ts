import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

/**
 * The far side of the workers scenario of bench:rollback, in a process of its own: the stable
 * and candidate model servers (real HTTP servers on loopback, answering after `latencyMs`) and
 * steady load through each data-plane process (an undici Pool per process, a fixed number of
 * requests in flight). The candidate answers 500 to requests marked `x-fail`, and only the load
 * through the deciding process marks them: that process's judge decides, and the others can
 * only stop sending to the candidate because the decision reached them through the hub.
 */

export type LoadCommand =
  | { op: 'start'; latencyMs: number }
  | { op: 'load'; urls: string[]; concurrency: number }
  | { op: 'fail'; index: number | null }
  | { op: 'stop' };

export interface LoadReplies {
  start: { stable: string; candidate: string };
  load: Record<string, never>;
  fail: Record<string, never>;
  stop: { requests: number[] };
}

const BODY = JSON.stringify({ instances: [{ text: 'The delivery was late, but support sorted it out quickly.' }] });

function model(label: string, latencyMs: number, failMarked: boolean): Promise<Server> {
  const answer = JSON.stringify({ predictions: [{ label: 'positive', score: 0.93 }], model: label });
  const server = createServer((req, res) => {
    const fail = failMarked && req.headers['x-fail'] !== undefined;
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json' }).end(fail ? '{"error":"model failed"}' : answer);
      }, latencyMs);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function runLoad(): void {
  const servers: Server[] = [];
  let failing: number | null = null;
  let running = false;
  const pools: Pool[] = [];
  const loops: Promise<void>[] = [];
  const counts: number[] = [];
  const plain = { 'content-type': 'application/json' };
  const marked = { 'content-type': 'application/json', 'x-fail': '1' };

  const loop = async (i: number, pool: Pool): Promise<void> => {
    while (running) {
      try {
        const res = await pool.request({ path: '/m/predict', method: 'POST', headers: failing === i ? marked : plain, body: BODY });
        await res.body.dump();
        counts[i]!++;
      } catch {
        // A data plane that is gone must not turn this loop into a busy spin.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };

  const handle = async (cmd: LoadCommand): Promise<unknown> => {
    switch (cmd.op) {
      case 'start': {
        const [stable, candidate] = [await model('v1', cmd.latencyMs, false), await model('v2', cmd.latencyMs, true)];
        servers.push(stable, candidate);
        const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
        return { stable: url(stable), candidate: url(candidate) };
      }
      case 'load':
        running = true;
        cmd.urls.forEach((u, i) => {
          const pool = new Pool(u, { connections: cmd.concurrency, pipelining: 1 });
          pools.push(pool);
          counts.push(0);
          for (let k = 0; k < cmd.concurrency; k++) loops.push(loop(i, pool));
        });
        return {};
      case 'fail':
        failing = cmd.index;
        return {};
      case 'stop':
        running = false;
        await Promise.all(loops);
        await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
        await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
        return { requests: counts };
    }
  };

  process.on('message', (m: { id: number; cmd: LoadCommand }) => {
    handle(m.cmd).then(
      (body) => process.send?.({ id: m.id, ok: true, body }),
      (err: unknown) => process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  // The bench is gone (finished or killed): nothing here outlives it.
  process.once('disconnect', () => process.exit(0));
}

if (process.argv[2] === 'load' && process.send !== undefined) runLoad();
