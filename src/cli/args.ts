import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from '../config/duration.js';
import { RollgateError } from '../errors.js';
import { SNAPSHOT_ID, STRATEGIES, type Strategy } from '../shapes.js';
import { AdminClient, DEFAULT_ADMIN_URL } from './admin-client.js';

/** A command line the verb cannot run: exit 2 with the verb's usage line. */
export class UsageError extends RollgateError {
  override readonly name = 'UsageError';

  constructor(message: string, options?: { cause?: unknown }) {
    super('ROLLGATE_USAGE', message, options);
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

const JSON_OPTION: Options = { json: { type: 'boolean' } };

/** Parses a verb's options (every verb takes --json) and checks its number of positionals. */
export function parse(verb: string, args: string[], options: Options = {}, positionals: { min: number; max: number; names: string[] }) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...JSON_OPTION, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const { positionals: pos } = parsed;
  if (pos.length < positionals.min) throw new UsageError(`${verb} needs ${positionals.names.slice(pos.length, positionals.min).map((n) => `<${n}>`).join(' ')}`);
  if (pos.length > positionals.max) throw new UsageError(`${verb} takes ${positionals.max === 0 ? 'no arguments' : `at most ${positionals.max} argument${positionals.max === 1 ? '' : 's'}`}; got '${pos.slice(positionals.max).join(' ')}'`);
  return { values: parsed.values as Record<string, string | boolean | undefined>, pos };
}

/** A percentage: a plain decimal number from 0 to 100 with at most two decimals. */
export function parsePercent(what: string, text: string): number {
  const t = text.trim().replace(/%$/, '');
  if (!/^\d+(\.\d+)?$/.test(t)) throw new UsageError(`${what} must be a number from 0 to 100; got '${text}'`);
  const n = Number(t);
  if (!(n >= 0 && n <= 100)) throw new UsageError(`${what} must be from 0 to 100; got ${text}`);
  if (Math.abs(Math.round(n * 100) - n * 100) > 1e-6) throw new UsageError(`${what} must have at most two decimals; got ${text}`);
  return n;
}

export function parseInterval(text: string): number {
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === null || !(ms >= 100)) throw new UsageError(`--interval must be a duration of at least 100ms, such as 1s or 500ms; got '${text}'`);
  return ms;
}

/** "a, b or c": the strategies as the usage error lists them. */
const STRATEGY_WORDS = `${STRATEGIES.slice(0, -1).join(', ')} or ${STRATEGIES[STRATEGIES.length - 1]}`;

/** `--data-snapshot`: a snapshot id as the admin API takes it (shapes.ts). */
export function parseSnapshotId(text: string): string {
  if (!SNAPSHOT_ID.test(text)) throw new UsageError(`--data-snapshot must be 1-128 letters, digits or _.:@/+-; got '${text}'`);
  return text;
}

/** `--strategy`: one of the strategies the admin API takes (shapes.ts). */
export function parseStrategy(text: string): Strategy {
  const strategy = STRATEGIES.find((s) => s === text);
  if (strategy === undefined) throw new UsageError(`--strategy must be ${STRATEGY_WORDS}`);
  return strategy;
}

/** The admin client for ROLLGATE_ADMIN_URL and ROLLGATE_ADMIN_TOKEN (SPEC §7). */
export function clientFrom(env: NodeJS.ProcessEnv): AdminClient {
  const baseUrl = env.ROLLGATE_ADMIN_URL !== undefined && env.ROLLGATE_ADMIN_URL !== '' ? env.ROLLGATE_ADMIN_URL : DEFAULT_ADMIN_URL;
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch (err) {
    throw new UsageError(`ROLLGATE_ADMIN_URL is not a URL: '${baseUrl}'`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`ROLLGATE_ADMIN_URL must be an http or https URL; got '${baseUrl}'`);
  return new AdminClient({ baseUrl, token: env.ROLLGATE_ADMIN_TOKEN });
}
