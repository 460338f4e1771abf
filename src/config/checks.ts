import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { schemaProblem } from '../checks/json-schema.js';
import { pointerProblem } from '../checks/pointer.js';
import { field, isObj, type Problem, type Segment } from './rules.js';

/**
 * `checks.json.schema` and `agreement.pointer` of every route, which the config's own schema
 * cannot judge: a schema given as a file path is read (relative to the config file's folder)
 * and every schema is compiled, so that a bad one stops the start with its key path.
 * Returns the problems, and the schema objects by route index for the defaults to take.
 */
export function resolveChecks(raw: unknown, baseDir: string): { problems: Problem[]; schemas: Map<number, object> } {
  const problems: Problem[] = [];
  const schemas = new Map<number, object>();
  const routes = field(raw, 'routes');
  if (!Array.isArray(routes)) return { problems, schemas };
  routes.forEach((r: unknown, i) => {
    const add = (path: Segment[], message: string) => problems.push({ path: ['routes', i, ...path], message });
    const json = field(field(r, 'checks'), 'json');
    if (isObj(json) && 'schema' in json) {
      const found = schemaOf(json.schema, baseDir);
      if (typeof found === 'string') add(['checks', 'json', 'schema'], found);
      else schemas.set(i, found);
    }
    const pointer = field(field(r, 'agreement'), 'pointer');
    if (typeof pointer === 'string') {
      const problem = pointerProblem(pointer);
      if (problem !== null) add(['agreement', 'pointer'], problem);
    }
  });
  return { problems, schemas };
}

/** A schema file larger than this is not read. */
const MAX_SCHEMA_BYTES = 16 * 1_048_576;

/** The schema object, or the problem with it. */
function schemaOf(value: unknown, baseDir: string): object | string {
  let schema: unknown = value;
  if (typeof value === 'string') {
    if (value === '') return 'must be a JSON Schema (a mapping) or the path of a file holding one';
    const path = isAbsolute(value) ? value : resolve(baseDir, value);
    let text: string;
    try {
      // Only a regular file: a device or a pipe (/dev/zero, a FIFO) may never end.
      const stat = statSync(path);
      if (stat.isDirectory()) return `cannot read ${path}: is a directory`;
      if (!stat.isFile()) return `cannot read ${path}: not a regular file`;
      if (stat.size > MAX_SCHEMA_BYTES) return `cannot read ${path}: over ${MAX_SCHEMA_BYTES / 1_048_576} MiB`;
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`;
    }
    try {
      schema = JSON.parse(text);
    } catch (err) {
      return `${path} is not JSON: ${(err as Error).message}`;
    }
  } else if (!isObj(value) && typeof value !== 'boolean') {
    return 'must be a JSON Schema (a mapping) or the path of a file holding one';
  }
  const problem = schemaProblem(schema);
  return problem === null ? (schema as object) : problem;
}
