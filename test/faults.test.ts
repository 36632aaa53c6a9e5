/**
 * Fault tests: real redis-server processes of our own (never the Redis on 6379), killed
 * with -9, paused with SIGSTOP, restarted with and without persistence, while apps and
 * server processes keep running. Timing bounds are generous: they prove that an outage is
 * an answer rather than a hang, not how fast anything is. On a Redis Cluster
 * (LEASEHOLD_TEST_REDIS=cluster) the fault strikes the node of the cluster under test, and
 * the clusters of the other shards are checked to go on as if nothing happened.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { RedisProcess, stopAllRedis } from './support/redis.js';
import {
  clusterElsewhere,
  clusterOn,
  connectRedis,
  get,
  ownRedis,
  ownRedisUrl,
  type OwnRedis,
  post,
  randomJobId,
  ServerProcess,
  sleep,
  startApp,
  uniqueCluster,
  untilServed,
  waitFor,
  Watch,
} from './support/app.js';

after(() => stopAllRedis());

const TEST = { timeout: 60_000 };
/** How long an app may take to notice that Redis is back (reconnect back-off is at most 1 s). */
const RECOVERY_MS = 15_000;

type Reply = Awaited<ReturnType<typeof get>>;

const leadersPath = (cluster: string) => `/v1/clusters/${cluster}/leaders`;

function campaign(base: string, cluster: string, component: string, body: Record<string, unknown>) {
  return post(base, `${leadersPath(cluster)}/${component}/campaign`, body);
}

/** Runs a request and answers it with how long it took. */
async function timed(fn: () => Promise<Reply>): Promise<Reply & { ms: number }> {
  const t0 = performance.now();
  const r = await fn();
  return { ...r, ms: performance.now() - t0 };
}

/** 503 with Retry-After and exactly the error shape {error, message, statusCode}. */
function assertRedisUnavailable(r: Reply, what: string): void {
  assert.equal(r.status, 503, `${what}: status (body ${JSON.stringify(r.body)})`);
  assert.ok(r.headers.get('retry-after'), `${what}: Retry-After header`);
  assert.deepEqual(Object.keys(r.body).sort(), ['error', 'message', 'statusCode'], `${what}: error shape`);
  assert.equal(r.body.error, 'RedisUnavailable', what);
  assert.equal(r.body.statusCode, 503, what);
  assert.equal(typeof r.body.message, 'string', what);
  assert.ok(r.body.message.length > 0, what);
}

async function readyz(base: string): Promise<Reply> {
  return get(base, '/readyz');
}

/** Ready, on every shard of a Redis Cluster (whose /readyz answers 200 while one serves). */
async function waitUntilReady(base: string, what: string): Promise<void> {
  await waitFor(async () => {
    const r = await readyz(base);
    return r.status === 200 && r.body.redis === 'up';
  }, RECOVERY_MS, `${what}: readyz 200`);
}

/** Whether the app sees the Redis `node` down: one Redis, /readyz 503 and `redis: down`; on
 * a Redis Cluster, /readyz (200 while other shards serve) reports that node's shard down. */
async function downAt(base: string, node: RedisProcess): Promise<boolean> {
  const r = await readyz(base);
  if (!r.body.shards) return r.status === 503 && r.body.redis === 'down';
  return r.body.redis === 'down' && r.body.shards.find((s: { primary: string }) => s.primary === `127.0.0.1:${node.port}`)?.redis === 'down';
}

/** On a Redis Cluster, a cluster on another shard than `cluster`'s, led by `d-1`: for
 * `stillLed` to check, after a fault on `cluster`'s node, that it never noticed. */
async function ledElsewhere(base: string, redis: OwnRedis, cluster: string): Promise<{ cluster: string; sessionId: string } | null> {
  const elsewhere = await clusterElsewhere(redis, cluster);
  if (!elsewhere) return null;
  const g = await campaign(base, elsewhere, 'dispatcher', { contenderId: 'd-1', ttlMs: 60_000 });
  assert.equal(g.body.granted, true, JSON.stringify(g.body));
  return { cluster: elsewhere, sessionId: g.body.leader.sessionId };
}

/** The cluster of ledElsewhere still has its leader, who renews, and its other components
 * are granted. */
async function stillLed(base: string, led: { cluster: string; sessionId: string } | null, what: string): Promise<void> {
  if (!led) return;
  const read = await get(base, `${leadersPath(led.cluster)}/dispatcher?consistent=true`);
  assert.equal(read.body.leader?.sessionId, led.sessionId, `${what}: another shard's leader kept (${JSON.stringify(read.body)})`);
  const renew = await post(base, `${leadersPath(led.cluster)}/dispatcher/renew`, { contenderId: 'd-1', sessionId: led.sessionId });
  assert.equal(renew.status, 200, `${what}: another shard's leader renews (${JSON.stringify(renew.body)})`);
  const other = await campaign(base, led.cluster, 'rest', { contenderId: `r-${Math.random()}`, ttlMs: 60_000 });
  assert.equal(other.status, 200, `${what}: another shard grants (${JSON.stringify(other.body)})`);
}

/** The value of an unlabelled Prometheus sample. */
async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  assert.ok(m, `metric ${name} in /metrics`);
  return Number(m[1]);
}

/** The leader of a component as a watcher who applied every message in order believes it. */
function watchedLeader(messages: any[], component: string): any {
  let leader: any = null;
  for (const m of messages) {
    if (m.type === 'snapshot') leader = m.leaders.find((l: any) => l.component === component)?.leader ?? null;
    else if (m.type === 'change' && m.component === component) leader = m.leader;
  }
  return leader;
}

test('a killed Redis makes requests answer 503 RedisUnavailable at once, and the app recovers by itself with the lease kept (AOF)', TEST, async (t) => {
  const redis = await ownRedis({ aof: true });
  const app = await startApp(t, redis.url);
  const cluster = uniqueCluster('kill');
  const node = await redis.nodeOf(cluster);
  const elsewhere = await ledElsewhere(app.url, redis, cluster);

  const granted = await campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-1', ttlMs: 60_000 });
  assert.equal(granted.status, 200);
  assert.equal(granted.body.granted, true);
  const lease = granted.body.leader;

  await node.kill();

  // Within about a second of the kill (bound kept generous), every request is a quick 503.
  await waitFor(() => downAt(app.url, node), 2_000, 'readyz 503 after the kill');
  const ready = await readyz(app.url);
  assert.equal(ready.body.redis, 'down');
  if (!redis.cluster) {
    assert.ok(ready.headers.get('retry-after'), 'readyz: Retry-After header');
    assert.notEqual(ready.body.status, 'ready');
  }

  const c = await timed(() => campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-2' }));
  assertRedisUnavailable(c, 'campaign while Redis is dead');
  assert.ok(c.ms < 1_500, `campaign answered in ${c.ms} ms`);

  const g = await timed(() => get(app.url, `${leadersPath(cluster)}/dispatcher`));
  assertRedisUnavailable(g, 'GET leader while Redis is dead');
  assert.ok(g.ms < 1_500, `GET leader answered in ${g.ms} ms`);
  await stillLed(app.url, elsewhere, 'while a shard is dead');

  // Redis comes back with its append-only file; the same app, never restarted, recovers.
  await node.restart();
  await waitUntilReady(app.url, 'app after Redis restart');
  const after = await readyz(app.url);
  assert.equal(after.body.redis, 'up');
  assert.equal(after.body.dataLoss.count, 0, 'AOF kept the data: no loss reported');

  const read = await get(app.url, `${leadersPath(cluster)}/dispatcher`);
  assert.equal(read.status, 200);
  assert.equal(read.body.leader?.sessionId, lease.sessionId, 'the lease granted before the kill is still there');
  assert.equal(read.body.leader.fencingToken, lease.fencingToken);

  const rival = await campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-2' });
  assert.equal(rival.status, 200);
  assert.equal(rival.body.granted, false, 'another contender is refused while the lease is live');
  assert.equal(rival.body.leader.sessionId, lease.sessionId);

  const renew = await post(app.url, `${leadersPath(cluster)}/dispatcher/renew`, {
    contenderId: 'jm-1',
    sessionId: lease.sessionId,
    ttlMs: 60_000,
  });
  assert.equal(renew.status, 200, 'the holder can renew again');
  await stillLed(app.url, elsewhere, 'after the restart');
});

test('a paused Redis (SIGSTOP) makes a campaign answer 503 after the command timeout and readyz turn 503; SIGCONT recovers by itself', TEST, async (t) => {
  const redis = await ownRedis();
  const app = await startApp(t, redis.url);
  const cluster = uniqueCluster('pause');
  const node = await redis.nodeOf(cluster);
  const elsewhere = await ledElsewhere(app.url, redis, cluster);

  const granted = await campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-1', ttlMs: 60_000 });
  assert.equal(granted.body.granted, true);

  node.pause();
  try {
    // The connection stays open: only the command timeout (750 ms) tells. Bound generous.
    const c = await timed(() => campaign(app.url, cluster, 'rest', { contenderId: 'rest-1', ttlMs: 60_000 }));
    assertRedisUnavailable(c, 'campaign while Redis is paused');
    assert.ok(c.ms < 2_500, `campaign answered in ${c.ms} ms`);

    await waitFor(() => downAt(app.url, node), 3_000, 'readyz 503 while paused');
    assert.equal((await readyz(app.url)).body.redis, 'down');
    assertRedisUnavailable(await get(app.url, `${leadersPath(cluster)}/dispatcher`), 'GET leader while paused');
    await stillLed(app.url, elsewhere, 'while a shard is paused');
  } finally {
    node.resume();
  }

  await waitUntilReady(app.url, 'app after SIGCONT');
  const read = await get(app.url, `${leadersPath(cluster)}/dispatcher`);
  assert.equal(read.status, 200);
  assert.equal(read.body.leader?.sessionId, granted.body.leader.sessionId);

  // The campaign that timed out may or may not have been applied once Redis woke up;
  // either way the same contender now holds 'rest'.
  const again = await campaign(app.url, cluster, 'rest', { contenderId: 'rest-1', ttlMs: 60_000 });
  assert.equal(again.status, 200);
  assert.equal(again.body.granted, true);
  assert.equal(again.body.leader.contenderId, 'rest-1');
});

test('a Redis that stops in the middle of a blob upload answers 503 RedisUnavailable, not 500', TEST, async (t) => {
  const redis = await ownRedis();
  const app = await startApp(t, redis.url, { REDIS_COMMAND_TIMEOUT_MS: '300' });
  const { port } = new URL(app.url);
  const cluster = uniqueCluster('flush');
  const node = await redis.nodeOf(cluster);
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: `/v1/clusters/${cluster}/blobs/_/b`, headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': 'override', 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.write('first bytes');
    // The fence is checked before the body is read; the body's bytes go to Redis once it ends.
    setTimeout(() => {
      node.pause();
      req.end('last bytes');
    }, 500);
  });
  try {
    const r = await answer;
    assert.deepEqual([r.status, r.body.error], [503, 'RedisUnavailable'], JSON.stringify(r.body));
  } finally {
    node.resume();
  }
});

test('a command timing out inside a pipeline (the job-results list) answers 503 RedisUnavailable, not 500', TEST, async (t) => {
  const redisUrl = await ownRedisUrl();
  // The entry is written through an app of the usual timeout, and listed through one of 50 ms.
  const writer = await startApp(t, redisUrl);
  const app = await startApp(t, redisUrl, { REDIS_COMMAND_TIMEOUT_MS: '50' });
  const cluster = uniqueCluster('pipe');
  const jobId = randomJobId();
  const put = await fetch(`${writer.url}/v1/clusters/${cluster}/job-results/${jobId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-fencing-token': 'override' },
    body: '{"applicationStatus":"SUCCEEDED"}',
  });
  assert.equal(put.status, 201);
  // The list's SMEMBERS is quick; the HGETALL of one huge entry in its pipeline is not.
  const direct = await connectRedis(redisUrl);
  t.after(() => direct.quit());
  const key = `lh:{${cluster}}:jobresult:${jobId}`;
  for (let i = 0; i < 20; i++) {
    await direct.hset(key, Object.fromEntries(Array.from({ length: 25_000 }, (_, j) => [`padding-${i}-${j}`, 'x'.repeat(32)])));
  }
  await waitUntilReady(app.url, 'app after the padding'); // its pings may have timed out meanwhile
  const r = await get(app.url, `/v1/clusters/${cluster}/job-results`);
  assertRedisUnavailable(r, 'the list');
});

test('fencing tokens and cluster indexes never go backwards when Redis loses its data, and the loss is reported', TEST, async (t) => {
  const redis = await ownRedis({ aof: false });
  const app = await startApp(t, redis.url);
  const cluster = uniqueCluster('loss');
  // On a Redis Cluster, all three on the node that loses its data.
  const node = await redis.nodeOf(cluster);
  const quiet = await clusterOn(redis, node, 'quiet'); // only read after the loss, by an app that knows it
  const cold = await clusterOn(redis, node, 'cold'); // only read after the loss, by apps that never saw it
  const elsewhere = await ledElsewhere(app.url, redis, cluster);

  const first = await campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-1', ttlMs: 2000 });
  assert.equal(first.body.granted, true);
  const t1: number = first.body.leader.fencingToken;
  const clusterIndexBefore = Math.max(
    (await get(app.url, `${leadersPath(cluster)}/dispatcher`)).body.index,
    (await get(app.url, leadersPath(cluster))).body.index,
  );

  const q = await campaign(app.url, quiet, 'rest', { contenderId: 'r-1' });
  await post(app.url, `${leadersPath(quiet)}/rest/resign`, { contenderId: 'r-1', sessionId: q.body.leader.sessionId });
  const quietIndexBefore: number = (await get(app.url, leadersPath(quiet))).body.index;

  {
    const other = await startApp(null, redis.url);
    const cd = await campaign(other.url, cold, 'rest', { contenderId: 'c-1' });
    await post(other.url, `${leadersPath(cold)}/rest/resign`, { contenderId: 'c-1', sessionId: cd.body.leader.sessionId });
    await other.close();
  }
  // The cold cluster's index as Redis had it (read by an app with no memory of it).
  const coldIndexBefore: number = await (async () => {
    const probe = await startApp(null, redis.url);
    try {
      return (await get(probe.url, leadersPath(cold))).body.index;
    } finally {
      await probe.close();
    }
  })();
  assert.ok(coldIndexBefore > 0);
  assert.equal((await readyz(app.url)).body.dataLoss.count, 0);

  // No persistence: after kill -9 and restart, Redis is empty.
  await node.kill();
  await node.restart();

  await waitFor(
    async () => {
      const r = await readyz(app.url);
      return r.status === 200 && r.body.dataLoss.count >= 1;
    },
    RECOVERY_MS,
    'readyz reporting the data loss',
  );
  const report = (await readyz(app.url)).body.dataLoss;
  assert.equal(typeof report.lastDetectedAt, 'string');
  assert.ok(!Number.isNaN(Date.parse(report.lastDetectedAt)));
  assert.ok((await metric(app.url, 'leasehold_redis_data_loss_total')) >= 1, 'data loss metric');
  assert.equal(await metric(app.url, 'leasehold_redis_up'), 1);

  // Indexes only read after the loss are above every index seen before.
  const quietAfter = await get(app.url, leadersPath(quiet));
  assert.equal(quietAfter.status, 200);
  assert.ok(quietAfter.body.index > quietIndexBefore, `quiet index ${quietAfter.body.index} > ${quietIndexBefore}`);

  const coldAfter = await get(app.url, leadersPath(cold));
  assert.equal(coldAfter.status, 200);
  assert.ok(coldAfter.body.index > coldIndexBefore, `cold index ${coldAfter.body.index} > ${coldIndexBefore}`);
  // And its grants: a shard's loss starts the grace of that shard's clusters only.
  await stillLed(app.url, elsewhere, 'after another shard lost its data');

  const fresh = await startApp(t, redis.url);
  for (const [c, before] of [
    [quiet, quietIndexBefore],
    [cold, coldIndexBefore],
    [cluster, clusterIndexBefore],
  ] as const) {
    const r = await get(fresh.url, leadersPath(c));
    assert.ok(r.body.index > before, `${c} read by a fresh app: index ${r.body.index} > ${before}`);
  }

  const readAfter = await get(app.url, `${leadersPath(cluster)}/dispatcher`);
  assert.equal(readAfter.body.leader, null, 'the lease vanished with the data');
  assert.ok(readAfter.body.index > clusterIndexBefore, `index ${readAfter.body.index} > ${clusterIndexBefore}`);

  // No grant until the lost lease has run out (the grace after a data loss); then a new
  // grant gets a token above every token handed out before the loss.
  let second = await campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-1', ttlMs: 60_000 });
  await waitFor(
    async () => {
      if (second.status !== 503) return true;
      assert.equal(second.body.error, 'GracePeriod');
      second = await campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-1', ttlMs: 60_000 });
      return false;
    },
    RECOVERY_MS,
    'a grant after the grace',
  );
  assert.equal(second.status, 200);
  assert.equal(second.body.granted, true);
  assert.notEqual(second.body.leader.sessionId, first.body.leader.sessionId);
  assert.ok(second.body.leader.fencingToken > t1, `token ${second.body.leader.fencingToken} > ${t1}`);

  const listed = await get(app.url, leadersPath(cluster));
  assert.ok(listed.body.index > readAfter.body.index);
});

test('a watcher connected during a data loss is sent a snapshot without the lease that vanished', TEST, async (t) => {
  const redis = await ownRedis({ aof: false });
  const app = await startApp(t, redis.url);
  const cluster = uniqueCluster('vanish');
  const node = await redis.nodeOf(cluster);

  const watch = await Watch.open(t, `${app.wsUrl}/v1/clusters/${cluster}/watch`);
  const [snapshot] = await watch.count(1);
  assert.equal(snapshot.type, 'snapshot');

  const granted = await campaign(app.url, cluster, 'dispatcher', { contenderId: 'jm-1', ttlMs: 60_000 });
  assert.equal(granted.body.granted, true);
  const grant = await watch.find((m) => m.type === 'change' && m.event === 'granted' && m.component === 'dispatcher');
  assert.equal(grant.leader.sessionId, granted.body.leader.sessionId);

  await node.kill();
  await node.restart(); // empty

  // What happened while Redis was away is lost with it: the watcher is told with a snapshot.
  const told = await watch.find((m) => m.type === 'snapshot' && m.index > grant.index, RECOVERY_MS);
  assert.equal(told.leaders.find((l: any) => l.component === 'dispatcher')?.leader ?? null, null);
  assert.equal(watchedLeader(watch.messages, 'dispatcher'), null, 'the watcher ends with no leader');
  assert.equal(watch.closeCode, null, 'the socket stayed open through the outage');

  const read = await get(app.url, `${leadersPath(cluster)}/dispatcher`);
  assert.equal(read.body.leader, null);
  assert.ok(read.body.index >= told.index);
});

test('after a data loss, watchers on every replica are sent a snapshot without the vanished lease', TEST, async (t) => {
  const redis = await ownRedis({ aof: false });
  const [a, b] = [await startApp(t, redis.url), await startApp(t, redis.url)];
  const cluster = uniqueCluster('vanish2');
  const node = await redis.nodeOf(cluster);
  const watches = [
    await Watch.open(t, `${a.wsUrl}/v1/clusters/${cluster}/watch`),
    await Watch.open(t, `${b.wsUrl}/v1/clusters/${cluster}/watch`),
  ];
  await campaign(a.url, cluster, 'dispatcher', { contenderId: 'd-1', ttlMs: 60_000 });
  const grants = await Promise.all(watches.map((w) => w.find((m) => m.type === 'change' && m.event === 'granted')));

  await node.kill();
  await node.restart(); // empty

  const told = await Promise.all(watches.map((w, i) => w.find((m) => m.type === 'snapshot' && m.index > grants[i].index, RECOVERY_MS)));
  for (const [i, w] of watches.entries()) {
    assert.equal(told[i].leaders.find((l: any) => l.component === 'dispatcher')?.leader ?? null, null);
    assert.equal(watchedLeader(w.messages, 'dispatcher'), null, 'each watcher ends with no leader');
  }
});

test('fencing tokens keep increasing across a graceful server process restart', TEST, async (t) => {
  const env = { REDIS_URL: await ownRedisUrl(), LOG_LEVEL: 'warn' };
  const cluster = uniqueCluster('proc');

  const s1 = await ServerProcess.start(t, env);
  const first = await campaign(s1.url, cluster, 'resourcemanager', { contenderId: 'rm-1' });
  assert.equal(first.status, 200);
  assert.equal(first.body.granted, true);
  const resigned = await post(s1.url, `${leadersPath(cluster)}/resourcemanager/resign`, {
    contenderId: 'rm-1',
    sessionId: first.body.leader.sessionId,
  });
  assert.deepEqual(resigned.body, { released: true });

  const code = await s1.signal('SIGTERM');
  assert.equal(code, 0, `SIGTERM exit code\n${s1.output}`);
  assert.equal(s1.running, false);

  const s2 = await ServerProcess.start(t, env);
  const second = await campaign(s2.url, cluster, 'resourcemanager', { contenderId: 'rm-1' });
  assert.equal(second.status, 200);
  assert.equal(second.body.granted, true);
  assert.ok(
    second.body.leader.fencingToken > first.body.leader.fencingToken,
    `token ${second.body.leader.fencingToken} > ${first.body.leader.fencingToken}`,
  );
});

test('a watcher on one app gets, after a Redis kill and restart, the changes made meanwhile through another app, in order and without duplicates', TEST, async (t) => {
  const redis = await ownRedis({ aof: true });
  const a = await startApp(t, redis.url);
  const b = await startApp(t, redis.url);
  const cluster = uniqueCluster('relay');
  const node = await redis.nodeOf(cluster);

  const first = await campaign(b.url, cluster, 'dispatcher', { contenderId: 'jm-1', ttlMs: 60_000 });
  assert.equal(first.body.granted, true);

  const watch = await Watch.open(t, `${a.wsUrl}/v1/clusters/${cluster}/watch`);
  await watch.count(1);
  assert.equal(watchedLeader(watch.messages, 'dispatcher')?.sessionId, first.body.leader.sessionId);

  await node.kill();
  await waitFor(async () => (await downAt(a.url, node)) && (await downAt(b.url, node)), 3_000, 'apps A and B notice the kill');
  await node.restart();

  // As soon as B is back, change the leader through B; A may not have re-synced yet.
  await waitUntilReady(b.url, 'app B after Redis restart');
  const resign = await untilServed(() =>
    post(b.url, `${leadersPath(cluster)}/dispatcher/resign`, {
      contenderId: 'jm-1',
      sessionId: first.body.leader.sessionId,
    }),
  );
  assert.deepEqual(resign.body, { released: true });
  const second = await untilServed(() => campaign(b.url, cluster, 'dispatcher', { contenderId: 'jm-2', ttlMs: 60_000, address: 'jm-2:6123' }));
  assert.equal(second.body.granted, true);
  const finalLeader = second.body.leader;

  await waitUntilReady(a.url, 'app A after Redis restart');
  await waitFor(
    () => watchedLeader(watch.messages, 'dispatcher')?.sessionId === finalLeader.sessionId,
    RECOVERY_MS,
    'the watcher on A seeing the leader set through B',
  );
  await sleep(500); // time for any late duplicate to show up

  const seen = watchedLeader(watch.messages, 'dispatcher');
  assert.equal(seen.sessionId, finalLeader.sessionId);
  assert.equal(seen.fencingToken, finalLeader.fencingToken);
  assert.equal(seen.address, 'jm-2:6123');
  assert.equal(watch.closeCode, null, 'the socket stayed open through the outage');

  // Index order: each change above everything before it (so no change twice), a snapshot never below.
  let last = -1;
  for (const m of watch.messages) {
    if (m.type === 'change') assert.ok(m.index > last, `change at ${m.index} after ${last}: ${JSON.stringify(watch.messages)}`);
    else assert.ok(m.index >= last, `snapshot at ${m.index} after ${last}: ${JSON.stringify(watch.messages)}`);
    last = m.index;
  }
  const grants = watch.messages.filter((m) => m.type === 'change' && m.event === 'granted' && m.leader.sessionId === finalLeader.sessionId);
  assert.ok(grants.length <= 1, `the new grant delivered at most once as a change: ${JSON.stringify(watch.messages)}`);

  // Both apps agree with the watcher, and with each other.
  const viaA = await get(a.url, `${leadersPath(cluster)}/dispatcher`);
  const viaB = await get(b.url, `${leadersPath(cluster)}/dispatcher`);
  assert.equal(viaA.body.leader?.sessionId, finalLeader.sessionId);
  assert.equal(viaB.body.leader?.sessionId, finalLeader.sessionId);
  assert.equal(viaA.body.index, viaB.body.index);
  assert.equal(last, viaA.body.index, 'the watcher is up to the cluster index');
});
