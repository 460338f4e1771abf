import type { RouteState } from '../rollout/types.js';
import { AdminRefusal, AdminUnreachable, type AdminClient } from './admin-client.js';
import { frame } from './format.js';
import { describe, type Ctx } from './io.js';

/**
 * `rollgate watch`: polls GET /api/routes and redraws one frame in place on a terminal (appends
 * frames otherwise) until SIGINT or SIGTERM; with --once, one frame. Resolves with exit code 0.
 */
export async function watch(ctx: Ctx, client: AdminClient, intervalMs: number, once: boolean): Promise<number> {
  const tty = ctx.io.stdout.isTTY === true && !ctx.json;
  let previousLines = 0;
  let stopped = false;
  let wake: (() => void) | null = null;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    let first = true;
    while (!stopped) {
      let text: string;
      try {
        const answer = await client.get<{ routes: RouteState[] }>('/api/routes');
        text = ctx.json ? `${JSON.stringify(answer)}\n` : frame(answer.routes, new Date());
      } catch (err) {
        // The first frame decides the exit code; after that, say what went wrong and keep polling.
        if (first || once) throw err;
        if (!(err instanceof AdminRefusal || err instanceof AdminUnreachable)) throw err;
        text = ctx.json ? '' : `rollgate watch  ${new Date().toISOString()}\n${describe(err)}\n`;
        if (ctx.json) ctx.io.stderr.write(`rollgate: ${describe(err)}\n`);
      }
      first = false;
      if (stopped) break;
      if (tty) {
        // Cut lines to the terminal width, so that a wrapped line cannot throw off the cursor-up count.
        const columns = ctx.io.stdout.columns;
        if (columns !== undefined && columns > 0) text = text.split('\n').map((l) => (l.length > columns ? l.slice(0, columns) : l)).join('\n');
        if (previousLines > 0) ctx.out(`\x1b[${previousLines}A\x1b[0J`);
      }
      ctx.out(tty || ctx.json ? text : `${text}\n`);
      previousLines = text.split('\n').length - 1;
      if (once) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return 0;
}
