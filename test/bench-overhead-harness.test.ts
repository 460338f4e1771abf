import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import { cpuMicros, processTree, treeCpu, treeCpuSince } from '../bench/lib.js';
import { verdicts, type Results, type RoundResult } from '../bench/overhead-report.js';
import { layout } from '../bench/overhead-targets.js';

// A parent that forks a child which spends 300 ms of CPU (by its own clock, so a busy machine
// only makes it slower), says so, then idles until killed.
const CHILD = `const s = process.cpuUsage().user; while (process.cpuUsage().user - s < 300000); console.log('burnt'); setInterval(() => {}, 1000);`;
const PARENT = `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(CHILD)}], { stdio: ['ignore', 'inherit', 'inherit'] }); console.log('child', c.pid); setInterval(() => {}, 1000);`;

t.test('the process tree of a gateway-like parent holds its child, and its CPU counts', { skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  const parent = spawn(process.execPath, ['-e', PARENT], { stdio: ['ignore', 'pipe', 'inherit'] });
  let child: number | null = null;
  t.teardown(() => {
    parent.kill('SIGKILL');
    if (child !== null) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  let out = '';
  parent.stdout.on('data', (c: Buffer) => (out += c.toString()));
  while (!out.includes('burnt')) await once(parent.stdout, 'data');
  child = Number(/child (\d+)/.exec(out)![1]);
  t.same(processTree(parent.pid!), [parent.pid, child], 'the parent, then its child');

  const before = treeCpu(parent.pid);
  t.same([...before.keys()].sort(), [parent.pid, child].sort(), 'a CPU figure for each process');
  const whole = treeCpuSince(new Map(), before)!;
  t.ok(whole - cpuMicros(parent.pid)! >= 300_000, `the child's 300 ms count in the tree's CPU (${Math.round(whole / 1000)} ms in all)`);
  t.ok(treeCpuSince(before, treeCpu(parent.pid))! < 100_000, 'an idle tree spends next to nothing between two snapshots');

  process.kill(child, 'SIGKILL');
  child = null;
  parent.kill('SIGKILL');
  await once(parent, 'exit');
  t.equal(treeCpuSince(before, treeCpu(parent.pid)), null, 'no figure once the tree is gone');
});

t.test('workers: 2 gets cores of its own only with 4 of them', async (t) => {
  t.match(layout(true, 2), { proxies: 0, workers: null, unmeasurable: /^2 CPUs: / });
  t.match(layout(true, 3), { proxies: 0, workers: null, unmeasurable: /^3 CPUs: / });
  t.match(layout(false, 8), { proxies: 0, workers: null, unmeasurable: /pinning is off/ });
  t.same(layout(true, 4), { cores: 4, proxies: 2, workers: [2, 3], unmeasurable: null });
});

const round = (rps: number, cpu: number): RoundResult => ({ rps, p50_ms: 1, p99_ms: 2, errors: 0, cpu_us_per_req: cpu, processes: 1 });

t.test('the targets line: CPU per request for workers: 1, and scaling only where it is measurable', async (t) => {
  const tp: Results = new Map([
    ['rollgate', [round(1000, 48), round(1100, 52), round(900, 49)]],
    ['rollgate-w2', [round(1700, 50), round(1800, 51), round(1500, 50)]],
    ['floor', [round(1200, 40), round(1300, 41), round(1000, 40)]],
  ]);
  const small = verdicts(tp, undefined, layout(true, 2));
  t.equal(small.targets.cpu_us_per_req_w1_le_50, true, 'the median round, 49 us');
  t.equal(small.targets.rollgate_own_cpu_us_per_req_lt_10, true, '9 us over the floor');
  t.equal(small.targets.workers_rps_ge_1_6x, null);
  t.match(small, { not_measurable: { workers_rps_ge_1_6x: /4 in all/ } });

  const big = verdicts(tp, undefined, layout(true, 4));
  t.equal(big.targets.workers_rps_ge_1_6x, true, '1.67x paired within rounds');
  t.notOk('not_measurable' in big);
  tp.set('rollgate-w2', [round(1500, 50), round(1800, 51), round(1400, 50)]);
  t.equal(verdicts(tp, undefined, layout(true, 4)).targets.workers_rps_ge_1_6x, false, '1.56x');
  t.equal(verdicts(undefined, undefined, layout(true, 2)).targets.cpu_us_per_req_w1_le_50, null, 'no throughput regime, no verdict');
});
