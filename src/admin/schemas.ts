import { Type, type TSchema } from '@sinclair/typebox';
import { ERRORS, type ErrorCode } from '../errors.js';
import { DataRefSchema, PhaseSchema, STRATEGIES, StrategySchema, VersionLabelSchema, type Strategy } from '../shapes.js';

/*
 * The admin API's shapes (SPEC §6), written once as TypeBox schemas: Fastify validates requests
 * with them, serialises answers with them, types the handlers through the TypeBox type provider,
 * and @fastify/swagger builds the OpenAPI document at /docs from them.
 */

// ---- requests ---------------------------------------------------------------------------------

/** Weights are percentages with at most two decimals (the picker works in basis points). */
export const WEIGHT_STEP = 0.01;
const Percent = () => Type.Number({ minimum: 0, maximum: 100, multipleOf: WEIGHT_STEP, description: 'percent of traffic to the candidate, 0-100, at most two decimals' });

export const RouteParams = Type.Object({ route: Type.String({ minLength: 1, maxLength: 63 }) });

export const WeightBody = Type.Object({ weight: Percent() }, { additionalProperties: false });

// An enum rather than StrategySchema's union of literals: a bad value then fails one keyword
// with one message ("must be equal to one of the allowed values"), not one per literal.
const StrategyEnum = Type.Unsafe<Strategy>({ type: 'string', enum: [...STRATEGIES] });

export const CandidateBody = Type.Object(
  {
    version: VersionLabelSchema,
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    weight: Type.Optional(Percent()),
    strategy: Type.Optional(StrategyEnum),
    /** The data snapshot the candidate was built for; a hook can never be set here. */
    data: Type.Optional(DataRefSchema),
  },
  { additionalProperties: false },
);

/** No body, or `{version}`: a label first, else a revision number. */
export const RollbackBody = Type.Union([
  Type.Null(),
  Type.Object(
    { version: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer({ minimum: 1 })])) },
    { additionalProperties: false },
  ),
]);

export const EventsQuery = Type.Object({ stats: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

// ---- answers ----------------------------------------------------------------------------------

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const AnyObject = () => Type.Object({}, { additionalProperties: true });

const versionFields = { version: Type.String(), revision: Type.Integer(), url: Type.String() };
const DataAnswer = () => Nullable(Type.Object({ snapshot: Type.String() }));
const RestoreAnswer = Type.Object({
  state: Type.Union(['pending', 'running', 'done', 'failed'].map((s) => Type.Literal(s))),
  attempts: Type.Integer(),
  lastError: Nullable(Type.String()),
  startedAt: Nullable(Type.String()),
  finishedAt: Nullable(Type.String()),
});

const WindowSchema = Type.Object({
  count: Type.Integer(),
  failures: Type.Integer(),
  failuresByKind: Type.Object({}, { additionalProperties: Type.Integer() }),
  failureRate: Type.Number(),
  rate: Type.Number(),
  latencyMs: Type.Object({}, { additionalProperties: Nullable(Type.Number()) }),
});

const Quantiles = () => Type.Object({}, { additionalProperties: Nullable(Type.Number()) });
/** What the checks of the answers found (SPEC §9); null on a route without checks or agreement. */
const AnswersAnswer = Type.Object({
  checks: Type.Array(Type.Union([Type.Literal('json'), Type.Literal('llm')])),
  latency: Type.Union([Type.Literal('ttft'), Type.Literal('response')]),
  tpotMs: Nullable(Type.Object({ stable: Quantiles(), candidate: Nullable(Quantiles()) })),
  agreement: Nullable(Type.Object({ pointer: Type.String(), maxDisagreement: Type.Number(), pairs: Type.Integer(), disagreements: Type.Integer() })),
});

/** A route's state (SPEC §6), in the order of the SPEC; what this version adds comes last. */
export const RouteStateSchema = Type.Object({
  name: Type.String(),
  phase: PhaseSchema,
  weight: Type.Number(),
  stable: Type.Object({ ...versionFields, healthy: Type.Boolean(), data: DataAnswer() }),
  candidate: Nullable(Type.Object({ ...versionFields, weight: Type.Number(), healthy: Type.Boolean(), data: DataAnswer() })),
  step: Nullable(Type.Object({ index: Type.Integer(), weight: Type.Number(), bakeEndsAt: Nullable(Type.String()), count: Type.Integer() })),
  windows: Type.Object({ stable: Nullable(WindowSchema), candidate: Nullable(WindowSchema) }),
  // A decision can come back from a saved state, so only its reason and time are demanded.
  lastDecision: Nullable(
    Type.Object({
      reason: Type.String(),
      at: Type.String(),
      message: Type.Optional(Type.String()),
      evidence: Type.Optional(Nullable(AnyObject())),
    }),
  ),
  strategy: StrategySchema,
  bake: Nullable(Type.Object({ stage: Type.String(), endsAt: Nullable(Type.String()), remainingMs: Type.Number() })),
  mirrorPercent: Type.Number(),
  data: Type.Object({ snapshot: Nullable(Type.String()), restore: Nullable(RestoreAnswer) }),
  answers: Nullable(AnswersAnswer),
});

export const RoutesList = Type.Object({ routes: Type.Array(RouteStateSchema) });

export const FullRollback = Type.Object({ rolledBack: Type.Array(Type.String()), routes: Type.Array(RouteStateSchema) });

export const History = Type.Object({
  revisions: Type.Array(Type.Object({ ...versionFields, data: Type.Optional(DataAnswer()), deployedAt: Type.Optional(Type.String()), status: Type.Optional(Type.String()) })),
  events: Type.Array(AnyObject()),
});

/** An error answer (SPEC §6); `description` names the codes the route can answer with. */
const errorAnswer = (description: string) => Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) }, { description });

/** Error answers for a route's OpenAPI description: each status with the codes that use it. */
export function errorAnswers(...codes: ErrorCode[]): Record<number, ReturnType<typeof errorAnswer>> {
  const byStatus = new Map<number, string[]>();
  for (const code of ['ROLLGATE_UNAUTHORIZED', ...codes, 'ROLLGATE_INTERNAL'] as ErrorCode[]) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries([...byStatus].map(([status, names]) => [status, errorAnswer(names.join(', '))]));
}
