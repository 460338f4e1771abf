import { validateHeaderName, validateHeaderValue } from 'node:http';
import { clientResponseHeaders } from './headers.js';

/**
 * A candidate's answer held back from the client until its checks have passed
 * (`checks.json.holdForReplay` with `retryOnStable`): its head and body up to the check's
 * `maxBytes`. An answer that fails is dropped and replayed on stable; one that grows past the
 * bound is let go to the client as it is, unchecked.
 */
export class HeldAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly rawHeaders: Buffer[];
  readonly chunks: Buffer[] = [];
  #bytes = 0;
  readonly #maxBytes: number;

  constructor(status: number, statusText: string, rawHeaders: Buffer[], maxBytes: number) {
    this.status = status;
    this.statusText = statusText;
    this.rawHeaders = rawHeaders;
    this.#maxBytes = maxBytes;
  }

  /**
   * `protocol` when its head cannot be passed on to the client (a header value Node refuses to
   * write, a transfer coding other than chunked), else null. Asked before the answer is let go,
   * while stable can still answer instead: once the upstream's answer has completed, it can no
   * longer be aborted into a 502.
   */
  unusable(): 'protocol' | null {
    try {
      const headers = clientResponseHeaders(this.rawHeaders, '', '', '', false);
      for (let i = 0; i < headers.length; i += 2) {
        validateHeaderName(headers[i] as string);
        validateHeaderValue(headers[i] as string, headers[i + 1] as string);
      }
      return null;
    } catch {
      return 'protocol';
    }
  }

  /** Keeps the chunk; false once the answer is over the bound (the chunk is kept all the same). */
  add(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.#bytes += chunk.length;
    return this.#bytes <= this.#maxBytes;
  }
}
