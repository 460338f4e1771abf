import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { field, type Problem } from './rules.js';
import type { TlsConfig } from './types.js';

/** A certificate or key file larger than this is not read. */
const MAX_PEM_BYTES = 1_048_576;

/**
 * `listen.tls`: reads the certificate and key (paths relative to the config file's folder), so
 * that a missing or unreadable file, or one that holds no PEM block, stops the start with its key
 * path. Returns the problems, and the PEM text when both files were read.
 */
export function resolveTls(raw: unknown, baseDir: string): { problems: Problem[]; tls: TlsConfig | null } {
  const problems: Problem[] = [];
  const tls = field(field(raw, 'listen'), 'tls');
  const certPath = field(tls, 'cert');
  const keyPath = field(tls, 'key');
  if (typeof certPath !== 'string' || typeof keyPath !== 'string' || certPath === '' || keyPath === '') return { problems, tls: null };
  const read = (key: 'cert' | 'key', value: string, marker: RegExp): string | null => {
    const path = isAbsolute(value) ? value : resolve(baseDir, value);
    const problem = (message: string): null => {
      problems.push({ path: ['listen', 'tls', key], message });
      return null;
    };
    try {
      const stat = statSync(path);
      if (stat.isDirectory()) return problem(`cannot read ${path}: is a directory`);
      if (!stat.isFile()) return problem(`cannot read ${path}: not a regular file`);
      if (stat.size > MAX_PEM_BYTES) return problem(`cannot read ${path}: over 1 MiB`);
      const text = readFileSync(path, 'utf8');
      return marker.test(text) ? text : problem(`${path} holds no PEM ${key === 'cert' ? 'certificate' : 'private key'}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return problem(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
  };
  const cert = read('cert', certPath, /-----BEGIN CERTIFICATE-----/);
  const key = read('key', keyPath, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  if (cert === null || key === null) return { problems, tls: null };
  const problem = unusable(cert, key);
  if (problem !== null) {
    problems.push(problem);
    return { problems, tls: null };
  }
  return { problems, tls: { certPath, keyPath, cert, key } };
}

/** Whether OpenSSL takes the certificate, then the key with it: the problem with the key path, or null. */
function unusable(cert: string, key: string): Problem | null {
  try {
    createSecureContext({ cert });
  } catch (err) {
    return { path: ['listen', 'tls', 'cert'], message: `is not a usable certificate: ${(err as Error).message}` };
  }
  try {
    createSecureContext({ cert, key });
    return null;
  } catch (err) {
    const mismatch = (err as NodeJS.ErrnoException).code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH';
    return { path: ['listen', 'tls', 'key'], message: mismatch ? 'does not match the certificate in listen.tls.cert' : `is not a usable private key: ${(err as Error).message}` };
  }
}
