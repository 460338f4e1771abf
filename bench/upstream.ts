import * as http from 'node:http';
import { parseArgs } from 'node:util';

/**
 * A stand-in model server: reads the whole request, answers ~240 bytes of JSON after --delay-ms.
 * With --hang it reads requests and never answers (a candidate that hangs); with --fail-header
 * NAME it answers 500 to requests that carry that header. A path with `/big` gets 1 MiB.
 */
const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'delay-ms': { type: 'string', default: '0' },
    hang: { type: 'boolean', default: false },
    'fail-header': { type: 'string' },
  },
});
const port = Number(values.port);
const delayMs = Number(values['delay-ms']);
if (!Number.isInteger(port) || port <= 0 || !(delayMs >= 0)) {
  console.error('usage: upstream.js --port N [--delay-ms MS]');
  process.exit(2);
}

const ANSWER = Buffer.from(
  JSON.stringify({
    model_name: 'sentiment',
    model_version: 'v1',
    id: '6f1c2a9e-4b7d-4e2a-9c3f-1d8e5b7a2c40',
    outputs: [
      { name: 'label', datatype: 'BYTES', shape: [1], data: ['positive'] },
      { name: 'score', datatype: 'FP32', shape: [1], data: [0.9731] },
    ],
  }),
);
const HEADERS = { 'content-type': 'application/json', 'content-length': String(ANSWER.length) };

// An OpenAI-compatible chat completion streamed as server-sent events: a role event, eight
// content events, the finish and [DONE], all written at once (the bench measures CPU, not pacing).
const event = (delta: object, finish: string | null): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const STREAM = Buffer.from(
  event({ role: 'assistant', content: '' }, null) +
    ['The', ' delivery', ' was', ' late', ',', ' but', ' kind', '.'].map((c) => event({ content: c }, null)).join('') +
    event({}, 'stop') +
    'data: [DONE]\n\n',
);
const STREAM_HEADERS = { 'content-type': 'text/event-stream', 'content-length': String(STREAM.length) };
const BIG = Buffer.alloc(1024 * 1024, 0x61);
const BIG_HEADERS = { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length) };

function answer(res: http.ServerResponse): void {
  if (res.req.url?.includes('/big') === true) {
    res.writeHead(200, BIG_HEADERS);
    res.end(BIG);
    return;
  }
  if (res.req.url?.includes('/chat/completions') === true) {
    res.writeHead(200, STREAM_HEADERS);
    res.end(STREAM);
    return;
  }
  res.writeHead(200, HEADERS);
  res.end(ANSWER);
}

const server = http.createServer((req, res) => {
  req.resume();
  req.once('end', () => {
    if (values.hang) return;
    const failOn = values['fail-header'];
    if (failOn !== undefined && req.headers[failOn] !== undefined) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":"failing as asked"}');
      return;
    }
    if (delayMs > 0) setTimeout(answer, delayMs, res);
    else answer(res);
  });
});
// Proxies' pools sit idle while other targets are measured; a short server keep-alive would
// race their reuse of a socket and turn into spurious 502s.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
