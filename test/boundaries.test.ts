import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import t from 'tap';
import tseslint from 'typescript-eslint';

// The module boundaries of DESIGN.md and the import-circle rule are lint rules (eslint.config.js,
// run by `npm test`): here each is shown to catch what it forbids, and the sources to keep them.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const config = (await import(join(ROOT, 'eslint.config.js'))) as { boundaries: Linter.Config[]; noImportCycle: unknown };

function linter(rules: Linter.Config[]): ESLint {
  return new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...rules],
  });
}

const boundaries = linter(config.boundaries);
const forbidden = async (file: string, code: string): Promise<string[]> =>
  (await boundaries.lintText(code, { filePath: join(ROOT, file) }))[0]?.messages.map((m) => m.message) ?? [];

const CASES: { file: string; spec: string; why: RegExp }[] = [
  { file: 'src/traffic/x.ts', spec: '../proxy/upstream.js', why: /picker is pure/ },
  { file: 'src/stats/x.ts', spec: '../rollout/phases.js', why: /windows are pure/ },
  { file: 'src/judge/x.ts', spec: 'node:fs', why: /no I\/O/ },
  { file: 'src/judge/x.ts', spec: 'fastify', why: /no I\/O/ },
  { file: 'src/rollout/x.ts', spec: 'fastify', why: /no HTTP framework/ },
  { file: 'src/proxy/x.ts', spec: '../rollout/route-controller.js', why: /imports no decision code/ },
  { file: 'src/proxy/x.ts', spec: '../judge/route-judge.js', why: /imports no decision code/ },
  { file: 'src/admin/x.ts', spec: '../proxy/gateway.js', why: /never the data plane/ },
];

for (const c of CASES) {
  t.test(`${c.file} may not import ${c.spec}`, async (t) => {
    const messages = await forbidden(c.file, `import { x } from '${c.spec}';\nexport const y = x;\n`);
    t.match(messages.join('\n'), c.why, 'the lint rule names the boundary');
  });
}

t.test('what the boundaries allow', async (t) => {
  t.same(await forbidden('src/judge/x.ts', "import type { Outcome } from '../proxy/outcome.js';\nexport type O = Outcome;\n"), [], 'judge reads the outcome type');
  t.same(await forbidden('src/rollout/x.ts', "import { RouteJudge } from '../judge/route-judge.js';\nexport const J = RouteJudge;\n"), [], 'rollout runs the judge');
});

t.test('the sources keep every boundary', async (t) => {
  const results = await boundaries.lintFiles(['src/**/*.ts']);
  const problems = results.flatMap((r) => r.messages.map((m) => `${r.filePath.slice(ROOT.length)}:${m.line} ${m.message}`));
  t.same(problems, [], 'no forbidden import under src/');
});

t.test('the import-circle rule finds a circle, type imports included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-cycle-'));
  writeFileSync(join(dir, 'a.ts'), "import type { B } from './b.js';\nexport interface A { b: B }\n");
  writeFileSync(join(dir, 'b.ts'), "import { c } from './c.js';\nexport interface B { c: typeof c }\n");
  writeFileSync(join(dir, 'c.ts'), "import type { A } from './a.js';\nexport const c = 1 as unknown as A;\n");
  writeFileSync(join(dir, 'd.ts'), "import { c } from './c.js';\nexport const d = c;\n");
  const cycles = new ESLint({
    cwd: dir,
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser }, plugins: { rollgate: { rules: { 'no-import-cycle': config.noImportCycle } } } as Linter.Config['plugins'], rules: { 'rollgate/no-import-cycle': 'error' } }],
  });
  const results = await cycles.lintFiles(['*.ts']);
  const by = Object.fromEntries(results.map((r) => [r.filePath.slice(dir.length + 1), r.messages.map((m) => m.message)]));
  t.match(by['a.ts'], [/import circle: a\.ts -> b\.ts -> c\.ts -> a\.ts/], 'a circle through a type import is reported');
  t.equal(by['b.ts']?.length, 1, 'on every module in it');
  t.same(by['d.ts'], [], 'a module that only imports into the circle is not in it');
});
