import { fileURLToPath } from 'node:url';
import { loadConfigFile, parseConfig } from './config/load.js';
import type { GatewayConfig } from './config/types.js';

/**
 * rollgate's public API: `import { createRollgate, loadConfig } from 'rollgate'`. The Fastify
 * plugin is `rollgate/fastify`.
 */

export { createRollgate, SWEEP_INTERVAL_MS, type Rollgate, type RollgateOptions } from './app.js';
export { adminRoutes, buildAdmin, startAdmin, ADMIN_BODY_LIMIT, type AdminOptions } from './admin/server.js';
export { ConfigError, parseConfigText } from './config/load.js';
export { ERRORS, RollgateError, RolloutRefusal, UnknownVersion, type ErrorCode } from './errors.js';
export type { Gateway, GatewayLogger } from './proxy/gateway.js';
export type { Outcome, OutcomeSink } from './proxy/outcome.js';
export type { Rollouts } from './rollout/rollouts.js';
export type { RouteController } from './rollout/route-controller.js';
export type {
  CandidateConfig,
  GatewayConfig,
  HealthCheckConfig,
  RollbackRules,
  RouteConfig,
  StepConfig,
  StickyConfig,
  StoreConfig,
  VersionConfig,
  WebhookConfig,
} from './config/types.js';
export type { ConfigInput, RouteInput } from './config/schema.js';
export type { AnswersState, Cause, Phase, Revision, RouteEvent, RouteState, Stage, Strategy, VersionState } from './rollout/types.js';

/**
 * Loads, validates and normalises a gateway config (defaults filled, durations in ms), as
 * `rollgate serve --config` does.
 *
 * @param source a YAML (or JSON) file, by path or `file:` URL; or the config document itself as
 *   an object, shaped like the YAML (`{ routes: [{ name, match: { pathPrefix }, stable: {...} }] }`).
 *   For YAML text in a string, use `parseConfigText(text, sourceName)`.
 * @returns the config `createRollgate` and the Fastify plugin take.
 * @throws ConfigError listing every problem, one `<key path>: <message>` each in `problems`,
 *   also when the file cannot be read.
 */
export function loadConfig(source: string | URL | object): GatewayConfig {
  if (typeof source === 'string') return loadConfigFile(source);
  if (source instanceof URL) return loadConfigFile(fileURLToPath(source));
  return parseConfig(source);
}
