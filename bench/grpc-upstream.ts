import * as grpc from '@grpc/grpc-js';
import { parseArgs } from 'node:util';
import { ANSWER, MODEL_INFER_PATH, identity } from './grpc-messages.js';

/**
 * A stand-in gRPC model server (grpc-js): unary `ModelInfer` answered at once with the same
 * encoded ModelInferResponse, the request read but not decoded, like bench/upstream.ts for HTTP.
 */
const { values } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: grpc-upstream.js --port N');
  process.exit(2);
}

const service: grpc.ServiceDefinition = {
  ModelInfer: {
    path: MODEL_INFER_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const server = new grpc.Server();
server.addService(service, {
  ModelInfer(_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
    cb(null, ANSWER);
  },
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(`grpc-upstream: ${err.message}`);
    process.exit(1);
  }
});
process.once('SIGTERM', () => process.exit(0));
