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

/** A route name. */
export const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
