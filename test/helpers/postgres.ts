import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** The Postgres example's scripts and model server. */
export const PG_EXAMPLE = fileURLToPath(new URL('../../../examples/postgres-snapshots/', import.meta.url));

/** The local PostgreSQL (127.0.0.1:5432, trust auth) unless the PG* environment says otherwise. */
export const PG = { PGHOST: process.env.PGHOST ?? '127.0.0.1', PGPORT: process.env.PGPORT ?? '5432', PGUSER: process.env.PGUSER ?? 'postgres' };

/** The features table's rows in one string: equal strings, equal tables. */
export const CHECKSUM = "SELECT count(*) || ':' || md5(string_agg(id || '=' || value, ',' ORDER BY id)) FROM features";

export interface TestDatabase {
  name: string;
  /** The PG* environment that reaches it (hooks and model servers inherit it). */
  env: Record<string, string>;
  psql(sql: string): string;
}

const run = (db: string, sql: string): string =>
  execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: { ...process.env, ...PG, PGDATABASE: db } }).toString().trim();

/**
 * A database with a random name and a `features` table of 100 rows, dropped in teardown; throws
 * with what to do when PostgreSQL cannot be reached.
 */
export function featuresDatabase(t: { teardown(fn: () => unknown): void }): TestDatabase {
  const name = `rollgate_test_${randomBytes(6).toString('hex')}`;
  try {
    run('postgres', `CREATE DATABASE ${name}`);
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${PG.PGHOST}:${PG.PGPORT} as ${PG.PGUSER} (.ci/run starts the local cluster): ${(err as Error).message}`, { cause: err });
  }
  t.teardown(() => void run('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  run(name, "CREATE TABLE features (id integer PRIMARY KEY, value text NOT NULL); INSERT INTO features SELECT g, 'weight-' || g FROM generate_series(1, 100) g");
  return { name, env: { ...PG, PGDATABASE: name }, psql: (sql) => run(name, sql) };
}
