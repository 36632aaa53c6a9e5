/**
 * The SDK's LeaderElection against a real server process: two contender processes never
 * both believe they lead, over rounds of SIGSTOP, a blackholed network and quiet; and, in
 * process, its events, resign, renewals, and stepping down on 409 and on silence.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { LeadershipLostError, LeaseholdClient, NotLeaderError, type Cluster, type LeaderElection, type RevokeReason } from '../src/client/index.js';
import { ownRedisUrl, ServerProcess, sleep, uniqueCluster, waitFor } from './support/app.js';
import { TcpProxy } from './support/proxy.js';
import { stopAllRedis } from './support/redis.js';
import { ContenderProcess, sharedNow } from './support/sdkContender.js';

let server: ServerProcess;

before(async () => {
  server = await ServerProcess.start(null, { REDIS_URL: await ownRedisUrl() });
});

after(async () => {
  await server?.kill();
  await stopAllRedis();
});

const TTL = 1000;

function clusterOn(url: string, id = uniqueCluster('sdk')): Cluster {
  return new LeaseholdClient({ url }).cluster(id);
}

/** An election that resigns after the test, with its grants and revocations. */
function contender(t: TestContext, cluster: Cluster, options: Parameters<Cluster['election']>[0]) {
  const e = cluster.election(options);
  const log: Array<{ ev: 'granted'; at: number; session: string; token: number } | { ev: 'revoked'; at: number; reason: RevokeReason }> = [];
  e.on('granted', (session, token) => log.push({ ev: 'granted', at: performance.now(), session, token }));
  e.on('revoked', (reason) => log.push({ ev: 'revoked', at: performance.now(), reason }));
  t.after(() => e.resign());
  return { e, log };
}

interface ElectionEvents {
  granted: [session: string, token: number];
  revoked: [reason: RevokeReason];
}

/** The next event of `e` (not `events.once`, which rejects on the election's `error`
 * events: failed requests it retries by itself). */
function next<K extends keyof ElectionEvents>(e: LeaderElection, event: K, timeoutMs = 10_000): Promise<ElectionEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    const listener = (...args: ElectionEvents[K]) => {
      clearTimeout(timer);
      resolve(args);
    };
    e.once(event, listener as never);
  });
}

async function granted(e: LeaderElection, timeoutMs = 10_000): Promise<{ session: string; token: number }> {
  const [session, token] = await next(e, 'granted', timeoutMs);
  return { session, token };
}

interface Window {
  start: number;
  until: number;
}

/** What a process believed: from each grant to the latest `validUntil` it saw, cut short
 * by its revocation. */
function beliefWindows(p: ContenderProcess): Window[] {
  const windows: Window[] = [];
  let open: Window | null = null;
  for (const e of p.events) {
    if (e.ev === 'granted') {
      open = { start: e.at, until: e.at };
      windows.push(open);
    } else if (e.ev === 'valid') {
      assert.ok(open, `${p.name}: a leadership without a grant`);
      open.until = Math.max(open.until, e.until);
    } else if (e.ev === 'revoked' && open) {
      open.until = Math.min(open.until, e.at);
      open = null;
    }
  }
  return windows;
}

test('two SDK contender processes never both believe they lead, over rounds of SIGSTOP, blackholed network and quiet; fencing tokens only grow', { timeout: 120_000 }, async (t) => {
  const proxy = await TcpProxy.start(server.port);
  t.after(() => proxy.close());
  const cluster = uniqueCluster('safety');
  const spawnedAt = sharedNow();
  const direct = new ContenderProcess(t, 'direct', server.url, cluster, 'dispatcher', TTL);
  const proxied = new ContenderProcess(t, 'proxied', proxy.url, cluster, 'dispatcher', TTL);
  await waitFor(() => [direct, proxied].every((p) => p.events.some((e) => e.ev === 'up')), 20_000, 'both contenders campaign');
  const T0 = sharedNow();

  // Each fault round hands the lease over. The proxied contender, when it leads, is cut off
  // and paused in turn; the direct one can only be paused.
  const plan = ['fault', 'fault', 'quiet', 'fault', 'fault', 'quiet', 'fault', 'fault'] as const;
  const done: string[] = [];
  let cutNext = true;
  for (const intent of plan) {
    await waitFor(() => direct.leading !== proxied.leading, 5000, 'exactly one leader');
    const leader = direct.leading ? direct : proxied;
    const other = leader === direct ? proxied : direct;
    if (intent === 'quiet') {
      await sleep(TTL);
      done.push(`quiet (${leader.leading ? `${leader.name} kept it` : 'changed hands'})`);
      continue;
    }
    let kind: 'pause' | 'blackhole' = 'pause';
    if (leader === proxied) {
      kind = cutNext ? 'blackhole' : 'pause';
      cutNext = !cutNext;
    }
    const grantsBefore = other.grants.length;
    const revokedBefore = leader.revocations.length;
    const from = sharedNow();
    if (kind === 'pause') leader.signal('SIGSTOP');
    else proxy.blackhole();
    try {
      await sleep(1.5 * TTL);
      await waitFor(() => other.grants.length > grantsBefore, 5000, `${other.name} takes over while ${leader.name} is cut off (${kind})`);
    } finally {
      if (kind === 'pause') leader.signal('SIGCONT');
      else proxy.restore();
    }
    const to = sharedNow();
    const takeover = other.grants[grantsBefore];
    assert.ok(takeover.at > from && takeover.at < to, `${other.name} was granted during the ${kind}`);
    await waitFor(() => leader.revocations.length > revokedBefore, 5000, `${leader.name} steps down`);
    done.push(`${kind} ${leader.name} -> ${other.name} (${(sharedNow() - from).toFixed(0)} ms)`);
  }
  t.diagnostic(`started in ${(T0 - spawnedAt).toFixed(0)} ms; rounds: ${done.join('; ')}; total ${(sharedNow() - T0).toFixed(0)} ms`);
  assert.ok(done.filter((d) => d.startsWith('pause')).length >= 3, done.join('; '));
  assert.ok(done.some((d) => d.startsWith('pause proxied')), done.join('; '));
  assert.ok(done.filter((d) => d.startsWith('blackhole')).length >= 2, done.join('; '));

  const stopAt = sharedNow();
  assert.deepEqual(await Promise.all([direct.stop(), proxied.stop()]), [0, 0], 'both resign and exit cleanly on SIGTERM');
  t.diagnostic(`stopped in ${(sharedNow() - stopAt).toFixed(0)} ms`);
  assert.ok(direct.events.some((e) => e.ev === 'stopped') && proxied.events.some((e) => e.ev === 'stopped'));

  const [wd, wp] = [beliefWindows(direct), beliefWindows(proxied)];
  let closest = Infinity;
  for (const a of wd) {
    for (const b of wp) {
      closest = Math.min(closest, Math.max(b.start - a.until, a.start - b.until));
      assert.ok(a.until <= b.start || b.until <= a.start, `overlap: direct [${a.start.toFixed(1)}, ${a.until.toFixed(1)}] proxied [${b.start.toFixed(1)}, ${b.until.toFixed(1)}]`);
    }
  }

  t.diagnostic(`belief windows: direct ${wd.length}, proxied ${wp.length}; closest hand-over gap ${closest.toFixed(1)} ms`);

  const grants = [...direct.grants, ...proxied.grants].sort((a, b) => a.at - b.at);
  for (let i = 1; i < grants.length; i++) {
    const [p, g] = [grants[i - 1], grants[i]];
    // The same lease granted back (a campaign after stepping down in time) keeps its token.
    if (g.session === p.session) assert.equal(g.token, p.token);
    else assert.ok(g.token > p.token, `token ${g.token} after ${p.token}`);
  }
});

test('granted and revoked events; resign releases the lease at once and the other contender is granted well under the TTL', { timeout: 30_000 }, async (t) => {
  const cluster = clusterOn(server.url);
  const a = contender(t, cluster, { component: 'dispatcher', ttlMs: 5000, contenderId: 'a', address: 'http://a:1' });
  const b = contender(t, cluster, { component: 'dispatcher', ttlMs: 5000, contenderId: 'b' });
  assert.throws(() => a.e.fencingToken(), (err: unknown) => err instanceof NotLeaderError && err.code === 'NotLeader');
  assert.equal(a.e.leadership, null);

  const grantA = granted(a.e.start());
  const { session, token } = await grantA;
  const l = a.e.leadership!;
  assert.equal(l.sessionId, session);
  assert.equal(l.fencingToken, token);
  assert.equal(a.e.fencingToken(), token);
  assert.equal(l.leader.contenderId, 'a');
  assert.equal(l.leader.address, 'http://a:1');
  const left = l.validUntil - performance.now();
  assert.ok(left > 0 && left <= 5000 - 500, `valid for ${left} ms: the TTL less the default margin at most`);
  assert.equal((await cluster.leader('dispatcher'))?.sessionId, session);
  assert.equal((await a.e.confirm('http://a:2')).address, 'http://a:2');
  assert.equal((await cluster.leader('dispatcher'))?.address, 'http://a:2');

  b.e.start();
  await sleep(500);
  assert.equal(b.e.isLeader(), false);
  assert.throws(() => b.e.fencingToken(), NotLeaderError);

  const grantB = granted(b.e);
  const t0 = performance.now();
  await a.e.resign();
  const g = await grantB;
  const ms = performance.now() - t0;
  assert.ok(ms < 1500, `b granted ${ms.toFixed(0)} ms after a resigned (TTL 5000)`);
  assert.ok(g.token > token);
  assert.deepEqual(a.log.map((e) => (e.ev === 'revoked' ? e.reason : e.ev)), ['granted', 'resigned']);
  assert.equal(a.e.isLeader(), false);
  assert.throws(() => a.e.fencingToken(), NotLeaderError);
  assert.equal((await cluster.leader('dispatcher'))?.contenderId, 'b');
});

test('renewals keep the lease over several TTLs', { timeout: 30_000 }, async (t) => {
  const cluster = clusterOn(server.url);
  const c = contender(t, cluster, { component: 'resourcemanager', ttlMs: TTL });
  const { session } = await granted(c.e.start());
  const firstUntil = c.e.leadership!.validUntil;
  await sleep(3 * TTL);
  assert.deepEqual(c.log.map((e) => e.ev), ['granted'], 'no revocation, no second grant');
  assert.equal(c.e.leadership?.sessionId, session);
  assert.ok(c.e.leadership!.validUntil > firstUntil + 2 * TTL, 'the leadership was extended');
  const onServer = await cluster.leader('resourcemanager');
  assert.equal(onServer?.sessionId, session);
});

test('a 409 NotLeader on renew revokes with "lost", aborts runWhileLeader with LeadershipLostError, and it campaigns again', { timeout: 30_000 }, async (t) => {
  const cluster = clusterOn(server.url);
  const c = contender(t, cluster, { component: 'rest', ttlMs: TTL, contenderId: 'victim' });
  const regranted = new Promise<{ session: string; token: number }>((resolve) =>
    c.e.on('granted', (session, token) => c.log.length > 1 && resolve({ session, token })),
  );
  const outcome = await c.e.runWhileLeader(async (signal, leadership) => {
    const onServer = await cluster.leader('rest');
    assert.equal(onServer?.sessionId, leadership.sessionId);
    // Someone else (a cleanup, an operator) releases the lease behind its back.
    assert.equal(await cluster.resign('rest', { contenderId: 'victim', sessionId: leadership.sessionId }), true);
    const t0 = performance.now();
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    return { reason: signal.reason as unknown, ms: performance.now() - t0, leadership };
  });
  assert.ok(outcome.reason instanceof LeadershipLostError, `aborted with ${String(outcome.reason)}`);
  assert.equal(outcome.reason.reason, 'lost');
  assert.equal(outcome.reason.code, 'LeadershipLost');
  assert.ok(outcome.ms < TTL, `noticed after ${outcome.ms.toFixed(0)} ms (next renewal)`);
  assert.deepEqual(c.log.slice(0, 2).map((e) => (e.ev === 'revoked' ? e.reason : e.ev)), ['granted', 'lost']);
  const again = await regranted;
  assert.notEqual(again.session, outcome.leadership.sessionId);
  assert.ok(again.token > outcome.leadership.fencingToken);
});

test('an unreachable server revokes with "unconfirmed" within the TTL of the last renewal that reached it, and it leads again once reachable', { timeout: 30_000 }, async (t) => {
  const proxy = await TcpProxy.start(server.port);
  t.after(() => proxy.close());
  // Over HTTP, whose requests the proxy sees (renewalStream.test.ts has the stream's case).
  const c = contender(t, clusterOn(proxy.url), { component: 'dispatcher', ttlMs: TTL, renewOver: 'http' });
  await granted(c.e.start());
  await sleep(700); // a renewal or two

  const revoked = next(c.e, 'revoked');
  proxy.blackhole();
  const cutAt = performance.now();
  const [reason] = await revoked;
  const revokedAt = performance.now();
  assert.equal(reason, 'unconfirmed');
  assert.equal(c.e.isLeader(), false);
  // The last renewal passed on to the server was applied no earlier than that: its lease
  // lasts at least a TTL from then.
  const last = proxy.requests.filter((r) => /\/(renew|campaign)$/.test(r.line)).at(-1)!;
  assert.match(last.line, /\/renew$/);
  assert.ok(revokedAt > cutAt, 'not before the cut');
  assert.ok(revokedAt < last.at + TTL, `revoked ${(revokedAt - last.at).toFixed(0)} ms after the last renewal reached the server (TTL ${TTL})`);

  proxy.restore();
  await granted(c.e, 10_000);
  assert.ok(c.e.isLeader());
});

test('runWhileLeader waits for a grant, and its signal follows the caller\'s signal', { timeout: 30_000 }, async (t) => {
  const cluster = clusterOn(server.url);
  const holder = contender(t, cluster, { component: 'dispatcher', ttlMs: 5000 });
  await granted(holder.e.start());
  const waiter = contender(t, cluster, { component: 'dispatcher', ttlMs: 5000 });
  let ran = false;
  const tooEarly = waiter.e.runWhileLeader(() => (ran = true), { signal: AbortSignal.timeout(300) });
  await assert.rejects(tooEarly, (err: Error) => err.name === 'TimeoutError');
  assert.equal(ran, false, 'no task without a leadership');

  await holder.e.resign();
  const stop = new AbortController();
  const task = waiter.e.runWhileLeader(async (signal, leadership) => {
    assert.equal(leadership.fencingToken, waiter.e.fencingToken());
    setTimeout(() => stop.abort(new Error('shutting down')), 50);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    return signal.reason as Error;
  }, { signal: stop.signal });
  assert.equal((await task).message, 'shutting down');
});

test('runWhileLeader with an already aborted signal never hands the task a live signal', { timeout: 30_000 }, async (t) => {
  const cluster = clusterOn(server.url);
  const c = contender(t, cluster, { component: 'dispatcher', ttlMs: 5000 });
  await granted(c.e.start());
  const aborted = AbortSignal.abort(new Error('already stopped'));
  let live = false;
  await c.e
    .runWhileLeader((signal) => {
      live = !signal.aborted;
    }, { signal: aborted })
    .catch(() => {});
  assert.equal(live, false, 'the task ran with a signal that was not aborted although the caller\'s was');
});

test('runWhileLeader: after a pause past the end of the leadership, the task\'s signal is aborted when it next looks', { timeout: 30_000 }, async (t) => {
  const cluster = clusterOn(server.url);
  const c = contender(t, cluster, { component: 'dispatcher', ttlMs: TTL });
  const seen = await c.e.runWhileLeader(async (signal, leadership) => {
    const tick = new Promise((resolve) => setTimeout(resolve, 1)); // due long before the end
    // A pause (GC, a blocked loop, a stopped VM) until well past the leadership's end.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, leadership.validUntil - performance.now() + 300);
    await tick;
    return { leading: c.e.isLeader(), aborted: signal.aborted };
  });
  assert.equal(seen.leading, false, 'the leadership is over');
  assert.equal(seen.aborted, true, 'the task\'s signal still says it leads');
});
