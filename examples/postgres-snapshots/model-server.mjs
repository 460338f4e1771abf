// A stand-in model server that reads its features from PostgreSQL (the `features` table, through
// psql and the PG* environment) on every prediction. MODEL_LABEL names it; MODEL_FAIL=1 makes
// it answer 500, as a bad model version would. Usage: node model-server.mjs PORT
import { execFile } from 'node:child_process';
import http from 'node:http';

const label = process.env.MODEL_LABEL ?? 'model';
const failing = process.env.MODEL_FAIL === '1';
const port = Number(process.argv[2] ?? 0);

const readFeatures = () =>
  new Promise((resolve, reject) =>
    execFile('psql', ['-X', '-At', '-c', 'SELECT count(*) || \':\' || coalesce(md5(string_agg(id || \'=\' || value, \',\' ORDER BY id)), \'\') FROM features'], (err, out) =>
      err ? reject(err) : resolve(out.trim()),
    ),
  );

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', async () => {
    if (req.url === '/v2/health/ready') return res.writeHead(200).end('{"ready":true}');
    try {
      const features = await readFeatures();
      if (failing) return res.writeHead(500, { 'content-type': 'application/json' }).end(`{"error":"${label} failed"}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model: label, features }));
    } catch (err) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(err.message ?? err) }));
    }
  });
});
server.listen(port, '127.0.0.1', () => console.log(`${label} listening on http://127.0.0.1:${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
