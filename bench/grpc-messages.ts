import { fileURLToPath } from 'node:url';
import * as loader from '@grpc/proto-loader';

/**
 * The bytes of bench:overhead's gRPC row: a KServe-v2-shaped `ModelInfer` call
 * (test/fixtures/inference.proto), its request and answer encoded once, so that neither the
 * stand-in model server nor the load generator spends its CPU on protobuf per call.
 */

const PROTO = fileURLToPath(new URL('../../test/fixtures/inference.proto', import.meta.url));
const definition = loader.loadSync(PROTO, { keepCase: true, longs: String, defaults: true });
const method = (definition['inference.GRPCInferenceService'] as Record<string, loader.MethodDefinition<object, object>>).ModelInfer!;

export const MODEL_INFER_PATH = method.path;
export const ROUTE_PREFIX = '/inference.GRPCInferenceService/';

/** ~300 bytes in (a tokenized sentence as INT64 ids), ~240 out (label and scores), as the HTTP rows. */
export const REQUEST = method.requestSerialize({
  model_name: 'sentiment',
  model_version: '',
  id: '6f1c2a9e-4b7d-4e2a-9c3f-1d8e5b7a2c40',
  raw_input_contents: [Buffer.alloc(256, 7)],
});
export const ANSWER = method.responseSerialize({
  model_name: 'sentiment',
  model_version: 'v1',
  id: '6f1c2a9e-4b7d-4e2a-9c3f-1d8e5b7a2c40',
  raw_output_contents: [Buffer.from('positive'), Buffer.alloc(184, 3)],
});

export const decodeAnswer = (b: Buffer): { model_name: string; raw_output_contents: Buffer[] } => method.responseDeserialize(b) as never;
export const identity = (b: Buffer): Buffer => b;
