// ESLint, type-aware (typescript-eslint), with the module boundaries of DESIGN.md as rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import noImportCycle from './eslint/no-import-cycle.js';

export { noImportCycle };

const FASTIFY = ['fastify', 'fastify/*', '@fastify/*'];

/**
 * What a folder may not import, with the reason shown on a violation. One entry per folder: a
 * later `no-restricted-imports` for the same file would replace, not add to, an earlier one.
 */
const forbid = (dir, patterns, message) => ({
  files: [`src/${dir}/**`],
  rules: { 'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }] },
});

/** The boundaries of DESIGN.md (a test checks that each one catches what it forbids). */
export const boundaries = [
  forbid('traffic', [...FASTIFY, '**/proxy/*', '**/rollout/*', 'undici'], 'the picker is pure'),
  forbid('stats', [...FASTIFY, '**/proxy/!(outcome.js)', '**/rollout/*', 'undici'], 'windows are pure'),
  forbid('judge', [...FASTIFY, '**/proxy/!(outcome.js)', '**/rollout/*', 'undici', 'node:*'], 'decisions are pure: no I/O'),
  forbid('rollout', FASTIFY, 'the state machine knows no HTTP framework'),
  forbid('proxy', [...FASTIFY, '**/rollout/*', '**/judge/*'], 'the hot path hands outcomes to a sink and imports no decision code'),
  forbid('admin', ['**/proxy/*'], 'the admin API calls rollout/, never the data plane'),
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { rollgate: { rules: { 'no-import-cycle': noImportCycle } } },
    rules: {
      // Every import circle is a defect, type imports included.
      'rollgate/no-import-cycle': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Fastify's handlers and hooks are async functions by contract, with or without an await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  // Files stay under 300 lines (DESIGN.md habit 1); the status page is one inline document.
  { files: ['src/**/*.ts'], ignores: ['src/admin/status-page.ts'], rules: { 'max-lines': ['error', { max: 300 }] } },
  // Functions stay under 60 lines where the decisions and the hot path live.
  {
    files: ['src/rollout/**/*.ts', 'src/judge/**/*.ts', 'src/proxy/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }] },
  },
  ...boundaries,
  // Tests, benchmarks and the config itself.
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Tests and benchmarks read JSON answers and tap's callbacks as they come.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Assertion messages print whatever they are given.
      '@typescript-eslint/restrict-template-expressions': 'off',
      // A `let x = null` before try/finally is what the compiler's definite assignment asks for.
      'no-useless-assignment': 'off',
      // Helpers hand out bound functions, destructured where they are used.
      '@typescript-eslint/unbound-method': 'off',
      // `typeof import('rollgate')` is how a test names the package's shape.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
    },
  },
  { files: ['eslint.config.js', 'eslint/**/*.js', 'examples/**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  { files: ['examples/**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
);
