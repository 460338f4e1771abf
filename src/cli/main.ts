#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Exit code of a usage error (as in verbs.ts, which is loaded only for the admin verbs). */
const EXIT_USAGE = 2;

const USAGE = `usage: rollgate <command> [options]

commands:
  serve --config FILE     run the gateway (data plane and admin plane)
  demo                    run a self-contained demo: model servers, gateway, traffic
  help                    print this text

  status [route]          routes: phase, split, versions, window stats; one route in detail
  deploy <route> --version LABEL --url URL [--weight PERCENT]
                          deploy a candidate (weight 0 unless given)
  weight <route> <percent>
                          set the candidate's share of traffic
  promote <route>         make the candidate stable
  rollback [route] [--version REVISION|LABEL]
                          roll a route back to its stable, or to a past revision;
                          without a route, roll back every route
  pause <route>           hold a route's step schedule
  resume <route>          continue it
  history <route>         revisions and events, newest first
  watch [--interval 1s] [--once]
                          live traffic, failure rate, p99 and phase per version

options:
  --json                  (admin commands) print the admin API's JSON answer
  --version               print the version

environment:
  ROLLGATE_ADMIN_URL      the admin API (default http://127.0.0.1:9090)
  ROLLGATE_ADMIN_TOKEN    its bearer token

exit codes: 0 ok, 1 refused by the gateway or gateway unreachable, 2 usage error
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usageError(message: string): number {
  process.stderr.write(`rollgate: ${message}\n\n${USAGE}`);
  return EXIT_USAGE;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? EXIT_USAGE : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  switch (command) {
    case 'serve': {
      let values;
      try {
        ({ values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true }));
      } catch (err) {
        return usageError((err as Error).message);
      }
      if (values.config === undefined) return usageError('serve needs --config FILE');
      // Before the gateway's modules load: starting them is most of what grows V8's heap.
      (await import('./memory-profile.js')).startLean();
      const { serve } = await import('./serve.js');
      return serve(values.config);
    }
    case 'demo': {
      const { demo } = await import('../demo/demo.js');
      return demo(rest);
    }
    default: {
      // The admin verbs and their HTTP client load only when one is asked for: `serve` and a
      // refused config start faster without them.
      const { runVerb, VERBS } = await import('./verbs.js');
      if (VERBS.has(command)) return runVerb(command, rest, { stdout: process.stdout, stderr: process.stderr, env: process.env });
      return usageError(`unknown command '${command}'`);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // No process.exit(): the process ends because everything it opened was closed.
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`rollgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
