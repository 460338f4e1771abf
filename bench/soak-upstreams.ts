import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The soak's model servers, in the bench's process: each answers ~240 bytes of JSON, or fails
 * as told while `fault` is set. A failing answer carries `x-soak-fault`, so that what a client
 * sees can be traced to the fault injection.
 *
 * - `error`: every request answered 500;
 * - `half`: every other request answered 500;
 * - `reset`: every request's connection reset before any answer (a crashed model server).
 */
export type Fault = 'error' | 'half' | 'reset';

const ANSWER = Buffer.from(
  JSON.stringify({
    model_name: 'sentiment',
    model_version: 'v1',
    id: '6f1c2a9e-4b7d-4e2a-9c3f-1d8e5b7a2c40',
    outputs: [
      { name: 'label', datatype: 'BYTES', shape: [1], data: ['positive'] },
      { name: 'score', datatype: 'FP32', shape: [1], data: [0.9731] },
    ],
  }),
);
const FAILED = Buffer.from('{"error":"failing as asked"}');

export class ModelServer {
  readonly name: string;
  readonly server: http.Server;
  fault: Fault | null = null;
  requests = 0;
  faulted = 0;

  private constructor(name: string, server: http.Server) {
    this.name = name;
    this.server = server;
  }

  static async start(name: string): Promise<ModelServer> {
    const server = http.createServer();
    const m = new ModelServer(name, server);
    server.on('request', (req, res) => m.#handle(req, res));
    // Longer than the gateway pools' keep-alive (4 s), so that the pool always closes first.
    server.keepAliveTimeout = 120_000;
    server.headersTimeout = 121_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return m;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    req.once('end', () => {
      this.requests++;
      const fault = this.fault;
      if (fault === 'reset') {
        this.faulted++;
        req.socket.resetAndDestroy();
        return;
      }
      if (fault === 'error' || (fault === 'half' && this.requests % 2 === 0)) {
        this.faulted++;
        res.writeHead(500, { 'content-type': 'application/json', 'content-length': String(FAILED.length), 'x-soak-fault': fault });
        res.end(FAILED);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(ANSWER.length) });
      res.end(ANSWER);
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
