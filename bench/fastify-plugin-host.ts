import Fastify from 'fastify';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/index.js';
import { rollgate } from '../src/fastify.js';

/**
 * rollgate as a Fastify plugin: a bare Fastify 5 host app (logger off) with the plugin registered
 * and the same route as the standalone target (90/10 split, both versions on one upstream, each
 * with its own pool). What it costs over `rollgate serve` is Fastify's routing and request
 * lifecycle in front of the same data plane.
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || !values.upstream) {
  console.error('usage: fastify-plugin-host.js --port N --upstream URL');
  process.exit(2);
}

const config = loadConfig({
  log: { level: 'warn' },
  routes: [
    {
      name: 'bench',
      match: { pathPrefix: '/' },
      stable: { version: 'v1', url: values.upstream },
      candidate: { version: 'v2', url: values.upstream, weight: 10 },
    },
  ],
});
const app = Fastify({ logger: false });
await app.register(rollgate, { config });
await app.listen({ host: '127.0.0.1', port });
process.once('SIGTERM', () => process.exit(0));
