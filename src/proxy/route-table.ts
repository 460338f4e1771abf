/** Longest-prefix matching of request paths to routes, on whole path segments. */
export interface Matchable {
  readonly pathPrefix: string;
}

/**
 * `/v1/models/sentiment` matches `/v1/models/sentiment`, `/v1/models/sentiment/predict`,
 * `/v1/models/sentiment:predict` (TensorFlow Serving and KServe v1 verbs) and
 * `/v1/models/sentiment?x=1`, not `/v1/models/sentiment-2`; a prefix ending in `/` matches
 * everything below it.
 */
export function prefixMatches(prefix: string, url: string): boolean {
  if (!url.startsWith(prefix)) return false;
  if (url.length === prefix.length || prefix.charCodeAt(prefix.length - 1) === 47) return true;
  const next = url.charCodeAt(prefix.length);
  return next === 47 /* / */ || next === 63 /* ? */ || next === 58 /* : */;
}

export class RouteTable<R extends Matchable> {
  readonly #routes: R[];

  constructor(routes: readonly R[]) {
    this.#routes = [...routes].sort((a, b) => b.pathPrefix.length - a.pathPrefix.length);
  }

  /** The route with the longest prefix matching `url` (origin-form request target), or null. */
  match(url: string): R | null {
    const routes = this.#routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i] as R;
      if (prefixMatches(r.pathPrefix, url)) return r;
    }
    return null;
  }
}
