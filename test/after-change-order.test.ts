import t from 'tap';
import type { RouteConfig } from '../src/config/types.js';
import { Rollouts } from '../src/rollout/rollouts.js';
import type { RouteEvent } from '../src/rollout/types.js';
import { Picker, trafficState } from '../src/traffic/picker.js';
import { config } from './helpers/servers.js';

// After a state change, subscribers run in one fixed order (persist, metrics, notify, log, then
// the rest) whatever order they subscribed in; one that throws is logged at error with the event
// it failed on and never stops the others.

function setup() {
  const cfg = config([{ name: 'm', match: { pathPrefix: '/m' }, stable: { version: 'v1', url: 'http://127.0.0.1:9001' }, candidate: { version: 'v2', url: 'http://127.0.0.1:9002', weight: 10 } }]).routes[0] as RouteConfig;
  const errors: { obj: Record<string, unknown>; msg: string }[] = [];
  const picker = new Picker(cfg, trafficState('v1-pool', 'v1', 'v2-pool', 'v2', 10), () => 0.5);
  const rollouts = new Rollouts<string>({ routes: [{ config: cfg, picker, makeUpstream: (v) => `${v}-pool` }], logger: { error: (obj, msg) => errors.push({ obj: obj as Record<string, unknown>, msg }) } });
  return { rollouts, errors, picker };
}

const nextTick = () => new Promise((r) => setImmediate(r));

t.test('subscribers run persist, metrics, notify, log, then the rest, whatever order they came in', async (t) => {
  const { rollouts } = setup();
  const seen: string[] = [];
  rollouts.subscribe(() => seen.push('watch'));
  rollouts.on('log', () => seen.push('log'));
  rollouts.on('notify', () => seen.push('notify'));
  rollouts.on('metrics', () => seen.push('metrics'));
  rollouts.on('persist', () => seen.push('persist'));
  rollouts.route('m')?.rollback();
  await nextTick();
  t.same(seen, ['persist', 'metrics', 'notify', 'log', 'watch']);
});

t.test('a throwing subscriber is logged with its event and the others still run', async (t) => {
  const { rollouts, errors, picker } = setup();
  const delivered: RouteEvent[] = [];
  rollouts.on('persist', () => {
    throw new Error('disk full');
  });
  rollouts.on('notify', (e) => delivered.push(e));
  rollouts.on('log', (e) => delivered.push(e));
  rollouts.route('m')?.rollback();
  t.equal(picker.state.weightBp, 0, 'the rollback took effect in the call');
  await nextTick();
  t.equal(delivered.length, 2, 'notify and log still got the event');
  t.equal(errors.length, 1, 'one error line');
  t.match(errors[0], { msg: 'a persist subscriber failed on a route event', obj: { stage: 'persist', err: { message: 'disk full' }, event: { route: 'm', type: 'rollback', cause: 'manual', message: /rolled back/ } } });
});

t.test('an unsubscribed listener hears nothing more', async (t) => {
  const { rollouts } = setup();
  let n = 0;
  const off = rollouts.on('notify', () => n++);
  rollouts.route('m')?.setWeight(20);
  await nextTick();
  off();
  rollouts.route('m')?.setWeight(30);
  await nextTick();
  t.equal(n, 1);
});
