import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import { parseArgs } from 'node:util';

/** The baseline: a bare Fastify 5 + @fastify/http-proxy in front of one upstream. */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || !values.upstream) {
  console.error('usage: fastify-proxy.js --port N --upstream URL');
  process.exit(2);
}

const app = Fastify({ logger: false });
await app.register(proxy, { upstream: values.upstream });
await app.listen({ host: '127.0.0.1', port });
process.once('SIGTERM', () => process.exit(0));
