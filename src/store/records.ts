import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { TripEvidence } from '../judge/decide.js';
import type { FleetDelta } from '../judge/fleet-judge.js';
import type { PersistedRoute, PersistedState, RouteEvent } from '../rollout/types.js';
import { DataRefSchema, PhaseSchema, StrategySchema, VERSION_LABEL } from '../shapes.js';
import { HookJobSchema } from '../hooks/job.js';
import { parseJson, recordCheck, RecordError, type RecordCheck } from './record-check.js';

/**
 * The schemas of everything the store reads back: the saved state (file, and each route's state
 * in Redis), a route's Redis hash, the change channel's news and the evidence channel's deltas.
 * What comes back from disk or another process is checked before it is applied, so that a
 * foreign, older or damaged record is refused with its key path instead of becoming routing.
 * Unknown keys are ignored (a newer writer may add some); the keys the code reads are checked.
 * The TypeScript types stay in rollout/types.ts and judge/; the assertions at the end of this
 * file fail to compile when a schema and its type drift apart.
 */

const Int = (minimum: number) => Type.Integer({ minimum });
const Str = () => Type.String();
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const OneOf = <const L extends string>(values: readonly L[]) => Type.Union(values.map((v) => Type.Literal(v)));

// A saved URL becomes an upstream pool: one that undici cannot use must not get that far.
const HttpUrl = Type.String({ pattern: '^https?://[^\\s/?#@]+([/?#]\\S*)?$', 'x-message': 'must be an http(s) URL with a host' });
const Label = Type.String({ pattern: VERSION_LABEL.source, 'x-message': 'must be a version label' });
const Revision = Int(1);
const Weight = Type.Number({ minimum: 0, maximum: 100 });

const VersionStateSchema = Type.Object({ version: Label, revision: Revision, url: HttpUrl, data: Type.Optional(Nullable(DataRefSchema)) });
const DeclaredSchema = Type.Object({ version: Label, url: HttpUrl });

/** Every Cause (rollout/types.ts), as written in events and decisions. */
const CauseSchema = OneOf(['manual', 'peer', 'config', 'schedule', 'consecutive_failures', 'error_rate', 'latency', 'invalid', 'truncated', 'empty', 'stream_error', 'ttft', 'tpot', 'disagreement', 'health_check', 'hook_failed']);

/**
 * A trip's evidence is shown and passed on, never computed with, and a peer's or a manual
 * rollback's carries other keys than a judge's: an object whose known numbers are numbers.
 */
const EvidenceSchema = Type.Unsafe<TripEvidence>(
  Type.Object({
    statistic: Type.Optional(Type.Number()),
    boundary: Type.Optional(Type.Number()),
    stable: Type.Optional(Type.Object({})),
    candidate: Type.Optional(Type.Object({})),
    replica: Type.Optional(Str()),
    reason: Type.Optional(Str()),
  }),
);

const RouteEventSchema = Type.Object({
  route: Str(),
  type: OneOf(['deploy', 'weight', 'step', 'rollback', 'promote', 'pause', 'resume', 'health', 'hook']),
  cause: CauseSchema,
  at: Str(),
  message: Str(),
  from: Type.Optional(Nullable(VersionStateSchema)),
  to: Type.Optional(Nullable(VersionStateSchema)),
  weight: Type.Optional(Weight),
  evidence: Type.Optional(EvidenceSchema),
  decisionSeconds: Type.Optional(Type.Number({ minimum: 0 })),
  peerCause: Type.Optional(CauseSchema),
  hook: Type.Optional(
    Type.Object({
      event: OneOf(['beforeTraffic', 'afterRollback', 'afterPromote']),
      state: OneOf(['pending', 'running', 'done', 'failed']),
      attempts: Int(0),
      lastError: Nullable(Type.String()),
    }),
  ),
});

const RevisionSchema = Type.Object({
  ...VersionStateSchema.properties,
  deployedAt: Str(),
  status: OneOf(['stable', 'candidate', 'rolled_back', 'retired']),
});

const PlanSchema = Type.Object({
  strategy: StrategySchema,
  stage: OneOf(['waiting', 'shadow', 'step', 'blueGreen', 'hold']),
  // -1 while no step runs (a fixed weight, blue-green, shadow).
  stepIndex: Int(-1),
  remainingMs: Nullable(Type.Number({ minimum: 0 })),
  healthy: Type.Boolean(),
  pausedFrom: Nullable(PhaseSchema),
  awaitingTraffic: Type.Boolean(),
  dataReady: Type.Optional(Type.Boolean()),
});

/** One route's saved state (a file's `routes.<name>`, a Redis hash's `state`). */
export const PersistedRouteSchema = Type.Object({
  declared: Type.Object({ stable: Type.Union([VersionStateSchema, DeclaredSchema]), candidate: Nullable(DeclaredSchema) }),
  phase: PhaseSchema,
  stable: VersionStateSchema,
  candidate: Nullable(Type.Object({ ...VersionStateSchema.properties, weight: Weight })),
  lastDecision: Nullable(Type.Object({ reason: CauseSchema, at: Str(), message: Str(), evidence: Nullable(EvidenceSchema) })),
  revisions: Type.Array(RevisionSchema),
  events: Type.Array(RouteEventSchema),
  nextRevision: Revision,
  plan: Type.Optional(Nullable(PlanSchema)),
  restore: Type.Optional(
    Nullable(
      Type.Object({
        state: OneOf(['pending', 'running', 'done', 'failed']),
        attempts: Int(0),
        lastError: Nullable(Type.String()),
        startedAt: Nullable(Type.String()),
        finishedAt: Nullable(Type.String()),
      }),
    ),
  ),
});

/** The state file. */
export const PersistedStateSchema = Type.Object({
  format: Type.Literal(1),
  savedAt: Str(),
  routes: Type.Record(Type.String(), PersistedRouteSchema),
  hooks: Type.Optional(Type.Array(HookJobSchema)),
});

/** A route's Redis hash as HGETALL gives it: the generation is a positive integer in decimal. */
export const RouteHashSchema = Type.Object({
  generation: Type.String({ pattern: '^[1-9][0-9]{0,14}$', 'x-message': 'must be a positive integer' }),
  by: Type.String({ minLength: 1 }),
  state: Str(),
});

/** The change channel's news: a route's state was written at `generation` by replica `by`. */
export const ChangeMessageSchema = Type.Object({ route: Type.String({ minLength: 1 }), generation: Int(1), by: Type.String({ minLength: 1 }) });
export type ChangeMessage = Static<typeof ChangeMessageSchema>;

const CountsSchema = Type.Object({ requests: Int(0), failures: Int(0), slow: Type.Array(Int(0)) });

/** What one replica's judge saw of a candidate revision since its last message. */
export const EvidenceMessageSchema = Type.Object({
  route: Type.String({ minLength: 1 }),
  revision: Revision,
  by: Type.String({ minLength: 1 }),
  delta: Type.Object({ stable: CountsSchema, candidate: CountsSchema }),
});
export type EvidenceMessage = Static<typeof EvidenceMessageSchema>;

/** One route's shared state: its generation (changes so far), the replica that wrote it, the state. */
export interface SharedRoute {
  generation: number;
  by: string;
  route: PersistedRoute;
}

const checkState: RecordCheck<PersistedState> = recordCheck(PersistedStateSchema);
const checkRoute: RecordCheck<PersistedRoute> = recordCheck(PersistedRouteSchema);
const checkHash = recordCheck(RouteHashSchema);
const checkChange = recordCheck(ChangeMessageSchema);
const checkEvidence = recordCheck(EvidenceMessageSchema);

/** A state file's parsed content, checked. @throws RecordError naming `source` and the key path */
export function savedState(value: unknown, source: string): PersistedState {
  return checkState(value, source);
}

/**
 * A route's Redis hash (HGETALL), checked with the state in it; null when there is none.
 * @throws RecordError naming the key, and the field and key path of each problem
 */
export function sharedRoute(hash: Record<string, string>, key: string): SharedRoute | null {
  if (Object.keys(hash).length === 0) return null;
  const source = `redis key ${key}`;
  const h = checkHash(hash, source);
  const route = checkRoute(parseJson(h.state, `${source} field state`), `${source} field state`);
  return { generation: Number(h.generation), by: h.by, route };
}

/** A change channel message. @throws RecordError naming `source` */
export function changeMessage(text: string, source: string): ChangeMessage {
  return checkChange(parseJson(text, source), source);
}

/**
 * An evidence channel message. The counts must add up (no more failures or slow answers than
 * requests): the fleet's tests take them as they come. @throws RecordError naming `source`
 */
export function evidenceMessage(text: string, source: string): EvidenceMessage {
  const m = checkEvidence(parseJson(text, source), source);
  const problems: string[] = [];
  for (const side of ['stable', 'candidate'] as const) {
    const d = m.delta[side];
    if (d.failures > d.requests) problems.push(`delta.${side}.failures: ${d.failures} is more than its ${d.requests} requests`);
    d.slow.forEach((n, i) => {
      if (n > d.requests) problems.push(`delta.${side}.slow[${i}]: ${n} is more than its ${d.requests} requests`);
    });
  }
  if (problems.length > 0) throw new RecordError(source, problems);
  return m;
}

// Schema and type agree both ways: a field added, dropped or retyped on one side only does not
// compile. Each is assignable to the other, and so are both with every key made required (else
// an optional key missing on one side would still pass).
type Required_<T> = T extends readonly (infer E)[] ? Required_<E>[] : T extends object ? { [K in keyof T]-?: Required_<T[K]> } : T;
type Assignable<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Same<A, B> = Assignable<A, B> extends true ? Assignable<Required_<A>, Required_<B>> : false;
true satisfies Same<Static<typeof PersistedStateSchema>, PersistedState>;
true satisfies Same<Static<typeof PersistedRouteSchema>, PersistedRoute>;
true satisfies Same<Static<typeof RouteEventSchema>, RouteEvent>;
true satisfies Same<Static<typeof CauseSchema>, RouteEvent['cause']>;
true satisfies Same<Static<typeof PlanSchema>, NonNullable<PersistedRoute['plan']>>;
true satisfies Same<EvidenceMessage['delta'], FleetDelta>;
