import { request } from 'undici';

/** What an admin call answered: its status and its JSON body. */
export interface AdminAnswer {
  status: number;
  body: any;
}

/** Calls the admin API on `port` with the bearer `token`, a JSON body when there is one. */
export function adminApi(port: number, token: string) {
  return async (method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<AdminAnswer> => {
    const r = await request(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.statusCode, body: await r.body.json() };
  };
}
