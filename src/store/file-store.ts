import { mkdir, open, readFile, rename, copyFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StoreError, type PersistedState, type StateStore } from './state-store.js';

/**
 * Route state in one JSON file, written atomically: a temp file beside it, fsync, rename, so a
 * crash at any moment leaves either the old file or the new one, never half of either. The
 * previous good copy is kept as `<path>.prev`. A file that exists but cannot be read or parsed
 * stops the start: falling back to the config could bring a rolled-back candidate back.
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
    return p as PersistedState;
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
