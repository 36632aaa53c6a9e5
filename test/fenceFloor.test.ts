/**
 * A write fenced with a token superseded before Redis rolled back is refused (issue 15),
 * even in the moment before any health check or sync noticed the rollback: Redis then
 * still holds the old lease as live, and only the calling server knows a higher token was
 * granted since. Real redis-server; the restore happens under open connections (DEBUG
 * RELOAD), as behind a proxy that switched to a lagging replica, so that nothing in the
 * server learns of it before the write.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { stopAllRedis } from './support/redis.js';
import { reloadSnapshot, snapshot } from './support/topology.js';
import { clusterElsewhere, get, ownRedis, post, randomJobId, startApp, uniqueCluster } from './support/app.js';

after(async () => {
  await stopAllRedis();
});

test('a token superseded before a rollback fences nothing, even before the rollback is noticed', async (t) => {
  const redis = await ownRedis({ args: ['--enable-debug-command', 'local'] });
  // Health checks a minute apart: the first one (at connection) has run, the next one
  // comes long after this test.
  const app = await startApp(t, redis.url, { REDIS_HEALTH_INTERVAL_MS: '60000' });
  const cluster = uniqueCluster('fencefloor');
  // On a Redis Cluster, the shard of this cluster's keys is the one that rolls back.
  const node = await redis.nodeOf(cluster);
  const job = randomJobId();
  const lp = `/v1/clusters/${cluster}/leaders/jobmanager/${job}`;
  const counter = `/v1/clusters/${cluster}/jobs/${job}/checkpoint-id-counter/increment`;
  const incr = async (token: number, path = counter) => {
    const r = await fetch(app.url + path, { method: 'POST', headers: { 'x-fencing-token': String(token) } });
    return { status: r.status, body: await r.json() };
  };
  // On a Redis Cluster, a cluster on another shard, whose leader writes throughout.
  const other = await clusterElsewhere(redis, cluster, 'other');
  const otherCounter = `/v1/clusters/${other}/jobs/${job}/checkpoint-id-counter/increment`;
  const otherLeader = other === null ? null : await post(app.url, `/v1/clusters/${other}/leaders/jobmanager/${job}/campaign`, { contenderId: 'C', ttlMs: 30_000 });
  if (otherLeader) assert.equal((await incr(otherLeader.body.leader.fencingToken, otherCounter)).body.value, 1);

  // A leads with token t and writes; Redis is snapshotted with A's lease live.
  const a = await post(app.url, `${lp}/campaign`, { contenderId: 'A', ttlMs: 30_000 });
  assert.equal(a.body.granted, true);
  const tokenA: number = a.body.leader.fencingToken;
  assert.equal((await incr(tokenA)).status, 200);
  const backup = await snapshot(node);

  // A resigns; B is granted a higher token, through the same server.
  assert.equal((await post(app.url, `${lp}/resign`, { contenderId: 'A', sessionId: a.body.leader.sessionId })).status, 200);
  const b = await post(app.url, `${lp}/campaign`, { contenderId: 'B', ttlMs: 30_000 });
  assert.equal(b.body.granted, true);
  assert.ok(b.body.leader.fencingToken > tokenA);

  // Redis goes back to the snapshot: A's lease is live there again, with token t.
  await reloadSnapshot(node, backup);
  const rolledBack = await get(app.url, `/readyz`);
  assert.equal(rolledBack.body.dataLoss.count, 0, 'nothing noticed the rollback yet');

  // A writes with t at once: refused, since the server granted a higher token since.
  const stale = await incr(tokenA);
  assert.equal(stale.status, 409, JSON.stringify(stale.body));
  assert.equal(stale.body.error, 'FencingTokenStale');
  assert.equal((await get(app.url, `/readyz`)).body.dataLoss.count, 0, 'refused by the fence, not by a repair');
  if (otherLeader) {
    const next = await incr(otherLeader.body.leader.fencingToken, otherCounter);
    assert.equal(next.status, 200, `the other shard's leader still writes: ${JSON.stringify(next.body)}`);
    assert.equal(next.body.value, 2);
  }
});
