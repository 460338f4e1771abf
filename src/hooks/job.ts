import { Type, type Static } from '@sinclair/typebox';
import { HOOK_EVENTS } from '../config/types.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

/** One attempt of a job, as history shows it. */
export const HookAttemptSchema = Type.Object({
  attempt: Type.Integer({ minimum: 1 }),
  action: Type.Integer({ minimum: 0 }),
  startedAt: Type.String(),
  finishedAt: Nullable(Type.String()),
  ok: Type.Union([Type.Boolean(), Type.Null()]),
  error: Nullable(Type.String()),
});

/**
 * One run of a route's hook list for one event (SPEC §9), written to the store before it starts:
 * `pending` until a runner takes it, `running` while an action runs, `done` or `failed` at the
 * end. A gateway stopped while a job was pending or running runs it again at start (hooks are
 * at-least-once, so they must be idempotent).
 */
export const HookJobSchema = Type.Object({
  id: Type.String(),
  route: Type.String(),
  event: Type.Union(HOOK_EVENTS.map((e) => Type.Literal(e))),
  /** The revision serving after the event (for beforeTraffic, the candidate's). */
  revision: Type.Integer({ minimum: 1 }),
  version: Type.String(),
  dataSnapshot: Nullable(Type.String()),
  fromVersion: Nullable(Type.String()),
  fromDataSnapshot: Nullable(Type.String()),
  reason: Type.String(),
  evidence: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  state: Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
  /** Every try, of every action, so far. */
  attempts: Type.Integer({ minimum: 0 }),
  /** The actions of the list done so far (a retry starts at the first one not done). */
  actionsDone: Type.Integer({ minimum: 0 }),
  /** Tries of the action under way (its maxAttempts bounds them). */
  actionAttempts: Type.Integer({ minimum: 0 }),
  lastError: Nullable(Type.String()),
  /** The last attempt's output (stdout and stderr, or the answer's body), at most 4 KiB. */
  output: Type.String(),
  createdAt: Type.String(),
  startedAt: Nullable(Type.String()),
  finishedAt: Nullable(Type.String()),
  history: Type.Array(HookAttemptSchema),
});

export type HookJob = Static<typeof HookJobSchema>;
export type HookAttempt = Static<typeof HookAttemptSchema>;

/** How much of an action's output a job keeps. */
export const OUTPUT_LIMIT = 4 * 1024;
/** How many finished jobs are kept (unfinished ones are always kept). */
export const FINISHED_JOBS_KEPT = 50;
/** How many attempts a job's history keeps, newest last. */
export const ATTEMPTS_KEPT = 100;
