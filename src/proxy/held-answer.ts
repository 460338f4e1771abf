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

  /** Keeps the chunk; false once the answer is over the bound (the chunk is kept all the same). */
  add(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.#bytes += chunk.length;
    return this.#bytes <= this.#maxBytes;
  }
}
