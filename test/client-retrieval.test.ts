/**
 * The SDK's LeaderRetrieval: every change once and in order across a server restart and a
 * Redis restart, reconnecting by itself; the long-poll fallback when upgrades are refused;
 * waitForLeader, leader(), all(), and `since`.
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { after, test, type TestContext } from 'node:test';
import { LeaseholdClient, UnavailableError, type Change, type Cluster, type Component, type LeaderRetrieval } from '../src/client/index.js';
import { randomJobId, ServerProcess, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor } from './support/app.js';
import { TcpProxy } from './support/proxy.js';
import { RedisProcess, stopAllRedis } from './support/redis.js';

after(() => stopAllRedis());

/** Everything a retrieval emits, in order. */
function record(t: TestContext, r: LeaderRetrieval) {
  const seen = {
    changes: [] as Change[],
    snapshots: [] as number[],
    leaders: [] as Array<[string, string | null]>,
    connected: [] as string[],
    disconnected: [] as string[],
  };
  r.on('change', (c) => seen.changes.push(c));
  r.on('snapshot', (_l, index) => seen.snapshots.push(index));
  r.on('leader', (component, leader) => seen.leaders.push([component, leader?.contenderId ?? null]));
  r.on('connected', (transport) => seen.connected.push(transport));
  r.on('disconnected', (reason) => seen.disconnected.push(reason));
  t.after(() => r.close());
  return seen;
}

type Expected = [event: string, component: string, contenderId: string | null];

/** Campaigns and resigns (long leases, so that nothing expires), each with the change it
 * must cause. A request answered 503 while Redis comes back is sent again: a holder
 * campaigning again, or resigning a released lease, changes nothing. */
function writer(cluster: Cluster) {
  const expected: Expected[] = [];
  const sessions = new Map<string, string>();
  const retrying = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof UnavailableError) || attempt >= 50) throw err;
        await sleep(100);
      }
    }
  };
  return {
    expected,
    async campaign(component: Component, contenderId: string): Promise<void> {
      const r = await retrying(() => cluster.campaign(component, { contenderId, ttlMs: 120_000 }));
      assert.ok(r.granted, `${contenderId} granted ${component}`);
      sessions.set(`${component} ${contenderId}`, r.leader.sessionId);
      expected.push(['granted', component, contenderId]);
    },
    async resign(component: Component, contenderId: string): Promise<void> {
      const sessionId = sessions.get(`${component} ${contenderId}`)!;
      await retrying(() => cluster.resign(component, { contenderId, sessionId }));
      expected.push(['revoked', component, null]);
    },
  };
}

/** Each change once, in strictly increasing index order, and exactly the expected ones. */
function assertChanges(changes: Change[], expected: Expected[]): void {
  assert.deepEqual(
    changes.map((c) => [c.event, c.component, c.leader?.contenderId ?? null]),
    expected,
  );
  for (let i = 1; i < changes.length; i++) assert.ok(changes[i].index > changes[i - 1].index, `index ${changes[i].index} after ${changes[i - 1].index}`);
}

test('every change once and in order across a server restart (SIGKILL, relaunch on the same port), reconnecting with backoff by itself', { timeout: 90_000 }, async (t) => {
  const redis = await RedisProcess.start();
  const [s1, s2] = await Promise.all([ServerProcess.start(t, { REDIS_URL: redis.url }), startApp(t, redis.url)]);
  const id = uniqueCluster('restart');
  const w = writer(new LeaseholdClient({ url: s2.url }).cluster(id));
  const r = new LeaseholdClient({ url: s1.url }).cluster(id).retrieval({ minBackoffMs: 50, maxBackoffMs: 400 });
  const seen = record(t, r);
  r.start();
  await waitFor(() => seen.snapshots.length === 1, 10_000, 'the first snapshot');
  const job = randomJobId();

  await w.campaign('dispatcher', 'd1');
  await w.campaign('rest', 'r1');
  await w.resign('dispatcher', 'd1');
  await waitFor(() => seen.changes.length === 3, 5000, 'the changes before the restart');

  await s1.kill();
  const downAt = performance.now();
  await w.campaign('resourcemanager', 'rm1');
  await w.resign('rest', 'r1');
  await w.campaign('dispatcher', 'd2');
  await w.campaign(`jobmanager/${job}`, 'jm1');
  const connectedBefore = seen.connected.length;
  const relaunched = s1.launch(); // takes seconds: it retries meanwhile
  await w.campaign('rest', 'r2');
  await relaunched;
  const downMs = performance.now() - downAt;
  const disconnectedWhileDown = seen.disconnected.length;
  await w.resign('resourcemanager', 'rm1');
  await w.resign(`jobmanager/${job}`, 'jm1');

  await waitFor(() => seen.changes.length >= w.expected.length, 15_000, `all ${w.expected.length} changes`);
  await sleep(300); // room for a duplicate to show
  assertChanges(seen.changes, w.expected);
  assert.equal(seen.snapshots.length, 1, 'resumed with since, never a fresh snapshot');
  assert.equal(r.index, seen.changes.at(-1)!.index);
  assert.equal(r.leader('dispatcher')?.contenderId, 'd2');
  assert.equal(r.leader('rest')?.contenderId, 'r2');
  assert.equal(r.leader('resourcemanager'), null);

  // It retried while the server was down (a few times, with backoff, not in a hot loop)
  // and came back by itself.
  t.diagnostic(`${seen.disconnected.length} disconnects over ${downMs.toFixed(0)} ms down`);
  assert.ok(disconnectedWhileDown >= 3, `${disconnectedWhileDown} disconnects while down`);
  assert.ok(seen.disconnected.length < downMs / 25 + 5, `${seen.disconnected.length} disconnects: backoff`);
  assert.ok(seen.connected.length > connectedBefore, 'connected again');
  assert.ok(seen.connected.every((c) => c === 'websocket'));
});

test('every change once and in order across a Redis restart (kill -9, AOF); it ends with the true leader', { timeout: 90_000 }, async (t) => {
  const redis = await RedisProcess.start({ aof: true });
  const app = await startApp(t, redis.url);
  const id = uniqueCluster('redis');
  const cluster = new LeaseholdClient({ url: app.url }).cluster(id);
  const w = writer(cluster);
  const r = cluster.retrieval({ minBackoffMs: 50, maxBackoffMs: 400 });
  const seen = record(t, r);
  r.start();
  await waitFor(() => seen.snapshots.length === 1, 10_000, 'the first snapshot');

  await w.campaign('dispatcher', 'a');
  await w.campaign('rest', 'r1');
  await waitFor(() => seen.changes.length === 2, 5000, 'the changes before the restart');

  await redis.kill();
  await sleep(500);
  await redis.restart();
  await waitFor(async () => (await fetch(`${app.url}/readyz`)).status === 200, 15_000, 'the app is ready again');

  const job = randomJobId();
  await w.resign('dispatcher', 'a');
  await w.campaign('dispatcher', 'b');
  await w.campaign(`jobmanager/${job}`, 'jm');
  await w.resign('rest', 'r1');
  await waitFor(() => seen.changes.length >= w.expected.length, 15_000, `all ${w.expected.length} changes`);
  await sleep(300);
  assertChanges(seen.changes, w.expected);

  const truth = await cluster.leader('dispatcher');
  assert.equal(truth?.contenderId, 'b');
  assert.equal(r.leader('dispatcher')?.sessionId, truth.sessionId);
  assert.equal(r.leader(`jobmanager/${job}`)?.contenderId, 'jm');
  assert.equal(r.leader('rest'), null);
});

test('a connection gone silent (blackholed) is dropped after idleTimeoutMs, and the watch resumes without losing a change', { timeout: 30_000 }, async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { WS_HEARTBEAT_MS: '300' });
  const proxy = await TcpProxy.start(Number(new URL(app.url).port));
  t.after(() => proxy.close());
  const id = uniqueCluster('silent');
  const w = writer(new LeaseholdClient({ url: app.url }).cluster(id));
  const r = new LeaseholdClient({ url: proxy.url, timeoutMs: 1000 }).cluster(id).retrieval({ idleTimeoutMs: 1000, minBackoffMs: 50, maxBackoffMs: 300 });
  const seen = record(t, r);
  r.start();
  await waitFor(() => seen.snapshots.length === 1, 10_000, 'the first snapshot');
  await w.campaign('dispatcher', 'd1');
  await waitFor(() => seen.changes.length === 1, 5000, 'the first change');

  proxy.blackhole();
  await w.campaign('rest', 'r1');
  await w.resign('dispatcher', 'd1');
  await waitFor(() => seen.disconnected.length > 0, 5000, 'the silent socket dropped');
  proxy.restore();
  await waitFor(() => seen.changes.length >= 3, 10_000, 'the changes made while cut off');
  await sleep(300);
  assertChanges(seen.changes, w.expected);
  assert.equal(seen.snapshots.length, 1);
});

/** An HTTP proxy that refuses websocket upgrades (426) and forwards everything else. */
async function upgradeRefusingProxy(t: TestContext, targetPort: number): Promise<string> {
  const server: Server = createServer((req, res) => {
    const upstream = request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 426 Upgrade Required\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

test('long-poll fallback: a proxy refusing upgrades makes it long-poll, and leader events follow the changes', { timeout: 30_000 }, async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const id = uniqueCluster('poll');
  const w = writer(new LeaseholdClient({ url: app.url }).cluster(id));
  const url = await upgradeRefusingProxy(t, Number(new URL(app.url).port));
  const r = new LeaseholdClient({ url }).cluster(id).retrieval();
  const seen = record(t, r);
  r.start();
  await waitFor(() => seen.connected.includes('long-poll'), 10_000, 'long-polling');
  assert.deepEqual(seen.connected, ['long-poll']);
  assert.match(seen.disconnected[0], /upgrade refused with 426/);
  assert.equal(r.leader('dispatcher'), null);
  const initial = seen.leaders.length; // the first state: every component, none leading

  const job = randomJobId();
  await w.campaign('dispatcher', 'd1');
  await waitFor(() => r.leader('dispatcher')?.contenderId === 'd1', 5000, 'the grant');
  await w.campaign(`jobmanager/${job}`, 'jm1');
  await waitFor(() => r.leader(`jobmanager/${job}`)?.contenderId === 'jm1', 5000, 'the job manager');
  await w.resign('dispatcher', 'd1');
  await waitFor(() => r.leader('dispatcher') === null, 5000, 'the resign');
  assert.deepEqual(
    seen.leaders.slice(initial),
    [['dispatcher', 'd1'], [`jobmanager/${job}`, 'jm1'], ['dispatcher', null]],
  );
  assert.deepEqual(seen.changes, [], 'long-polls see states, not changes');
});

test('waitForLeader, leader(), all(), and since replays exactly the changes after it', { timeout: 30_000 }, async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const id = uniqueCluster('since');
  const cluster = new LeaseholdClient({ url: app.url }).cluster(id);
  const w = writer(cluster);
  const r = cluster.retrieval();
  const seen = record(t, r);
  r.start();
  await waitFor(() => seen.snapshots.length === 1, 10_000, 'the first snapshot');
  assert.equal(r.leader('dispatcher'), null, 'known to have none');
  const job = randomJobId();
  assert.equal(r.leader(`jobmanager/${job}`), undefined, 'not known');

  const waiting = r.waitForLeader('dispatcher');
  const stop = new AbortController();
  const abandoned = r.waitForLeader('rest', stop.signal);
  stop.abort(new Error('gave up'));
  await assert.rejects(abandoned, /gave up/);
  await cluster.campaign('dispatcher', { contenderId: 'd1', address: 'http://d1:8081', ttlMs: 120_000 });
  const leader = await waiting;
  assert.equal(leader.contenderId, 'd1');
  assert.equal(leader.address, 'http://d1:8081');
  assert.equal((await r.waitForLeader('dispatcher')).sessionId, leader.sessionId, 'at once when known');

  await w.campaign(`jobmanager/${job}`, 'jm1');
  await waitFor(() => seen.changes.length === 2, 5000, 'the job manager');
  assert.equal(r.leader(`jobmanager/${job.toUpperCase()}`)?.contenderId, 'jm1', 'job ids in any case');
  assert.deepEqual(
    r.all().map((l) => [l.component, l.leader?.contenderId ?? null]).sort(),
    [['dispatcher', 'd1'], [`jobmanager/${job}`, 'jm1'], ['resourcemanager', null], ['rest', null]],
  );

  await w.campaign('rest', 'r1');
  await w.resign(`jobmanager/${job}`, 'jm1');
  await w.campaign('resourcemanager', 'rm1');
  await waitFor(() => seen.changes.length === 5, 5000, 'five changes');
  const after = seen.changes[1].index;
  const replay = cluster.retrieval({ since: after });
  const replayed = record(t, replay);
  replay.start();
  await waitFor(() => replayed.changes.length >= 3, 5000, 'the replay');
  await sleep(200);
  assert.deepEqual(replayed.changes, seen.changes.slice(2));
  assert.deepEqual(replayed.snapshots, [], 'changes, not a snapshot');
  assert.equal(replay.leader('rest')?.contenderId, 'r1');
});
