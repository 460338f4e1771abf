import t from 'tap';
import { OpenAiStream, judgeOpenAiAnswer } from '../src/checks/openai.js';
import { parsePointer, valueAt } from '../src/checks/pointer.js';
import { agrees, exampleOf, EXAMPLE_CHARS } from '../src/checks/compare.js';

// The parsers behind checks.llm and agreement, on the byte boundaries a network gives them.

const event = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const WHOLE = event({ role: 'assistant', content: '' }) + event({ content: 'Grüß' }) + event({ content: ' dich 👋' }) + event({}, 'stop') + 'data: [DONE]\n\n';

/** Feeds `text` to a stream in pieces of `size` bytes, one millisecond apart. */
function feed(text: string, size: number, crlf = false): { s: OpenAiStream; verdict: string } {
  const bytes = Buffer.from(crlf ? text.replace(/\n/g, '\r\n') : text);
  const s = new OpenAiStream();
  let now = 0;
  for (let i = 0; i < bytes.length; i += size) s.write(bytes.subarray(i, i + size), (now += 1));
  return { s, verdict: s.end(now + 1) };
}

t.test('a whole stream passes however it is cut, multi-byte characters and CRLF included', async (t) => {
  for (const size of [1, 2, 3, 7, 64, 4096]) {
    for (const crlf of [false, true]) {
      const { s, verdict } = feed(WHOLE, size, crlf);
      t.equal(verdict, 'pass', `pieces of ${size}${crlf ? ', CRLF' : ''}`);
      t.equal(s.tokenEvents, 2, 'the role event is no token');
    }
  }
});

t.test('first token and time per output token come from the content events', async (t) => {
  const s = new OpenAiStream();
  s.write(Buffer.from(event({ role: 'assistant' })), 10);
  s.write(Buffer.from(event({ content: 'a' })), 100);
  s.write(Buffer.from(event({ content: 'b' })), 130);
  s.write(Buffer.from(event({ tool_calls: [{ index: 0, function: { arguments: '{' } }] })), 160);
  s.write(Buffer.from(event({}, 'stop')), 170);
  t.equal(s.end(171), 'pass');
  t.equal(s.firstTokenAt, 100);
  t.equal(s.tpotMs, 30);
});

t.test('truncated, empty and stream_error', async (t) => {
  t.equal(feed(event({ role: 'assistant' }) + event({ content: 'He' }) + event({ content: 'llo' }), 5).verdict, 'truncated', 'no finish and no [DONE]');
  t.equal(feed(WHOLE.slice(0, WHOLE.length - 8), 16).verdict, 'pass', '[DONE] cut in half, after the finish event: the finish counts');
  t.equal(feed(event({ role: 'assistant' }) + event({ content: 'x' }) + 'data: [DO', 3).verdict, 'truncated', 'a last line cut short');
  t.equal(feed(event({ content: 'x' }) + 'data: {"choices":[{"delta":{"content":"y"},"fin', 3).verdict, 'truncated', 'a last event cut short');
  t.equal(feed(event({ content: 'x' }) + 'data: [DONE]', 3).verdict, 'pass', 'a whole last line without its line end');
  t.equal(feed(event({ role: 'assistant', content: '' }) + event({}, 'stop') + 'data: [DONE]\n\n', 9).verdict, 'empty');
  t.equal(feed(event({ content: 'x' }) + `data: ${JSON.stringify({ error: { message: 'overloaded' } })}\n\n`, 11).verdict, 'stream_error');
  t.equal(feed(event({ content: 'x' }) + 'event: error\ndata: {"message":"boom"}\n\n', 11).verdict, 'stream_error');
  t.equal(feed(event({ content: 'x' }) + 'data: {not json\n\n' + 'data: [DONE]\n\n', 11).verdict, 'stream_error');
  const comments = ': keep-alive\n\n' + WHOLE;
  t.equal(feed(comments, 5).verdict, 'pass', 'comment lines are skipped');
});

t.test('whole answers', async (t) => {
  const answer = (choice: object) => ({ id: 'x', choices: [{ index: 0, ...choice }] });
  t.same(judgeOpenAiAnswer(answer({ message: { content: 'hi' }, finish_reason: 'stop' })), { verdict: 'pass', detail: null });
  t.equal(judgeOpenAiAnswer(answer({ message: { content: null, tool_calls: [{ id: 't' }] }, finish_reason: 'tool_calls' })).verdict, 'pass');
  t.equal(judgeOpenAiAnswer(answer({ text: 'completion', finish_reason: 'length' })).verdict, 'pass');
  t.equal(judgeOpenAiAnswer(answer({ message: { content: '' }, finish_reason: 'stop' })).verdict, 'empty');
  t.equal(judgeOpenAiAnswer(answer({ message: { content: 'half' }, finish_reason: null })).verdict, 'truncated');
  t.same(judgeOpenAiAnswer({ error: { message: 'rate limited' } }), { verdict: 'stream_error', detail: 'rate limited' });
  t.equal(judgeOpenAiAnswer({ choices: [] }).verdict, 'empty');
});

t.test('JSON pointers and comparison', async (t) => {
  t.same(parsePointer(''), []);
  t.same(parsePointer('/a~1b/~0c/0'), ['a/b', '~c', '0']);
  t.equal(parsePointer('a'), null);
  t.equal(parsePointer('/a~2'), null);
  const doc = { predictions: [{ label: 'cat', scores: [0.5, 0.25] }], 'a/b': true };
  t.equal(valueAt(doc, parsePointer('/predictions/0/label')!), 'cat');
  t.equal(valueAt(doc, parsePointer('/a~1b')!), true);
  t.equal(valueAt(doc, parsePointer('/predictions/01')!), undefined, 'no leading zeros in array indexes');
  t.equal(valueAt(doc, parsePointer('/predictions/0/missing')!), undefined);
  t.equal(valueAt(doc, parsePointer('/constructor')!), undefined, 'own keys only');
  t.ok(agrees([0.5, 0.25], [0.505, 0.25], 0.01), 'numbers within the tolerance, element-wise');
  t.notOk(agrees([0.5, 0.25], [0.5, 0.25, 1], 0.01), 'arrays of another length');
  t.notOk(agrees(0.5, 0.52, 0.01));
  t.ok(agrees({ a: 'x', b: [true] }, { b: [true], a: 'x' }, 0));
  t.notOk(agrees('cat', 'Cat', 0), 'strings exactly');
  t.notOk(agrees(undefined, undefined, 0), 'a missing value agrees with nothing');
  t.equal(exampleOf('x'.repeat(500)).length, EXAMPLE_CHARS, 'examples are cut');
});
