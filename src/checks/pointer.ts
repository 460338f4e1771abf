/** JSON Pointers (RFC 6901): parsed once from the config, then read from every compared answer. */

/** The reference tokens of `pointer`, or null when it is not a JSON Pointer. */
export function parsePointer(pointer: string): string[] | null {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return null;
  const tokens = pointer.slice(1).split('/');
  for (const t of tokens) if (/~[^01]|~$/.test(t)) return null;
  return tokens.map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Why `pointer` is not a JSON Pointer, or null when it is. */
export function pointerProblem(pointer: string): string | null {
  if (parsePointer(pointer) !== null) return null;
  return pointer.startsWith('/') ? 'must escape ~ as ~0 and / as ~1 (RFC 6901)' : 'must be a JSON Pointer: empty, or starting with / (RFC 6901)';
}

const NOTHING = Symbol('nothing');
export type Found = unknown;

/** The value at `tokens` in `doc`, or `undefined` when there is none. */
export function valueAt(doc: unknown, tokens: readonly string[]): unknown {
  let node: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(t)) return undefined;
      node = node[Number(t)] as unknown;
    } else if (typeof node === 'object' && node !== null) {
      node = Object.hasOwn(node, t) ? (node as Record<string, unknown>)[t] : NOTHING;
      if (node === NOTHING) return undefined;
    } else return undefined;
  }
  return node;
}
