import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { answerClientError, answerUnknownExpectation } from '../client-error.js';
import type { GatewayConfig } from '../config/types.js';

/**
 * The data plane's node:http server with the listen section's limits. What Node refuses itself
 * (a request it cannot parse, an Expect it does not know) is answered with the project's error
 * body; a request without Host is left to the handler for the same reason.
 */
export function dataPlaneServer(listen: GatewayConfig['listen'], handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const { headersTimeoutMs, requestTimeoutMs, idleTimeoutMs } = listen;
  const server = http.createServer(
    {
      keepAliveTimeout: idleTimeoutMs,
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      // Node checks the two limits above on this interval (30 s by default): a slow client is
      // closed within a quarter of the head's limit after it passed, at most a second after.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeoutMs / 4))),
      maxHeaderSize: 16 * 1024,
      // Node's own refusal of a request without Host has no body; the handler answers it instead.
      requireHostHeader: false,
    },
    handler,
  );
  return server.on('clientError', answerClientError).on('checkExpectation', answerUnknownExpectation);
}
