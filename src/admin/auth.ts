import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The admin token: from the environment variable `admin.tokenEnv` names, or, when that is unset
 * or empty, a random one made at start (and printed once on stderr by the caller), so that the
 * admin API is never open.
 */
export function adminToken(env: NodeJS.ProcessEnv, name: string): { token: string; generated: boolean } {
  const given = env[name];
  if (given !== undefined && given !== '') return { token: given, generated: false };
  return { token: randomBytes(24).toString('base64url'), generated: true };
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Compares an Authorization header with the token in constant time (hashes hide the length). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice(7)), digest(token));
}

/**
 * Whether a request is an `/api` call, which needs the token. The router decodes the path before
 * it matches (`/%61pi/routes` is `/api/routes`), so the route it matched decides, and for a path
 * no route matched, the path decoded the same way: no spelling of an /api path goes without.
 */
export function isApiCall(url: string, matched: string | undefined, apiPrefix: string): boolean {
  if (matched?.startsWith(apiPrefix) === true || url.startsWith(apiPrefix)) return true;
  const path = url.split('?', 1)[0] ?? '';
  try {
    return decodeURIComponent(path).startsWith(apiPrefix);
  } catch {
    return false;
  }
}
