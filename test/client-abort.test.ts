import net from 'node:net';
import t from 'tap';
import { config, eventually, startGateway, startUpstream } from './helpers/servers.js';

t.test('a client that disconnects aborts its upstream request and leaves no socket open', async (t) => {
  let upstreamClosed = 0;
  let upstreamGotRequest: () => void = () => {};
  const arrived = new Promise<void>((r) => (upstreamGotRequest = r));
  const up = await startUpstream((req, res) => {
    // Holds the answer: the client will give up first.
    res.on('close', () => {
      if (!res.writableFinished) upstreamClosed++;
    });
    upstreamGotRequest();
  });
  const gw = await startGateway(config([{ name: 'llm', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });

  const client = net.connect(gw.port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  client.write('POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
  await arrived;
  t.equal(up.openSockets(), 1, 'the request reached the upstream on one connection');
  client.destroy();

  t.ok(await eventually(() => upstreamClosed === 1), 'the upstream saw its request closed');
  // undici opens a spare idle connection after an abort (nodejs/undici#5845); the pool closes
  // idle connections after its 4 s keep-alive, so nothing stays open for longer.
  t.ok(await eventually(() => up.openSockets() === 0, 8_000), 'no upstream connection is left open');
  t.ok(await eventually(async () => (await gw.openConnections()) === 0), 'the gateway holds no client socket');
  t.ok(await eventually(() => gw.outcomes.length === 1), 'one outcome was recorded');
  t.equal(gw.outcomes[0]?.failure, 'aborted', 'recorded as aborted by the client, not as a version failure');
});

t.test('a client that disconnects mid-upload aborts the upstream request too', async (t) => {
  let upstreamAborted = false;
  const up = await startUpstream((req) => {
    req.on('data', () => {});
    req.on('close', () => {
      if (!req.complete) upstreamAborted = true;
    });
  });
  const gw = await startGateway(config([{ name: 'r', match: { pathPrefix: '/' }, stable: { version: 'v1', url: up.url } }]));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  const client = net.connect(gw.port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  client.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
  client.write(Buffer.alloc(10_000, 1));
  t.ok(await eventually(() => up.seen.length === 1), 'the upload started streaming to the upstream');
  client.destroy();
  t.ok(await eventually(() => upstreamAborted), 'the upstream saw an incomplete request closed');
  t.ok(await eventually(() => up.openSockets() === 0, 8_000), 'no upstream socket left open');
  t.ok(await eventually(async () => (await gw.openConnections()) === 0), 'no client socket left open');
});
