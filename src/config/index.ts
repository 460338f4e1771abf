export { ConfigError, loadConfigFile, parseConfig, parseConfigText } from './load.js';
export { formatDuration, parseDuration } from './duration.js';
export * from './defaults.js';
export { ConfigSchema, type ConfigInput, type RouteInput } from './schema.js';
export type * from './types.js';
