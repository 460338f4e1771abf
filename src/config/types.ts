/**
 * The gateway's configuration after validation and defaults: every duration in milliseconds,
 * every optional key filled in. The YAML shape users write is in config/rollgate.yaml and
 * SPEC §3; `loadConfigFile()` and `parseConfig()` turn it into this.
 */

import type { DataRef, Strategy } from '../shapes.js';

export type { Strategy };

export interface VersionConfig {
  /** Label users see in `x-rollgate-version`, e.g. `v7`. */
  version: string;
  /** Base URL of the upstream, http or https, no query or fragment. */
  url: string;
  /** The data snapshot this version was built for: sent upstream on its every request. */
  data: DataRef | null;
  /** How the gateway speaks to it: HTTP/1.1, HTTP/2 in cleartext (prior knowledge) or HTTP/2 over TLS. */
  protocol?: UpstreamProtocol;
}

export type UpstreamProtocol = 'http1' | 'h2c' | 'h2';
/** `listen.memory`: how V8 is set for the gateway's processes (src/cli/memory-profile.ts). */
export type MemoryProfile = 'lean' | 'fast';

export interface CandidateConfig extends VersionConfig {
  /** Percent of live traffic, 0-100 with at most two decimals. */
  weight: number;
}

export interface StepConfig {
  weight: number;
  bakeMs: number;
}

export type StickyConfig = { kind: 'header'; name: string } | { kind: 'cookie'; name: string };

export interface HealthCheckConfig {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  unhealthyAfter: number;
}

/** What a hook does (SPEC §9): run a program (never through a shell) or POST the event as JSON. */
export type HookAction =
  | { kind: 'exec'; command: string[]; timeoutMs: number; maxAttempts: number }
  | { kind: 'http'; url: string; timeoutMs: number; maxAttempts: number };

export const HOOK_EVENTS = ['beforeTraffic', 'afterRollback', 'afterPromote'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

export interface RollbackRules {
  alpha: number;
  consecutiveFailures: number;
  errorRate: { tolerance: number; maxAbsolute: number };
  latency: { quantiles: number[]; tolerance: number; minDeltaMs: number };
  warmup: number;
  windowMs: number;
}

/** What is checked of every 2xx answer of a route, whichever version gave it (SPEC §9). */
export interface ChecksConfig {
  /** The answer must parse as JSON and pass the schema (inline, or read from a file at load). */
  json: { schema: object; maxBytes: number; holdForReplay: boolean } | null;
  /** OpenAI-compatible chat and completions answers, streamed or not. */
  llm: { format: 'openai' } | null;
}

/** Comparing the candidate's answer with stable's to the same request (SPEC §9). */
export interface AgreementConfig {
  /** JSON Pointer of the compared value. */
  pointer: string;
  numericTolerance: number;
  /** The disagreement rate above which the candidate is rolled back, in (0, 1). */
  maxDisagreement: number;
  /** Canary routes: the share (percent) of candidate requests also copied to stable, only to compare. */
  mirrorPercent: number;
}

export interface RouteConfig {
  name: string;
  /** Normalised: starts with `/`; matched on whole path segments unless it ends in `/`. */
  pathPrefix: string;
  stable: VersionConfig;
  candidate: CandidateConfig | null;
  strategy: Strategy;
  /** Lower case: the header each upstream request carries its version's data snapshot id in. */
  dataHeader: string;
  steps: StepConfig[];
  autoPromote: boolean;
  blueGreen: { bakeMs: number };
  shadow: { mirrorPercent: number; bakeMs: number; maxInFlight: number; maxBodyBytes: number };
  sticky: StickyConfig | null;
  allowOverride: boolean;
  retryOnStable: boolean;
  maxReplayBodyBytes: number;
  /**
   * Upper case: the methods replayed on stable after a failure the candidate may have received
   * the request for (a 5xx, a reset, a timeout); null: every method. A request the candidate
   * never received is replayed whatever its method.
   */
  replayMethods: string[] | null;
  timeouts: { connectMs: number; responseMs: number };
  healthCheck: HealthCheckConfig | null;
  rollback: RollbackRules;
  checks: ChecksConfig;
  agreement: AgreementConfig | null;
  /** Data hooks by event, from the config file only. */
  hooks: Record<HookEvent, HookAction[]>;
  /** WebSocket connections: whether a rollback leaves the rolled-back version's open connections open. */
  websocket: { keepOnRollback: boolean };
}

export type StoreConfig =
  | { kind: 'memory' }
  | { kind: 'file'; path: string }
  | { kind: 'redis'; url: string; prefix: string; maxReplicas: number };

export interface WebhookConfig {
  kind: 'webhook';
  url: string;
}

/** `listen.tls`: the paths as written and the PEM text read from them at load. */
export interface TlsConfig {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

export interface GatewayConfig {
  /**
   * Data plane address and client limits: the whole request head within `headersTimeoutMs`, the
   * whole request (head and body) within `requestTimeoutMs`, and a kept-alive connection closed
   * after `idleTimeoutMs` without a request.
   */
  listen: { host: string; port: number; workers: number; memory: MemoryProfile; drainTimeoutMs: number; headersTimeoutMs: number; requestTimeoutMs: number; idleTimeoutMs: number; tls?: TlsConfig | null };
  admin: { host: string; port: number; tokenEnv: string };
  store: StoreConfig;
  notify: WebhookConfig[];
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  routes: RouteConfig[];
}
