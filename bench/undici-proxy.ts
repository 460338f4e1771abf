import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

/**
 * The Node floor: a node:http server that streams each request through one undici Pool and
 * pipes the answer back, with no routing, headers work or records. What rollgate adds on top of
 * node:http and undici is the difference to this.
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || !values.upstream) {
  console.error('usage: undici-proxy.js --port N --upstream URL');
  process.exit(2);
}

const pool = new Pool(values.upstream, { connections: 128 });
const server = http.createServer((req, res) => {
  pool.request({ path: req.url ?? '/', method: req.method as 'POST', headers: { 'content-type': req.headers['content-type'] ?? '' }, body: req }).then(
    (r) => {
      res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type'] ?? '') });
      r.body.pipe(res);
    },
    () => {
      res.writeHead(502).end();
    },
  );
});
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
