import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { MetricsReader } from '../metrics/recorder.js';
import type { Rollouts } from '../rollout/rollouts.js';
import { errorAnswers, EventsQuery } from './schemas.js';
import { StatusFeed, type StatsPayload } from './status-feed.js';

/**
 * GET /api/events: server-sent events, one per state change with the route's state after it;
 * with ?stats=true also a `stats` event every statsIntervalMs with each version's live figures.
 */
export function eventsRoute<U>(instance: FastifyInstance, rollouts: Rollouts<U>, metrics: MetricsReader | undefined, statsIntervalMs: number | undefined): void {
  const api = instance.withTypeProvider<TypeBoxTypeProvider>();
  const streams = new Set<ServerResponse>();
  const feed = new StatusFeed(
    () => rollouts.routes().map((c) => c.state()),
    metrics === undefined ? async () => [] : () => metrics.tallies(),
    statsIntervalMs,
  );
  api.addHook('preClose', async () => {
    feed.close();
    for (const res of streams) res.end();
  });
  api.get('/api/events', { schema: { querystring: EventsQuery, response: errorAnswers('ROLLGATE_BAD_REQUEST') } }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    streams.add(res);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': rollgate events\n\n');
    const unsubscribe = rollouts.subscribe((event, state) => {
      res.write(`event: ${event.type}\ndata: ${JSON.stringify({ event, state })}\n\n`);
    });
    const stopStats = req.query.stats === true ? feed.subscribe((p: StatsPayload) => res.write(`event: stats\ndata: ${JSON.stringify(p)}\n\n`)) : () => {};
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.raw.on('close', () => {
      clearInterval(ping);
      unsubscribe();
      stopStats();
      streams.delete(res);
    });
  });
}
