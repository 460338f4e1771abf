import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A request asking to upgrade to something other than WebSocket (`Upgrade: h2c` from
 * `curl --http2` on an http:// URL, say). A server may ignore an Upgrade (RFC 9110 §7.8), so such
 * a request without a body is served as the HTTP/1.1 request it also is, on its connection, which
 * closes after the answer (Node handed the socket over for the upgrade and parses no more on it).
 * A request with a body is not: its body was not read. Returns whether it was served.
 */
export function serveIgnoringUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, handle: (req: IncomingMessage, res: ServerResponse) => void): boolean {
  const headers = req.headers;
  if (head.length > 0 || headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0') return false;
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.on('finish', () => {
    res.detachSocket(socket);
    socket.end();
  });
  handle(req, res);
  return true;
}
