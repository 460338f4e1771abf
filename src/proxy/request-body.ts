import type { IncomingMessage } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { Readable } from 'node:stream';
import { kExchange, onRequestData, onRequestEnd, type WithRequestExchange } from './exchange-parts.js';

/**
 * A request body read before the request goes upstream. A body of known length (up to its limit)
 * is read whole, so head and body reach the upstream in one write and a failed try can be
 * replayed. A chunked body is read ahead as far as it came with the head, in the same read from
 * the client: most are whole by then (sent whole upstream, with their length, as nginx does), and
 * a framing error in them (a chunk longer than its size, a bad size) is found before anything of
 * the request is sent. A chunked body still arriving after that read, or past its limit, streams
 * from there, what was read first.
 */
export class PendingBody {
  readonly chunks: Buffer[] = [];
  #bytes = 0;

  constructor(
    readonly method: string,
    readonly path: string,
    readonly headers: string[],
    /** Past this many bytes the body streams; Infinity for a body of known length. */
    readonly limit: number,
  ) {}

  /** Adds a chunk; true once the body has outgrown its read-ahead. */
  add(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.#bytes += chunk.length;
    return this.#bytes > this.limit;
  }

  whole(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }

  /** The body from here on as a stream: what was read, then the rest of the request. */
  rest(req: IncomingMessage): Readable {
    const r = req as WithRequestExchange;
    r.removeListener('data', onRequestData);
    r.removeListener('end', onRequestEnd);
    r.pause(); // no 'data' listener from here: flowing on would drop chunks
    r[kExchange] = undefined;
    return Readable.from(readThen(this.chunks, req), { objectMode: false });
  }
}

async function* readThen(first: Buffer[], req: IncomingMessage): AsyncGenerator<Buffer> {
  yield* first;
  for await (const chunk of req) yield chunk as Buffer;
}

/** What an exchange does when a chunked body's first read is over and it is still pending. */
export interface ReadAheadTarget {
  readAheadOver(req: IncomingMessage): void;
}

/** Scheduled (setImmediate) for a chunked body: runs once the client's current read is handled. */
export function endOfFirstRead(ex: ReadAheadTarget, req: IncomingMessage): void {
  ex.readAheadOver(req);
}

/**
 * The client's request body as undici reads it. Not the stream itself: undici destroys a body
 * on failure, and the HTTP/2 stream must stay open for the 502. Pauses the stream when undici
 * is behind (HTTP/2 flow control holds the client); once destroyed, the rest is read and dropped.
 */
export class StreamBody extends Readable {
  readonly #src: ServerHttp2Stream;
  readonly #onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.#src.pause();
  };
  readonly #onEnd = (): void => {
    this.push(null);
  };

  constructor(src: ServerHttp2Stream) {
    super();
    this.#src = src;
    src.on('data', this.#onData).on('end', this.#onEnd);
  }

  override _read(): void {
    this.#src.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#src.off('data', this.#onData).off('end', this.#onEnd).resume();
    cb(err);
  }
}
