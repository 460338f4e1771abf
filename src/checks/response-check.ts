import type { CheckOutcome, CheckReport } from './report.js';
import { describeSchemaError } from './json-schema.js';
import { judgeOpenAiAnswer, OpenAiStream, type LlmVerdict } from './openai.js';
import type { RouteChecks } from './route-checks.js';

/** The failure a check found (one of the kinds of SPEC §9), or null. */
export type CheckFailure = 'invalid' | 'truncated' | 'empty' | 'stream_error';

const CONTENT_TYPE = 'content-type';
const CONTENT_ENCODING = 'content-encoding';

/** The content type of an answer from undici's raw headers, lower case; '' when it has none. */
function contentTypeOf(raw: Buffer[]): string {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as Buffer;
    if (name.length === 12 && name.toString('latin1').toLowerCase() === CONTENT_TYPE) return (raw[i + 1] as Buffer).toString('latin1').toLowerCase();
  }
  return '';
}

/** Whether the answer's body is content-coded (gzip, br, ...): the checks cannot read it as it passes. */
function isEncoded(raw: Buffer[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as Buffer;
    if (name.length === 16 && name.toString('latin1').toLowerCase() === CONTENT_ENCODING) {
      const value = (raw[i + 1] as Buffer).toString('latin1').trim().toLowerCase();
      if (value !== '' && value !== 'identity') return true;
    }
  }
  return false;
}

/**
 * The checks of one answer, read as it passes to the client: a copy of the body up to
 * `maxBytes` (for the JSON check, a whole LLM answer and the agreement), or the events of an
 * LLM stream one at a time. Made only on routes with checks or an agreement; `end()` gives the
 * failure the answer is judged by. Its fields are the report the judge and the metrics read.
 */
export class ResponseCheck implements CheckReport {
  json: CheckOutcome | null = null;
  llm: CheckOutcome | null = null;
  ttftMs = Number.NaN;
  tpotMs = Number.NaN;
  detail: string | null = null;
  /** The parsed answer (when it was kept and is JSON), for the agreement. */
  doc: unknown = undefined;
  readonly #checks: RouteChecks;
  readonly #startedAt: number;
  #chunks: Buffer[] | null = null;
  #bytes = 0;
  /** Over maxBytes, or compressed: the answer is not checked. */
  #unchecked = false;
  #stream: OpenAiStream | null = null;
  #isJson = false;

  constructor(checks: RouteChecks, startedAt: number) {
    this.#checks = checks;
    this.#startedAt = startedAt;
  }

  /**
   * The answer's head: what is checked of it. Only 2xx answers with a body are: not 204, not one
   * to HEAD. A compressed answer passes to the client untouched and is not decompressed to be
   * checked: it counts as `unchecked`.
   */
  begin(status: number, rawHeaders: Buffer[], method: string | undefined): void {
    if (status < 200 || status >= 300 || status === 204 || method === 'HEAD') return;
    const type = contentTypeOf(rawHeaders);
    this.#isJson = type.includes('json');
    const c = this.#checks;
    const stream = c.llm && type.startsWith('text/event-stream');
    if (!stream && !(this.#isJson && (c.json !== null || c.llm || c.agreement !== null))) return;
    if (isEncoded(rawHeaders)) this.#unchecked = true;
    else if (stream) this.#stream = new OpenAiStream();
    else this.#chunks = [];
  }

  /** True once a streamed LLM answer has sent its first token (or it is not such a stream). */
  get firstToken(): boolean {
    return this.#stream === null || this.#stream.tokenEvents > 0;
  }

  /** The kept copy so far (holdForReplay writes it out once the answer passed), null when none is kept. */
  get kept(): Buffer[] | null {
    return this.#unchecked ? null : this.#chunks;
  }

  /** The next piece of the body, as it passes to the client. */
  data(chunk: Buffer): void {
    if (this.#stream !== null) {
      this.#stream.write(chunk, performance.now());
      return;
    }
    const chunks = this.#chunks;
    if (chunks === null || this.#unchecked) return;
    this.#bytes += chunk.length;
    if (this.#bytes > this.#checks.maxBytes) {
      this.#unchecked = true;
      this.#chunks = null;
    } else chunks.push(chunk);
  }

  /** The body ended cleanly: the verdicts, and the failure the answer counts as (null: none). */
  end(now: number): CheckFailure | null {
    const c = this.#checks;
    if (this.#stream !== null) return this.#endStream(now);
    if (this.#unchecked) {
      if (c.json !== null) this.json = 'unchecked';
      if (c.llm) this.llm = 'unchecked';
      return null;
    }
    const chunks = this.#chunks;
    if (chunks === null) return null;
    this.#chunks = null;
    let doc: unknown;
    let parsed = true;
    try {
      doc = JSON.parse((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8'));
    } catch (err) {
      parsed = false;
      this.detail = `/ is not JSON: ${(err as Error).message.slice(0, 120)}`;
    }
    // Kept for the agreement only: a parsed answer held past its exchange is garbage to collect later.
    if (c.agreement !== null) this.doc = doc;
    if (c.json !== null) {
      if (parsed && c.json.validate(doc)) this.json = 'pass';
      else {
        this.json = 'invalid';
        if (parsed) this.detail = describeSchemaError(c.json.validate.errors);
        return 'invalid';
      }
    }
    if (!c.llm) return null;
    if (!parsed) return this.#llmVerdict('truncated', this.detail);
    const v = judgeOpenAiAnswer(doc);
    this.ttftMs = now - this.#startedAt;
    return this.#llmVerdict(v.verdict, v.detail);
  }

  #endStream(now: number): CheckFailure | null {
    const s = this.#stream as OpenAiStream;
    const verdict = s.end(now);
    if (s.tokenEvents > 0) this.ttftMs = s.firstTokenAt - this.#startedAt;
    this.tpotMs = s.tpotMs;
    const detail = verdict === 'stream_error' ? s.error : verdict === 'truncated' ? `the stream ended after ${s.tokenEvents} token events without [DONE] or a finish_reason` : null;
    return this.#llmVerdict(verdict, detail);
  }

  #llmVerdict(v: LlmVerdict, detail: string | null): CheckFailure | null {
    this.llm = v;
    if (v === 'pass') return null;
    this.detail = detail;
    return v;
  }
}
