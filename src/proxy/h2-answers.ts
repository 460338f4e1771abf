import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { errorBody, errorStatus, type ErrorCode } from '../errors.js';

/** gRPC status codes the gateway reads or makes (grpc/doc/statuscodes.md). */
export const GRPC = { UNKNOWN: 2, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15 } as const;

/** The codes that count against the version that answered them; the others are the caller's. */
export function grpcFailure(code: number): boolean {
  return code === 2 || code === 4 || code === 13 || code === 14 || code === 15;
}

/** A call is gRPC when its content type is application/grpc or one of its subtypes (+proto, +json). */
export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  return typeof type === 'string' && type.startsWith('application/grpc');
}

/** grpc-message is percent-encoded: every byte outside printable ASCII, and `%` itself. */
export function grpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** The trailers of a status the gateway makes. */
export function statusTrailers(code: number, message: string): OutgoingHttpHeaders {
  return { 'grpc-status': String(code), 'grpc-message': grpcMessage(message) };
}

/**
 * An answer the gateway makes on an HTTP/2 stream: for a gRPC call a trailers-only answer
 * (`:status 200`, the code and message in the headers), else the project's JSON error body with
 * the HTTP status of `code`. Nothing when the stream is gone; trailers when the head was sent.
 */
export function answerH2(stream: ServerHttp2Stream, grpc: boolean, grpcCode: number, code: ErrorCode, message: string, extra: OutgoingHttpHeaders = {}): void {
  if (stream.destroyed || stream.closed) return;
  if (grpc) {
    const trailers = statusTrailers(grpcCode, message);
    if (stream.headersSent) {
      endWithTrailers(stream, trailers);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...extra, ...trailers }, { endStream: true });
    return;
  }
  if (stream.headersSent) {
    stream.close(0x2); // INTERNAL_ERROR: the answer cannot be completed
    return;
  }
  const body = errorBody(code, message);
  stream.respond({ ':status': errorStatus(code), 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...extra });
  stream.end(body);
}

/** Ends a stream whose head went out with `waitForTrailers`, sending these trailers. */
export function endWithTrailers(stream: ServerHttp2Stream, trailers: OutgoingHttpHeaders): void {
  stream.once('wantTrailers', () => {
    if (!stream.destroyed) stream.sendTrailers(trailers);
  });
  if (!stream.writableEnded) stream.end();
}
