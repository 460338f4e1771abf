import type { IncomingMessage, ServerResponse } from 'node:http';
import { startUpstream, type TestUpstream } from './servers.js';

/**
 * An OpenAI-compatible chat completions server for tests: streamed (server-sent events, as the
 * `openai` client asks with `stream: true`) or whole. Each answer's behaviour comes from `plan`,
 * called per request with its index, so a test can make a share of answers bad.
 */
export interface LlmAnswer {
  /** Content pieces, one event each. */
  tokens: string[];
  /** Delay before the first content event (the role event goes at once), ms. */
  firstTokenMs: number;
  /** Delay between content events, ms. */
  gapMs: number;
  /** End the stream cleanly after this many content events, with no finish_reason and no [DONE]. */
  truncateAfter?: number;
  /** Send an error object inside the 200 stream instead of a finish. */
  errorInStream?: boolean;
}

export const DEFAULT_ANSWER: LlmAnswer = { tokens: ['Hel', 'lo', ' there', '.'], firstTokenMs: 5, gapMs: 2 };

function chunk(model: string, delta: object, finish: string | null): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stream(res: ServerResponse, model: string, a: LlmAnswer): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(chunk(model, { role: 'assistant', content: '' }, null));
  await sleep(a.firstTokenMs);
  for (let i = 0; i < a.tokens.length; i++) {
    if (a.truncateAfter !== undefined && i === a.truncateAfter) {
      res.end();
      return;
    }
    if (i > 0 && a.gapMs > 0) await sleep(a.gapMs);
    if (res.destroyed) return;
    res.write(chunk(model, { content: a.tokens[i] }, null));
  }
  if (a.truncateAfter !== undefined) {
    res.end();
    return;
  }
  if (a.errorInStream === true) {
    res.end(`data: ${JSON.stringify({ error: { message: 'model overloaded', type: 'server_error' } })}\n\n`);
    return;
  }
  res.write(chunk(model, {}, 'stop'));
  res.end('data: [DONE]\n\n');
}

async function whole(res: ServerResponse, model: string, a: LlmAnswer): Promise<void> {
  await sleep(a.firstTokenMs);
  const body = JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: a.tokens.join('') }, finish_reason: a.truncateAfter === undefined ? 'stop' : null }],
    usage: { prompt_tokens: 3, completion_tokens: a.tokens.length, total_tokens: 3 + a.tokens.length },
  });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
}

export function startLlm(model: string, plan: (n: number) => LlmAnswer = () => DEFAULT_ANSWER): Promise<TestUpstream & { served: () => number }> {
  let n = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = plan(n++);
      let streamed = false;
      try {
        streamed = (JSON.parse(Buffer.concat(chunks).toString()) as { stream?: boolean }).stream === true;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad json"}}');
        return;
      }
      void (streamed ? stream(res, model, answer) : whole(res, model, answer));
    });
  };
  return startUpstream(handler).then((u) => ({ ...u, served: () => n }));
}
