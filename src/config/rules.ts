import { DEFAULT_ADMIN, DEFAULT_HEALTH_CHECK, DEFAULT_LISTEN } from './defaults.js';
import { formatDuration, parseDuration } from './duration.js';

export type Segment = string | number;
export interface Problem {
  path: Segment[];
  message: string;
}

export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
export const field = (v: unknown, key: string): unknown => (isObj(v) ? v[key] : undefined);

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/** Rules across keys, which the schema cannot state. Each one reads only well-typed values. */
export function crossChecks(raw: unknown): Problem[] {
  const out: Problem[] = [];
  const add = (path: Segment[], message: string) => out.push({ path, message });

  const listen = field(raw, 'listen');
  const admin = field(raw, 'admin');
  const [lh, lp] = [field(listen, 'host') ?? DEFAULT_LISTEN.host, field(listen, 'port') ?? DEFAULT_LISTEN.port];
  const [ah, ap] = [field(admin, 'host') ?? DEFAULT_ADMIN.host, field(admin, 'port') ?? DEFAULT_ADMIN.port];
  // A wildcard bind takes the port on every address, so it collides with any host.
  if (typeof lp === 'number' && lp !== 0 && lp === ap && typeof lh === 'string' && typeof ah === 'string' &&
      (lh === ah || WILDCARD_HOSTS.has(lh) || WILDCARD_HOSTS.has(ah))) {
    if (field(admin, 'port') !== undefined) add(['admin', 'port'], `collides with listen (${lh}:${lp}): the planes need different ports`);
    else add(['listen', 'port'], `collides with the admin plane (default ${ah}:${ap}): the planes need different ports`);
  }

  // Node refuses a head timeout longer than the whole request's.
  const headersTimeout = durationOf(field(listen, 'headersTimeout') ?? '10s');
  const requestTimeout = durationOf(field(listen, 'requestTimeout') ?? '5m');
  if (headersTimeout !== null && requestTimeout !== null && headersTimeout > requestTimeout) {
    if (field(listen, 'headersTimeout') !== undefined) add(['listen', 'headersTimeout'], `must not be longer than requestTimeout (${formatDuration(requestTimeout)})`);
    else add(['listen', 'requestTimeout'], `must not be shorter than headersTimeout (default ${formatDuration(headersTimeout)})`);
  }

  // TLS termination on the data plane is not built yet: refused rather than served in cleartext.


  const store = field(raw, 'store');
  const kind = field(store, 'kind');
  const used: Record<string, string[]> = { memory: [], file: ['path'], redis: ['url', 'prefix', 'maxReplicas'] };
  if (isObj(store) && typeof kind === 'string' && used[kind]) {
    if (kind === 'file' && store.path === undefined) add(['store', 'path'], 'is required when kind is file');
    if (kind === 'redis' && store.url === undefined) add(['store', 'url'], 'is required when kind is redis');
    for (const key of ['path', 'url', 'prefix', 'maxReplicas']) {
      if (store[key] !== undefined && !used[kind].includes(key)) add(['store', key], `is not used with kind ${kind}`);
    }
  }

  const routes = field(raw, 'routes');
  if (!Array.isArray(routes)) return out;
  const names = new Map<string, number>();
  const prefixes = new Map<string, number>();
  routes.forEach((r: unknown, i) => {
    const at = (...rest: Segment[]): Segment[] => ['routes', i, ...rest];
    const name = field(r, 'name');
    if (typeof name === 'string') {
      const first = names.get(name);
      if (first === undefined) names.set(name, i);
      else add(at('name'), `duplicates routes[${first}].name`);
    }
    const hooks = field(r, 'hooks');
    for (const event of ['beforeTraffic', 'afterRollback', 'afterPromote']) {
      const list = field(hooks, event);
      if (!Array.isArray(list)) continue;
      list.forEach((a: unknown, j) => {
        const k = field(a, 'kind');
        if (k === 'exec' && field(a, 'command') === undefined) add(at('hooks', event, j, 'command'), 'is required when kind is exec');
        if (k === 'http' && field(a, 'url') === undefined) add(at('hooks', event, j, 'url'), 'is required when kind is http');
        if (k === 'exec' && field(a, 'url') !== undefined) add(at('hooks', event, j, 'url'), 'is not used with kind exec');
        if (k === 'http' && field(a, 'command') !== undefined) add(at('hooks', event, j, 'command'), 'is not used with kind http');
      });
    }
    const prefix = field(field(r, 'match'), 'pathPrefix');
    if (typeof prefix === 'string') {
      const key = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
      const first = prefixes.get(key);
      if (first === undefined) prefixes.set(key, i);
      else add(at('match', 'pathPrefix'), `duplicates routes[${first}].match.pathPrefix`);
    }
    for (const role of ['stable', 'candidate']) {
      const v = field(r, role);
      const protocol = field(v, 'protocol');
      const url = field(v, 'url');
      if (typeof url !== 'string' || typeof protocol !== 'string') continue;
      if (protocol === 'h2' && !url.startsWith('https:')) add(at(role, 'protocol'), 'h2 needs an https URL (h2c is HTTP/2 in cleartext)');
      if (protocol === 'h2c' && !url.startsWith('http:')) add(at(role, 'protocol'), 'h2c needs an http URL (h2 is HTTP/2 over TLS)');
    }
    const stableVersion = field(field(r, 'stable'), 'version');
    if (typeof stableVersion === 'string' && field(field(r, 'candidate'), 'version') === stableVersion) {
      add(at('candidate', 'version'), `must differ from stable.version (${stableVersion})`);
    }
    const steps = field(r, 'steps');
    if (Array.isArray(steps)) {
      let previous: { index: number; weight: number } | undefined;
      steps.forEach((step: unknown, j) => {
        const weight = field(step, 'weight');
        if (typeof weight !== 'number') return;
        if (previous && weight < previous.weight) {
          add(at('steps', j, 'weight'), `must not be lower than steps[${previous.index}].weight (${previous.weight})`);
        }
        previous = { index: j, weight };
      });
    }
    const sticky = field(r, 'sticky');
    if (isObj(sticky) && (sticky.header === undefined) === (sticky.cookie === undefined)) {
      add(at('sticky'), 'must set exactly one of header or cookie');
    }
    const hc = field(r, 'healthCheck');
    if (isObj(hc)) {
      const interval = hc.interval === undefined ? DEFAULT_HEALTH_CHECK.intervalMs : durationOf(hc.interval);
      const timeout = hc.timeout === undefined ? DEFAULT_HEALTH_CHECK.timeoutMs : durationOf(hc.timeout);
      if (interval !== null && timeout !== null && interval > 0 && timeout > interval) {
        if (hc.timeout !== undefined) add(at('healthCheck', 'timeout'), `must not be longer than interval (${formatDuration(interval)})`);
        else add(at('healthCheck', 'interval'), `must not be shorter than timeout (default ${formatDuration(timeout)})`);
      }
    }
  });
  return out;
}

const durationOf = (v: unknown): number | null => (typeof v === 'string' ? parseDuration(v) : null);

