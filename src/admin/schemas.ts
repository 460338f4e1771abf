/** JSON Schemas of the admin API's answers (SPEC §6), for validation-free fast serialisation and /docs. */

const version = {
  type: 'object',
  properties: { version: { type: 'string' }, revision: { type: 'integer' }, url: { type: 'string' } },
  required: ['version', 'revision', 'url'],
} as const;

const window = {
  type: ['object', 'null'],
  properties: {
    count: { type: 'integer' },
    failures: { type: 'integer' },
    failuresByKind: { type: 'object', additionalProperties: { type: 'integer' } },
    failureRate: { type: 'number' },
    rate: { type: 'number' },
    latencyMs: { type: 'object', additionalProperties: { type: ['number', 'null'] } },
  },
} as const;

export const routeState = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    phase: { type: 'string', enum: ['stable', 'shadowing', 'progressing', 'paused', 'rolled_back'] },
    weight: { type: 'number' },
    strategy: { type: 'string', enum: ['canary', 'blueGreen', 'shadow'] },
    stable: { type: 'object', properties: { ...version.properties, healthy: { type: 'boolean' } } },
    candidate: {
      type: ['object', 'null'],
      properties: { ...version.properties, weight: { type: 'number' }, healthy: { type: 'boolean' } },
    },
    step: {
      type: ['object', 'null'],
      properties: { index: { type: 'integer' }, weight: { type: 'number' }, bakeEndsAt: { type: ['string', 'null'] }, count: { type: 'integer' } },
    },
    bake: {
      type: ['object', 'null'],
      properties: { stage: { type: 'string' }, endsAt: { type: ['string', 'null'] }, remainingMs: { type: 'number' } },
    },
    mirrorPercent: { type: 'number' },
    windows: { type: 'object', properties: { stable: window, candidate: window } },
    lastDecision: {
      type: ['object', 'null'],
      properties: {
        reason: { type: 'string' },
        at: { type: 'string' },
        message: { type: 'string' },
        evidence: { type: ['object', 'null'], additionalProperties: true },
      },
    },
  },
  required: ['name', 'phase', 'weight', 'stable', 'candidate', 'step', 'windows', 'lastDecision'],
} as const;

export const routesList = {
  type: 'object',
  properties: { routes: { type: 'array', items: routeState } },
  required: ['routes'],
} as const;

export const fullRollback = {
  type: 'object',
  properties: { rolledBack: { type: 'array', items: { type: 'string' } }, routes: { type: 'array', items: routeState } },
} as const;

export const history = {
  type: 'object',
  properties: {
    revisions: {
      type: 'array',
      items: {
        type: 'object',
        properties: { ...version.properties, deployedAt: { type: 'string' }, status: { type: 'string' } },
      },
    },
    events: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
} as const;

export const errorBody = {
  type: 'object',
  properties: {
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] },
  },
} as const;
