import { AdminRefusal, type AdminUnreachable } from './admin-client.js';

/** Where a verb writes, and the environment it reads its admin URL and token from. */
export interface VerbIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export interface Ctx {
  io: VerbIO;
  json: boolean;
  out: (text: string) => void;
}

export function printJson(ctx: Ctx, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** A refusal names its code and status, so that scripts can match on either. */
export function describe(err: AdminRefusal | AdminUnreachable): string {
  return err instanceof AdminRefusal ? `${err.message} (${err.code}, HTTP ${err.status})` : err.message;
}
