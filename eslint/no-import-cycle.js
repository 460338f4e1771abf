// ESLint rule: no import circle among the project's own modules, type imports included
// (DESIGN.md: a circle of types still ties two modules into one).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const IMPORT = /^\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'|^\s*import\s+'(\.{1,2}\/[^']+)'/gm;

/** The TypeScript file a relative `.js` specifier names, or null outside the project's sources. */
function target(from, spec) {
  const ts = resolve(dirname(from), spec.replace(/\.js$/, '.ts'));
  return existsSync(ts) ? ts : null;
}

function importsOnDisk(file, cache) {
  let out = cache.get(file);
  if (out === undefined) {
    out = [];
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const t = target(file, m[1] ?? m[2]);
      if (t !== null) out.push(t);
    }
    cache.set(file, out);
  }
  return out;
}

/** A path of imports from `start` back to `goal`, or null. */
function pathBack(start, goal, cache) {
  const seen = new Set([start]);
  const stack = [[start, [start]]];
  while (stack.length > 0) {
    const [file, path] = stack.pop();
    for (const next of importsOnDisk(file, cache)) {
      if (next === goal) return path;
      if (!seen.has(next)) {
        seen.add(next);
        stack.push([next, [...path, next]]);
      }
    }
  }
  return null;
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid import circles among the project modules, type imports included' },
    schema: [],
    messages: { cycle: 'import circle: {{path}}' },
  },
  create(context) {
    const file = context.physicalFilename;
    const cache = new Map();
    const check = (node) => {
      if (node.source === null || node.source === undefined || typeof node.source.value !== 'string') return;
      const to = target(file, node.source.value);
      if (to === null) return;
      const back = pathBack(to, file, cache);
      if (back === null) return;
      const path = [file, ...back, file].map((f) => relative(context.cwd, f)).join(' -> ');
      context.report({ node, messageId: 'cycle', data: { path } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
  },
};
