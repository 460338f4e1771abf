import { Pool } from 'undici';
import { startAdmin } from '../../src/admin/server.js';
import { config, startGateway, startLabelled, type TestGateway, type TestUpstream } from './servers.js';

export interface AdminStack {
  gw: TestGateway;
  /** The admin plane's base URL. */
  base: string;
  token: string;
  third: TestUpstream;
  /** Sends `n` GETs to the data plane; returns the version labels that answered, sorted. */
  served(path: string, n: number): Promise<string[]>;
}

/**
 * Real upstreams v1, v2 (and a spare v3), a gateway with three routes (sentiment and chat with
 * a v2 candidate at 10%, plain with none) and its admin plane with `token`.
 */
export async function startAdminStack(t: { teardown(fn: () => unknown): void }, token: string): Promise<AdminStack> {
  const stable = await startLabelled('v1');
  const candidate = await startLabelled('v2');
  const third = await startLabelled('v3');
  const route = (name: string, prefix: string, withCandidate = true) => ({
    name,
    match: { pathPrefix: prefix },
    stable: { version: 'v1', url: stable.url },
    ...(withCandidate ? { candidate: { version: 'v2', url: candidate.url, weight: 10 } } : {}),
  });
  const cfg = config([route('sentiment', '/v1/models/sentiment'), route('chat', '/v1/chat'), route('plain', '/plain', false)]);
  const gw = await startGateway(cfg);
  const admin = await startAdmin({ config: cfg, rollouts: gw.rollouts, token, ready: () => true, metrics: gw.metrics });
  t.teardown(async () => {
    await admin.app.close();
    await gw.close();
    await stable.close();
    await candidate.close();
    await third.close();
  });
  const served = async (path: string, n: number): Promise<string[]> => {
    const pool = new Pool(gw.url, { connections: 4 });
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await pool.request({ path, method: 'GET' });
      await r.body.dump();
      seen.add(String(r.headers['x-rollgate-version']));
    }
    await pool.close();
    return [...seen].sort();
  };
  return { gw, base: `http://127.0.0.1:${admin.address.port}`, token, third, served };
}
