import { randomBytes } from 'node:crypto';

/**
 * Request ids for requests that arrive without one: a random per-process prefix and a counter,
 * so ids are unique across replicas and restarts without drawing randomness per request.
 */
export class RequestIds {
  readonly #prefix = `${randomBytes(6).toString('hex')}-`;
  #seq = 0;

  next(): string {
    this.#seq++;
    if (this.#seq > Number.MAX_SAFE_INTEGER - 1) this.#seq = 1;
    return this.#prefix + this.#seq.toString(36);
  }
}
