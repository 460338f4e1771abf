import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

// The module boundaries of DESIGN.md, checked on the TypeScript sources.
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function importsOf(dir: string): { file: string; spec: string }[] {
  const out: { file: string; spec: string }[] = [];
  // Subfolders too (judge/rules/): a boundary holds for a module's whole tree.
  for (const name of readdirSync(join(SRC, dir), { recursive: true, encoding: 'utf8' })) {
    if (!name.endsWith('.ts')) continue;
    const text = readFileSync(join(SRC, dir, name), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from\s+'([^']+)'/gm)) out.push({ file: `${dir}/${name}`, spec: m[1] as string });
  }
  return out;
}

const RULES: { dir: string; forbidden: RegExp; why: string }[] = [
  { dir: 'traffic', forbidden: /fastify|\/proxy\/|\/rollout\/|^undici$/, why: 'the picker is pure' },
  { dir: 'stats', forbidden: /fastify|\/proxy\/(?!outcome)|\/rollout\/|^undici$/, why: 'windows are pure' },
  { dir: 'judge', forbidden: /fastify|\/proxy\/(?!outcome)|\/rollout\/|^undici$|^node:/, why: 'decisions are pure: no I/O' },
  { dir: 'rollout', forbidden: /fastify/, why: 'the state machine knows no HTTP framework' },
  { dir: 'proxy', forbidden: /\/rollout\/|\/judge\/|fastify/, why: 'the hot path hands outcomes to a sink and imports no decision code' },
];

for (const rule of RULES) {
  t.test(`src/${rule.dir} keeps its boundary: ${rule.why}`, (t) => {
    const bad = importsOf(rule.dir).filter((i) => rule.forbidden.test(i.spec));
    t.same(bad, [], 'no forbidden import');
    t.end();
  });
}

t.test('src/judge has no import circle, type imports included', (t) => {
  const edges = new Map<string, string[]>();
  for (const { file, spec } of importsOf('judge')) {
    if (!spec.startsWith('.')) continue;
    const target = posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts');
    if (!target.startsWith('judge/')) continue;
    edges.set(file, [...(edges.get(file) ?? []), target]);
  }
  const circles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of edges.keys()) visit(file, []);
  t.same(circles, [], 'no circle');
  t.ok(edges.size > 5, 'the judge modules were read');
  t.end();
});
