import { StringDecoder } from 'node:string_decoder';

/**
 * OpenAI-compatible chat and completions answers (`checks.llm: {format: openai}`), streamed as
 * server-sent events or whole. What a check concludes:
 * - `pass`: finished (`data: [DONE]` or a `finish_reason`) with content or a tool call;
 * - `truncated`: the stream ended without either, even when the HTTP body ended cleanly;
 * - `empty`: finished with no content and no tool call;
 * - `stream_error`: an error object inside a 200 answer.
 */
export type LlmVerdict = 'pass' | 'truncated' | 'empty' | 'stream_error';

interface Choice {
  delta?: { content?: unknown; tool_calls?: unknown; refusal?: unknown };
  message?: { content?: unknown; tool_calls?: unknown; refusal?: unknown };
  text?: unknown;
  finish_reason?: unknown;
}

const nonEmpty = (v: unknown): boolean => (typeof v === 'string' ? v.length > 0 : Array.isArray(v) && v.length > 0);

/** Whether a choice (a streamed delta, a message, or a completions choice) carries content or a tool call. */
function hasContent(c: Choice): boolean {
  const part = c.delta ?? c.message;
  if (part !== undefined && part !== null && (nonEmpty(part.content) || nonEmpty(part.tool_calls) || nonEmpty(part.refusal))) return true;
  return nonEmpty(c.text);
}

function choicesOf(doc: unknown): Choice[] | null {
  const choices = (doc as { choices?: unknown } | null)?.choices;
  return Array.isArray(choices) ? (choices as Choice[]) : null;
}

function errorMessage(doc: unknown): string | null {
  if (typeof doc !== 'object' || doc === null || !('error' in doc)) return null;
  const e = doc.error;
  if (e === null || e === undefined) return null;
  const m = typeof e === 'object' ? (e as { message?: unknown }).message : e;
  return typeof m === 'string' ? m.slice(0, 200) : 'error object in the answer';
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A whole (not streamed) answer, parsed. */
export function judgeOpenAiAnswer(doc: unknown): { verdict: LlmVerdict; detail: string | null } {
  const err = errorMessage(doc);
  if (err !== null) return { verdict: 'stream_error', detail: err };
  const choices = choicesOf(doc);
  if (choices === null || choices.length === 0) return { verdict: 'empty', detail: 'no choices' };
  let content = false;
  let finished = false;
  for (const c of choices) {
    if (hasContent(c)) content = true;
    if (c.finish_reason !== null && c.finish_reason !== undefined) finished = true;
  }
  if (!finished) return { verdict: 'truncated', detail: 'no finish_reason' };
  return content ? { verdict: 'pass', detail: null } : { verdict: 'empty', detail: 'finished with no content and no tool call' };
}

/**
 * An answer streamed as server-sent events, read as it passes: events are parsed one at a time
 * (nothing of the stream is kept but a partial line), and the times of the content events give
 * time to first token and time per output token.
 */
export class OpenAiStream {
  /** Time of the first content or tool-call event (performance.now() scale); NaN before it. */
  firstTokenAt = Number.NaN;
  lastTokenAt = Number.NaN;
  /** Events with content or a tool call. */
  tokenEvents = 0;
  done = false;
  finished = false;
  error: string | null = null;
  readonly #decoder = new StringDecoder('utf8');
  #partial = '';
  #data = '';
  #hasData = false;

  /** Takes the next piece of the body, received at `now`. */
  write(chunk: Buffer, now: number): void {
    const text = this.#partial + this.#decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.#line(text.slice(start, end), now);
      start = nl + 1;
    }
    this.#partial = start === 0 ? text : text.slice(start);
    // A line without its end cannot grow without bound: 1 MiB is far above any event.
    if (this.#partial.length > 1_048_576) {
      this.#partial = '';
      this.error ??= 'an event line over 1 MiB';
    }
  }

  /**
   * The body ended: the verdict. A last event without its blank line still counts; a last line
   * without its line end counts only when it is whole (`[DONE]` or JSON): else it was cut.
   */
  end(now: number): LlmVerdict {
    const last = this.#partial + this.#decoder.end();
    this.#partial = '';
    if (last !== '') {
      this.#dispatch(now);
      const value = last.startsWith('data:') ? last.slice(last.charCodeAt(5) === 32 ? 6 : 5) : null;
      if (value !== null && (value === '[DONE]' || isJson(value))) this.#line(last, now);
    }
    this.#dispatch(now);
    if (this.error !== null) return 'stream_error';
    if (!this.done && !this.finished) return 'truncated';
    return this.tokenEvents > 0 ? 'pass' : 'empty';
  }

  /** Mean gap between content events (ms), NaN with fewer than two. */
  get tpotMs(): number {
    return this.tokenEvents < 2 ? Number.NaN : (this.lastTokenAt - this.firstTokenAt) / (this.tokenEvents - 1);
  }

  #line(line: string, now: number): void {
    if (line === '') {
      this.#dispatch(now);
      return;
    }
    if (line.startsWith('data:')) {
      const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      this.#data = this.#hasData ? `${this.#data}\n${value}` : value;
      this.#hasData = true;
    } else if (line === 'event: error' || line === 'event:error') this.error ??= 'an error event in the stream';
  }

  #dispatch(now: number): void {
    if (!this.#hasData) return;
    const data = this.#data;
    this.#data = '';
    this.#hasData = false;
    if (data === '[DONE]') {
      this.done = true;
      return;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(data);
    } catch {
      this.error ??= 'an event that is not JSON';
      return;
    }
    const err = errorMessage(doc);
    if (err !== null) {
      this.error ??= err;
      return;
    }
    const choices = choicesOf(doc);
    if (choices === null) return;
    let content = false;
    for (const c of choices) {
      if (hasContent(c)) content = true;
      if (c.finish_reason !== null && c.finish_reason !== undefined) this.finished = true;
    }
    if (!content) return;
    if (this.tokenEvents === 0) this.firstTokenAt = now;
    this.lastTokenAt = now;
    this.tokenEvents++;
  }
}
