/**
 * WebSocket frame headers (RFC 6455 §5.2), read as the bytes pass through the gateway: a small
 * state machine that skips payloads without copying them and keeps only what a proxy needs to
 * know: where frames end, and whether (and with which code) a close frame went by. The bytes
 * themselves are forwarded untouched by the caller.
 */

const OPCODE_CLOSE = 0x8;
/** Going away: what clients are closed with when the gateway shuts down. */
export const CLOSE_GOING_AWAY = 1001;
/** Internal error (RFC 6455 §7.4.1): an upstream closing with it failed. */
export const CLOSE_INTERNAL_ERROR = 1011;
/** Service restart: what clients of a rolled-back version are closed with, so that they reconnect. */
export const CLOSE_SERVICE_RESTART = 1012;
/** A close frame without a status code (RFC 6455 §7.1.5). */
export const CLOSE_NO_STATUS = 1005;

export class FrameWatch {
  // Header bytes of the frame being read: 2, then up to 8 of extended length and 4 of mask.
  readonly #head = Buffer.alloc(14);
  #have = 0;
  #need = 2;
  /** Payload bytes of the current frame still to pass. */
  #left = 0;
  #inClose = false;
  #masked = false;
  /** Where the current frame's mask key starts in #head. */
  #maskAt = 0;
  #codeBytes = 0;
  #code = 0;
  /** The code of the first close frame seen (1005 when it carried none); null before one. */
  closeCode: number | null = null;

  /** True between frames: the next byte that passes starts a new frame. */
  get atBoundary(): boolean {
    return this.#have === 0 && this.#left === 0;
  }

  /**
   * Reads `chunk`. With `stopAtBoundary`, stops at the first frame boundary (at once when already
   * at one) and returns how many bytes it read; otherwise reads it all and returns its length.
   */
  feed(chunk: Buffer, stopAtBoundary = false): number {
    const n = chunk.length;
    let i = 0;
    if (stopAtBoundary && this.atBoundary) return 0;
    while (i < n) {
      if (this.#left > 0) {
        if (this.#inClose && this.#codeBytes < 2) {
          this.#readCode(chunk[i] as number);
          i++;
        } else {
          const take = Math.min(this.#left, n - i);
          i += take;
          this.#left -= take;
        }
        if (this.#left === 0 && stopAtBoundary) return i;
        continue;
      }
      this.#head[this.#have++] = chunk[i++] as number;
      if (this.#have === 2) this.#need = headerLength(this.#head);
      if (this.#have === this.#need) {
        this.#startPayload();
        if (stopAtBoundary && this.atBoundary) return i;
      }
    }
    return n;
  }

  #readCode(byte: number): void {
    // A masked frame's payload (client to server) is XORed with the 4-byte key that ends its header.
    const key = this.#masked ? (this.#head[this.#maskAt + this.#codeBytes] as number) : 0;
    this.#code = (this.#code << 8) | (byte ^ key);
    this.#codeBytes++;
    this.#left--;
    if (this.#codeBytes === 2 && this.closeCode === null) this.closeCode = this.#code;
  }

  #startPayload(): void {
    const h = this.#head;
    const len7 = (h[1] as number) & 0x7f;
    let length = len7;
    if (len7 === 126) length = h.readUInt16BE(2);
    else if (len7 === 127) length = h.readUInt32BE(2) * 0x1_0000_0000 + h.readUInt32BE(6);
    this.#masked = ((h[1] as number) & 0x80) !== 0;
    this.#maskAt = this.#need - 4;
    this.#inClose = ((h[0] as number) & 0x0f) === OPCODE_CLOSE;
    this.#codeBytes = 0;
    this.#code = 0;
    this.#have = 0;
    this.#need = 2;
    this.#left = length;
    // A close frame with no payload has no code; one with a single byte is malformed, taken alike.
    if (this.#inClose && length < 2 && this.closeCode === null) this.closeCode = CLOSE_NO_STATUS;
  }
}

function headerLength(head: Buffer): number {
  const b1 = head[1] as number;
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

/** An unmasked close frame (server to client) with `code` and no reason. */
export function closeFrame(code: number): Buffer {
  const b = Buffer.alloc(4);
  b[0] = 0x80 | OPCODE_CLOSE;
  b[1] = 2;
  b.writeUInt16BE(code, 2);
  return b;
}
