/**
 * Yardsticks for `bench:judge`: the expected number of candidate requests Wald's sequential
 * probability ratio test needs to reject H0 for H1 when it knows both hypotheses exactly, at the
 * same alpha as the judge's test. Wald's approximation under H1 with a negligible beta:
 *
 *   E[N] ~ ln(1/alpha) / KL(p1 || p0)   observations,
 *
 * with KL the Kullback-Leibler divergence of one Bernoulli observation. No sequential test at
 * that alpha does much better on average, so a judge's mean time to trip is read as a multiple
 * of it. Pure functions, no I/O.
 *
 * Two references for a test against stable (the relative error test, the latency tests):
 *
 * - `knownStable`: an SPRT that knows stable's rate exactly, i.e. a one-sample test of the
 *   candidate's rate p1 against p0 = tolerance x stable's rate, on candidate requests alone.
 *   When stable's rate is 0 a single candidate event decides it: 1/p1 requests.
 * - `events`: an SPRT on what the judge's conditional test sees while stable's rate is unknown:
 *   for each counted event (a failure, a slow answer) which version it came from, the traffic
 *   share s known. Under the true ratio r = p1/ps an event is the candidate's with probability
 *   q1 = s r / (s r + 1 - s), under H0 with q0 = s tol / (s tol + 1 - s); ln(1/alpha) /
 *   KL(q1 || q0) events, over (s p1 + (1 - s) ps) / s events per candidate request.
 *
 * Which one a judge is held to: the larger. The origins of the events are a function of all the
 * traffic, so (Wald's approximations taken as exact) the SPRT that knows stable's rate never
 * needs more requests than the one on events; when stable's rate is 0 it needs one event, which
 * no test that must learn stable's rate from stable's traffic can approach. `events` is the
 * fewest requests a test with the judge's own information needs; `knownStable` is the floor
 * under that, and both are printed.
 */

/** KL(p1 || p0) of one Bernoulli observation, in nats; Infinity when p0 rules out what p1 allows. */
export function klBernoulli(p1: number, p0: number): number {
  const term = (a: number, b: number): number => (a === 0 ? 0 : b === 0 ? Infinity : a * Math.log(a / b));
  return term(p1, p0) + term(1 - p1, 1 - p0);
}

/**
 * Expected observations of Wald's SPRT of p0 against p1 (a rate of events per observation) at
 * level `alpha`, under H1. Infinity when p1 is not above p0 (no test of "at most p0" can reject
 * then). Never under 1/p1, the wait for the first event, without which no such test rejects:
 * that is all that is left of it when p0 = 0.
 */
export function sprtSampleSize(alpha: number, p1: number, p0: number): number {
  if (!(p1 > p0)) return Infinity;
  return Math.max(Math.log(1 / alpha) / klBernoulli(p1, p0), 1 / p1);
}

/** A test against a fixed rate (`maxAbsolute`, `maxDisagreement`): observations (requests, pairs) to reject. */
export function fixedRateReference(alpha: number, p1: number, p0: number): number {
  return sprtSampleSize(alpha, p1, p0);
}

/** The two references of a test against stable, in candidate requests, and which one a judge is held to. */
export interface StableReference {
  knownStable: number;
  events: number;
  /** The larger of the two (see the comment at the top). */
  used: 'knownStable' | 'events';
  requests: number;
}

/** The candidate's share of events when its rate is `ratio` x stable's, at traffic share `share`. */
export function eventShare(share: number, ratio: number): number {
  return (share * ratio) / (share * ratio + 1 - share);
}

/**
 * The SPRT on which version each event came from (stable's rate unknown, the share known), in
 * candidate requests. `ps` = 0: every event is the candidate's (q1 = 1).
 */
export function eventsReference(alpha: number, p1: number, ps: number, tolerance: number, share: number): number {
  const q0 = eventShare(share, tolerance);
  const q1 = ps === 0 ? (p1 > 0 ? 1 : 0) : eventShare(share, p1 / ps);
  const events = sprtSampleSize(alpha, q1, q0);
  const eventsPerCandidateRequest = (share * p1 + (1 - share) * ps) / share;
  return events / eventsPerCandidateRequest;
}

/**
 * A test of the candidate's rate `p1` against `tolerance` x stable's rate `ps` (the relative
 * error test; the latency tests at tolerance 1), at traffic share `share`.
 */
export function stableReference(alpha: number, p1: number, ps: number, tolerance: number, share: number): StableReference {
  const knownStable = sprtSampleSize(alpha, p1, tolerance * ps);
  const events = eventsReference(alpha, p1, ps, tolerance, share);
  const used = events >= knownStable ? 'events' : 'knownStable';
  return { knownStable, events, used, requests: Math.max(knownStable, events) };
}

/** The standard normal's upper tail P(Z > z), from erfc (relative error under 1.2e-7, tails included). */
export function normalUpperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  // Numerical Recipes' erfcc (Chebyshev fit).
  const poly =
    -x * x - 1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(poly);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/** z with P(Z <= z) = p, by bisection on `normalUpperTail` (so as accurate as it is: about 1e-7). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`quantile of ${p}`);
  let lo = -40;
  let hi = 40;
  for (let i = 0; i < 200 && hi - lo > 1e-13; i++) {
    const mid = (lo + hi) / 2;
    if (1 - normalUpperTail(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** A log-normal latency: its median (ms) and the standard deviation of its logarithm. */
export interface LogNormal {
  medianMs: number;
  sigma: number;
}

export function logNormalQuantile(d: LogNormal, q: number): number {
  return d.medianMs * Math.exp(d.sigma * normalQuantile(q));
}

/** P(X > x) for X log-normal. */
export function logNormalTail(d: LogNormal, x: number): number {
  return normalUpperTail(Math.log(x / d.medianMs) / d.sigma);
}

/**
 * One latency test's event rates, computed from the distributions rather than measured: the
 * threshold max(Q x tolerance, Q + minDelta) on stable's quantile Q, and how often each version
 * is slower than it.
 */
export function slowRates(stable: LogNormal, candidate: LogNormal, q: number, tolerance: number, minDeltaMs: number): { thresholdMs: number; ps: number; p1: number } {
  const quantile = logNormalQuantile(stable, q);
  const thresholdMs = Math.max(quantile * tolerance, quantile + minDeltaMs);
  return { thresholdMs, ps: logNormalTail(stable, thresholdMs), p1: logNormalTail(candidate, thresholdMs) };
}
