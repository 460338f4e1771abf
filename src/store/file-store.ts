import { mkdir, open, readFile, rename, copyFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RecordError } from './record-check.js';
import { savedState } from './records.js';
import { StoreError, type PersistedState, type StateStore } from './state-store.js';

/**
 * Route state in one JSON file, written atomically: a temp file beside it, fsync, rename, so a
 * crash at any moment leaves either the old file or the new one, never half of either. The
 * previous good copy is kept as `<path>.prev`. A file that exists but cannot be read or parsed
 * stops the start: falling back to the config could bring a rolled-back candidate back. So does
 * one whose content does not match the saved state's schema (records.ts), naming the bad key.
 */
export class FileStore implements StateStore {
  readonly kind = 'file';
  readonly path: string;
  #seq = 0;

  constructor(path: string) {
    this.path = path;
  }

  async load(): Promise<PersistedState | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      throw new StoreError(`cannot read state file ${this.path}: ${code ?? (err as Error).message}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new StoreError(`state file ${this.path} is corrupt (${(err as Error).message}); the previous good copy is ${this.path}.prev`, { cause: err });
    }
    const p = parsed as Partial<PersistedState> | null;
    if (p === null || typeof p !== 'object' || p.format !== 1 || typeof p.routes !== 'object' || p.routes === null) {
      throw new StoreError(`state file ${this.path} is not a rollgate state file (format 1); the previous good copy is ${this.path}.prev`);
    }
    // A state file of ours with a bad value in it (edited by hand, written by a newer or broken
    // version) stops the start as a corrupt one does: applying part of it could route to anything.
    try {
      return savedState(p, `state file ${this.path}`);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      throw new StoreError(`${err.message}; the previous good copy is ${this.path}.prev`);
    }
  }

  async save(state: PersistedState): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.${++this.#seq}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await copyFile(this.path, `${this.path}.prev`).catch(() => undefined);
    await rename(tmp, this.path);
  }
}
