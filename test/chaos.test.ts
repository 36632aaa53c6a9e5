/**
 * The chaos harness: a short run with a fixed seed finds no violation, and the checker
 * reports each kind of violation in a history made by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { check, type CheckReport } from '../chaos/check.js';
import { planContent, type History, type HistoryRecord } from '../chaos/history.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Runs `npm run chaos` with `args`; answers its exit code, output and summary numbers. */
async function chaos(args: string[]): Promise<{ code: number | null; out: string; faults: number; operations: number; violations: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/run.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const summary = /faults injected (\d+), operations (\d+), violations (\d+)/.exec(out);
  assert.ok(summary, `no summary line:\n${out}`);
  return { code, out, faults: Number(summary[1]), operations: Number(summary[2]), violations: Number(summary[3]) };
}

/** A run found no violation, injected faults (`kinds` among them), and checked every invariant. */
function assertClean(r: Awaited<ReturnType<typeof chaos>>, kinds: RegExp[] = []): void {
  assert.equal(r.violations, 0, r.out);
  assert.equal(r.code, 0, r.out);
  assert.ok(r.faults > 0, `no fault injected:\n${r.out}`);
  assert.ok(r.operations > 0, `no operation:\n${r.out}`);
  for (let i = 1; i <= 5; i++) assert.match(r.out, new RegExp(`^invariant ${i} \\(.*\\): ok`, 'm'));
  for (const kind of kinds) assert.match(r.out, kind, `no such fault:\n${r.out}`);
}

test('a short chaos run with seed 1 injects faults and finds no violation', { timeout: 300_000 }, async () => {
  assertClean(await chaos(['--seed', '1', '--duration', '15s']));
});

test('sentinel lane: failovers with a lagging replica and under load, no excuse needed', { timeout: 300_000 }, async () => {
  const r = await chaos(['--topology', 'sentinel', '--seed', '1', '--duration', '10s']);
  assertClean(r, [/\] lagging-failover redis :\d+: its replica's link cut/, /\] failover redis :\d+: kill -9/]);
  assert.doesNotMatch(r.out, /excused/, 'nothing is excused with a replica acknowledging');
  assert.match(r.out, /windows without a replica, nothing acknowledged in them: (\d+) of \1 probe campaigns/);
});

test(
  'restore lane: Redis restarted from an older snapshot, the loss reported and nothing reused',
  {
    timeout: 300_000,
  },
  async () => {
    assertClean(await chaos(['--topology', 'restore', '--seed', '1', '--duration', '12s']), [/\] restore-snapshot redis-restored/]);
  },
);

test(
  'logcut lane: a server cut off past its change log tells its watchers with a snapshot',
  {
    timeout: 300_000,
  },
  async () => {
    assertClean(await chaos(['--topology', 'logcut', '--seed', '1', '--duration', '8s']), [/\] cut-past-log c3<->redis-cutoff/]);
  },
);

test('cluster lane: a Redis Cluster\'s primaries killed and paused, a loaded slot moved, no excuse needed', { timeout: 300_000 }, async () => {
  const r = await chaos(['--topology', 'cluster', '--seed', '1', '--duration', '10s']);
  assertClean(r, [
    /\] kill-primary redis :\d+: kill -9 \(serving shard\d/,
    /\] pause-primary redis :\d+: SIGSTOP \(serving shard\d/,
    /\] move-slot shard\d: slot \d+ moved with its keys/,
    /\] kill-server k\d: kill -9/,
  ]);
  // A leasehold cluster on each of the three shards.
  const primaries = new Set([...r.out.matchAll(/shard\d: cluster \S+, the shard of primary :(\d+)/g)].map((m) => m[1]));
  assert.equal(primaries.size, 3, r.out);
  assert.doesNotMatch(r.out, /excused/, 'nothing is excused with a replica acknowledging');
  assert.match(r.out, /windows without a replica, nothing acknowledged in them: (\d+) of \1 probe campaigns/);
});

const J1 = '11111111111111111111111111111111';
const J2 = '22222222222222222222222222222222';
const JOB = '33333333333333333333333333333333';
const JM = `jobmanager/${JOB}`;

/** Two contender processes of one setup: p1 leads the dispatcher (token 100) until 1000,
 * then p2 (token 200) from 1100; p1 leads the job manager (token 300) throughout. Every
 * write, change and read-back agrees: no violation. */
function cleanHistory(): History {
  const records: HistoryRecord[] = [
    { k: 'spawn', t: 0, proc: 'p1', setup: 'aof', role: 'contender', server: 'a1', contenders: { dispatcher: 'c1', [JM]: 'c1j' } },
    { k: 'spawn', t: 0, proc: 'p2', setup: 'aof', role: 'contender', server: 'a1', contenders: { dispatcher: 'c2', [JM]: 'c2j' } },
    { k: 'spawn', t: 0, proc: 'w', setup: 'aof', role: 'watcher', server: '*' },
    { k: 'ws', t: 5, proc: 'w', server: 'a1', type: 'snapshot', index: 1, leaders: { dispatcher: null, resourcemanager: null, rest: null } },
    { k: 'grant', t: 10, proc: 'p1', component: 'dispatcher', session: 's1', token: 100, contenderId: 'c1', sent: 8, until: 900 },
    { k: 'grant', t: 10, proc: 'p1', component: JM, session: 's3', token: 300, contenderId: 'c1j', sent: 8, until: 1900 },
    { k: 'ws', t: 11, proc: 'w', server: 'a1', type: 'change', index: 2, event: 'granted', component: 'dispatcher', leader: { c: 'c1', s: 's1', t: 100, a: null } },
    { k: 'ws', t: 11, proc: 'w', server: 'a1', type: 'change', index: 3, event: 'granted', component: JM, leader: { c: 'c1j', s: 's3', t: 300, a: null } },
    { k: 'valid', t: 300, proc: 'p1', component: 'dispatcher', session: 's1', until: 1000 },
    ...op({ proc: 'p1', seq: 1, owner: 'dispatcher', op: 'putPlan', token: 100, jobId: J1, sent: 20, answered: 25, outcome: 'ok' }),
    ...op({ proc: 'p1', seq: 1, owner: JM, op: 'increment', token: 300, jobId: JOB, value: 1, sent: 30, answered: 31, outcome: 'ok' }),
    ...op({ proc: 'p1', seq: 2, owner: JM, op: 'addCheckpoint', token: 300, jobId: JOB, checkpointId: 1, sent: 32, answered: 33, outcome: 'ok' }),
    ...op({ proc: 'p1', seq: 3, owner: JM, op: 'increment', token: 300, jobId: JOB, value: 2, sent: 40, answered: 41, outcome: 'ok' }),
    ...op({ proc: 'p1', seq: 4, owner: JM, op: 'addCheckpoint', token: 300, jobId: JOB, checkpointId: 2, sent: 42, answered: 43, outcome: 'ok' }),
    { k: 'revoke', t: 1000, proc: 'p1', component: 'dispatcher', reason: 'unconfirmed' },
    { k: 'ws', t: 1050, proc: 'w', server: 'a1', type: 'change', index: 4, event: 'expired', component: 'dispatcher', leader: null },
    { k: 'grant', t: 1100, proc: 'p2', component: 'dispatcher', session: 's2', token: 200, contenderId: 'c2', sent: 1060, until: 2000 },
    { k: 'ws', t: 1101, proc: 'w', server: 'a1', type: 'change', index: 5, event: 'granted', component: 'dispatcher', leader: { c: 'c2', s: 's2', t: 200, a: null } },
    ...op({ proc: 'p2', seq: 1, owner: 'dispatcher', op: 'createResult', token: 200, jobId: J2, sent: 1200, answered: 1210, outcome: 'ok' }),
    // p1 kept its token: refused, as it must be.
    ...op({ proc: 'p1', seq: 2, owner: 'dispatcher', op: 'createResult', token: 100, jobId: J1, sent: 1300, answered: 1310, outcome: 'FencingTokenStale' }),
    { k: 'final', setup: 'aof', server: 'a1', t: 1500, index: 5, leaders: { dispatcher: { c: 'c2', s: 's2', t: 200, a: null }, resourcemanager: null, rest: null, [JM]: { c: 'c1j', s: 's3', t: 300, a: null } } },
    { k: 'log', setup: 'aof', entries: [[2, 'dispatcher'], [3, JM], [4, 'dispatcher'], [5, 'dispatcher']] },
    { k: 'readback', setup: 'aof', jobResults: [J2], plans: { [J1]: planContent(J1, 100) }, checkpoints: { [JOB]: [1, 2] }, counters: { [JOB]: 3 } },
    { k: 'health', setup: 'aof', server: 'a1', dataLossCount: 0, dataLossMetric: 0 },
    { k: 'readback', setup: 'volatile', jobResults: [], plans: {}, checkpoints: {}, counters: {} },
  ];
  return {
    version: 1,
    seed: 0,
    durationMs: 0,
    maxRetained: 1000,
    setups: {
      aof: { clusterId: 'c', persistent: true, servers: ['a1'], components: ['dispatcher', JM] },
      volatile: { clusterId: 'v', persistent: false, servers: [], components: [] },
    },
    records,
  };
}

function op(o: Omit<Extract<HistoryRecord, { k: 'op' }>, 'k'>): HistoryRecord[] {
  const { value: _v, answered: _a, outcome: _o, status: _s, ...sent } = o;
  return [{ k: 'send', ...sent }, { k: 'op', ...o }];
}

function violationsOf(report: CheckReport, id: number): string[] {
  return report.results.find((r) => r.id === id)!.violations;
}

test('the checker finds nothing wrong in a clean history', () => {
  const report = check(cleanHistory());
  assert.deepEqual(report.results.flatMap((r) => r.violations), []);
  assert.equal(report.violations, 0);
});

test('the checker reports overlapping leaderships', () => {
  const h = cleanHistory();
  // p2 granted while p1 still believed it led (until 1000).
  const grant = h.records.find((r) => r.k === 'grant' && r.proc === 'p2') as Extract<HistoryRecord, { k: 'grant' }>;
  grant.t = 950;
  grant.sent = 940;
  const v = violationsOf(check(h), 1);
  assert.equal(v.length, 1, v.join('\n'));
  assert.match(v[0], /aof\/dispatcher: p1 \(token 100\) believed it led until 50\.0 ms after p2 \(token 200\)/);
});

test('the checker reports a write accepted with a stale token', () => {
  const h = cleanHistory();
  const stale = h.records.find((r) => r.k === 'op' && r.outcome === 'FencingTokenStale') as Extract<HistoryRecord, { k: 'op' }>;
  stale.outcome = 'ok';
  h.records.find((r): r is Extract<HistoryRecord, { k: 'readback' }> => r.k === 'readback' && r.setup === 'aof')!.jobResults.push(J1);
  const v = violationsOf(check(h), 2);
  assert.equal(v.length, 1, v.join('\n'));
  assert.match(v[0], /createResult 1{32} by p1 with token 100 was accepted though sent .* after that lease was over/);
});

test('the checker reports a refused write that was stored anyway', () => {
  const h = cleanHistory();
  h.records.find((r): r is Extract<HistoryRecord, { k: 'readback' }> => r.k === 'readback' && r.setup === 'aof')!.jobResults.push(J1);
  const v = violationsOf(check(h), 5);
  assert.ok(v.some((x) => /createResult 1{32} by p1 was refused \(FencingTokenStale\) but is stored/.test(x)), v.join('\n'));
});

test('the checker reports a checkpoint id handed out twice', () => {
  const h = cleanHistory();
  h.records.push(...op({ proc: 'p1', seq: 5, owner: JM, op: 'increment', token: 300, jobId: JOB, value: 2, sent: 50, answered: 51, outcome: 'ok' }));
  h.records.push(...op({ proc: 'p1', seq: 6, owner: JM, op: 'addCheckpoint', token: 300, jobId: JOB, checkpointId: 2, sent: 52, answered: 53, outcome: 'ok' }));
  const v = violationsOf(check(h), 3);
  assert.ok(v.some((x) => /counter value of 3{32}: 2 handed out again to p1 \(first to p1\)/.test(x)), v.join('\n'));
  assert.ok(v.some((x) => /checkpoint id of 3{32}: 2 handed out again to p1 \(first to p1\)/.test(x)), v.join('\n'));
});

test('the checker reports tokens that do not rise, and a token of two sessions', () => {
  const h = cleanHistory();
  const grant = h.records.find((r) => r.k === 'grant' && r.proc === 'p2') as Extract<HistoryRecord, { k: 'grant' }>;
  grant.token = 100; // p1's token, again
  const v = violationsOf(check(h), 3);
  assert.ok(v.some((x) => /token 100 belongs to sessions s1 and s2/.test(x)), v.join('\n'));
  assert.ok(v.some((x) => /p2 was granted token 100 after p1 had been granted 100/.test(x)), v.join('\n'));
});

test('the checker reports a watcher that missed a change, or ended with another leader', () => {
  const h = cleanHistory();
  h.records = h.records.filter((r) => !(r.k === 'ws' && r.type === 'change' && r.index === 4));
  const final = h.records.find((r) => r.k === 'final') as Extract<HistoryRecord, { k: 'final' }>;
  final.leaders.dispatcher = { c: 'c1', s: 's1', t: 100, a: null };
  const v = violationsOf(check(h), 4);
  assert.ok(v.some((x) => /w@a1: after index 3 came 5, missing 4, with no snapshot/.test(x)), v.join('\n'));
  assert.ok(v.some((x) => /w@a1: ends with dispatcher led by session s2, the server answers s1/.test(x)), v.join('\n'));
});

test('the checker compares a watcher with its server as of the final answer, not with changes after it', () => {
  const h = cleanHistory();
  // The dispatcher's lease runs out just after the servers' final answers were recorded
  // (its contender keeps losing it on a loaded machine): the watcher is told, later.
  const at = h.records.findIndex((r) => r.k === 'final') + 1;
  h.records.splice(at, 0, { k: 'ws', t: 1502, proc: 'w', server: 'a1', type: 'change', index: 6, event: 'expired', component: 'dispatcher', leader: null });
  h.records.find((r): r is Extract<HistoryRecord, { k: 'log' }> => r.k === 'log')!.entries.push([6, 'dispatcher']);
  assert.deepEqual(violationsOf(check(h), 4), []);
  // With a replica acknowledging, and the log read before that change: not a rolled-back one.
  h.setups.aof!.durability = 'replicated';
  h.records.find((r): r is Extract<HistoryRecord, { k: 'log' }> => r.k === 'log')!.entries.pop();
  assert.deepEqual(violationsOf(check(h), 4), []);
  // Told before the final answer, it is a watcher that ends with another leader.
  const early = h.records.splice(at, 1)[0];
  h.records.splice(at - 1, 0, early);
  assert.ok(violationsOf(check(h), 4).some((x) => /w@a1: ends with dispatcher led by session null, the server answers s2/.test(x)));
});

test('the checker reports an acknowledged write lost with AOF, and a loss not reported', () => {
  const h = cleanHistory();
  const back = h.records.find((r): r is Extract<HistoryRecord, { k: 'readback' }> => r.k === 'readback' && r.setup === 'aof')!;
  back.checkpoints[JOB] = [1];
  h.setups.aof!.persistent = false;
  h.records.push({ k: 'fault', kind: 'kill-redis-volatile', setup: 'aof', target: 'redis', start: 35, dead: 36, end: 37 });
  // Written after the loss, so no loss explains it; and a1 never reported the loss.
  const v = violationsOf(check(h), 5);
  assert.ok(v.some((x) => /acknowledged checkpoint 3{32}\/2 is gone, and no loss of Redis data explains it/.test(x)), v.join('\n'));
  assert.ok(v.some((x) => /a1 reports 0 data losses \(metric 0\) after 1 kills/.test(x)), v.join('\n'));
});

test('the checker excuses an overlap after a loss only without persistence, never with a replica acknowledging', () => {
  const overlapping = (durability: 'none' | 'replicated') => {
    const h = cleanHistory();
    const grant = h.records.find((r) => r.k === 'grant' && r.proc === 'p2') as Extract<HistoryRecord, { k: 'grant' }>;
    grant.t = 950;
    grant.sent = 940;
    h.setups.aof!.durability = durability;
    h.records.push({ k: 'fault', kind: 'kill-redis-aof', setup: 'aof', target: 'redis', start: 500, dead: 501, end: 600 });
    return violationsOf(check(h), 1);
  };
  assert.deepEqual(overlapping('none'), []);
  const v = overlapping('replicated');
  assert.equal(v.length, 1, v.join('\n'));
  assert.match(v[0], /p1 \(token 100\) believed it led .* \(a replica acknowledged every write: nothing excuses it\)/);
});

test('the checker reports a write, a grant or a renewal acknowledged while no replica could hold it', () => {
  const h = cleanHistory();
  h.setups.aof!.durability = 'replicated';
  // p2's result (sent 1200, answered 1210) and p2's grant (sent 1060, answered 1100) fall in it.
  h.records.push({ k: 'fault', kind: 'no-replica', setup: 'aof', target: 'redis', start: 1050, end: 1250 });
  h.records.push({ k: 'probe', setup: 'aof', server: 'a1', what: 'campaign', sent: 1060, answered: 1070, status: 503 });
  h.records.push({ k: 'valid', t: 1150, proc: 'p2', component: 'dispatcher', session: 's2', sent: 1140, until: 2100 });
  h.records.push({ k: 'probe', setup: 'aof', server: 'a1', what: 'campaign', sent: 1080, answered: 1090, status: 200 });
  const report = check(h);
  const v = violationsOf(report, 5);
  assert.ok(v.some((x) => /createResult 2{32} by p2 was acknowledged though no replica could hold it/.test(x)), v.join('\n'));
  assert.ok(v.some((x) => /p2 was granted dispatcher \(token 200\) though no replica could hold the grant/.test(x)), v.join('\n'));
  assert.ok(v.some((x) => /a campaign sent to a1 while no replica could hold it answered 200, not 503/.test(x)), v.join('\n'));
  assert.ok(v.some((x) => /a renewal of dispatcher by p2 was acknowledged though no replica could hold it/.test(x)), v.join('\n'));
  assert.equal(v.length, 4, v.join('\n'));
});

test('the checker reports a restore from an older snapshot that lost acknowledged writes silently', () => {
  const restored = (reported: number) => {
    const h = cleanHistory();
    h.setups.aof!.durability = 'restored';
    h.setups.aof!.persistent = false;
    // Checkpoint 2 (answered at 43) came after the snapshot (taken at 36) and is gone.
    h.records.find((r): r is Extract<HistoryRecord, { k: 'readback' }> => r.k === 'readback' && r.setup === 'aof')!.checkpoints[JOB] = [1];
    h.records.push({ k: 'fault', kind: 'restore-snapshot', setup: 'aof', target: 'redis', start: 50, dead: 51, end: 52, taken: 36 });
    const health = h.records.find((r): r is Extract<HistoryRecord, { k: 'health' }> => r.k === 'health')!;
    health.dataLossCount = health.dataLossMetric = reported;
    return check(h);
  };
  const silent = violationsOf(restored(0), 5);
  assert.equal(silent.length, 1, silent.join('\n'));
  assert.match(silent[0], /1 restores of an older snapshot lost acknowledged writes, and the servers report at most 0 data losses \(a1 0\): a silent loss/);
  const told = restored(1);
  assert.equal(told.violations, 0, told.results.flatMap((r) => r.violations).join('\n'));
  assert.match(told.results[4].summary, /1 of them lost \(aof: 1 restores of an older snapshot, 1 of them losing acknowledged writes\), the loss reported/);
});

test('the checker reports a server cut off past its log that told its watchers no snapshot', () => {
  const h = cleanHistory();
  h.records.push({ k: 'fault', kind: 'cut-past-log', setup: 'aof', target: 'a1', start: 1020, end: 1040, changes: 15 });
  const v = violationsOf(check(h), 4);
  assert.ok(v.some((x) => /w@a1: no snapshot after 15 changes went by while a1's link was cut/.test(x)), v.join('\n'));
  // Told with a snapshot at an index above what it had: fine.
  const last = h.records.findIndex((r) => r.k === 'ws' && r.type === 'change' && r.index === 5);
  h.records.splice(last + 1, 0, { k: 'ws', t: 1102, proc: 'w', server: 'a1', type: 'snapshot', index: 6, leaders: { dispatcher: { c: 'c2', s: 's2', t: 200, a: null }, [JM]: { c: 'c1j', s: 's3', t: 300, a: null } } });
  const report = check(h);
  assert.deepEqual(violationsOf(report, 4), []);
  assert.match(report.results[3].summary, /1 resyncs past the change log told by a snapshot with a new index/);
});

test('the checker takes a change a failover rolled back as never acknowledged, if a snapshot came next', () => {
  const rolledBack = (snapshot: boolean) => {
    const h = cleanHistory();
    h.setups.aof!.durability = 'replicated';
    // w, after index 3, was told index 7 (published by a primary that a failover then rolled
    // back; not in the log), then, instead of 4 and 5, a snapshot at 8.
    h.records = h.records.filter((r) => !(r.k === 'ws' && r.type === 'change' && r.index >= 4));
    const at = h.records.findIndex((r) => r.k === 'ws' && r.type === 'change' && r.index === 3) + 1;
    const told: HistoryRecord[] = [{ k: 'ws', t: 1040, proc: 'w', server: 'a1', type: 'change', index: 7, event: 'expired', component: JM, leader: null }];
    if (snapshot) told.push({ k: 'ws', t: 1150, proc: 'w', server: 'a1', type: 'snapshot', index: 8, leaders: { dispatcher: { c: 'c2', s: 's2', t: 200, a: null }, [JM]: { c: 'c1j', s: 's3', t: 300, a: null } } });
    h.records.splice(at, 0, ...told);
    // The log holds a change after it (made after the final answers: no watcher was told).
    h.records.find((r): r is Extract<HistoryRecord, { k: 'log' }> => r.k === 'log')!.entries.push([9, 'resourcemanager']);
    // p1 still leads the job manager, and writes after the rolled-back expiry.
    h.records.push(...op({ proc: 'p1', seq: 5, owner: JM, op: 'increment', token: 300, jobId: JOB, value: 3, sent: 1200, answered: 1210, outcome: 'ok' }));
    h.records.find((r): r is Extract<HistoryRecord, { k: 'readback' }> => r.k === 'readback' && r.setup === 'aof')!.counters[JOB] = 4;
    return check(h);
  };
  const ok = rolledBack(true);
  assert.equal(ok.violations, 0, ok.results.flatMap((r) => r.violations).join('\n'));
  assert.match(ok.results[3].summary, /1 of them rolled back by a failover/);
  // Not a sighting that ends the job manager's lease: its later writes stay fine.
  assert.deepEqual(violationsOf(ok, 2), []);
  const v = violationsOf(rolledBack(false), 4);
  assert.ok(v.some((x) => /w@a1: ends on change 7, which a failover rolled back, with no snapshot after it/.test(x)), v.join('\n'));
});
