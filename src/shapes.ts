import { Type, type Static } from '@sinclair/typebox';

/**
 * The values the config, the admin API, the CLI and the store share, written once: each is a
 * TypeBox schema (for validation and the OpenAPI document) and a plain list (for messages).
 */

export const STRATEGIES = ['canary', 'blueGreen', 'shadow'] as const;
export const StrategySchema = Type.Union(STRATEGIES.map((s) => Type.Literal(s)));
export type Strategy = Static<typeof StrategySchema>;

/** The phases of a route (SPEC §1). */
export const PHASES = ['stable', 'shadowing', 'progressing', 'paused', 'rolled_back'] as const;
export const PhaseSchema = Type.Union(PHASES.map((p) => Type.Literal(p)));
export type Phase = Static<typeof PhaseSchema>;

/** A version label: what users see in `x-rollgate-version`. */
export const VERSION_LABEL = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/;
export const VersionLabelSchema = Type.String({ pattern: VERSION_LABEL.source });

/** A data snapshot id (SPEC §9): 1-128 of A-Z a-z 0-9 _ . : @ / + -. */
export const SNAPSHOT_ID = /^[A-Za-z0-9_.:@/+-]{1,128}$/;
export const SnapshotIdSchema = Type.String({ pattern: SNAPSHOT_ID.source });
/** A version's data: the snapshot it was built for (SPEC §9 pinning). */
export const DataRefSchema = Type.Object({ snapshot: SnapshotIdSchema }, { additionalProperties: false });
export type DataRef = Static<typeof DataRefSchema>;

/** The header that carries the serving version's snapshot id upstream, unless a route names another. */
export const DEFAULT_DATA_HEADER = 'x-rollgate-data-snapshot';

/** A route name. */
export const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
