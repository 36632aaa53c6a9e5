/**
 * Replication before acknowledgement (docs/design.md §9): with a replica attached, a grant,
 * a renewal and a store write are answered only once the replica holds them (WAIT); a
 * replica that cannot take them makes the write answer 503 (outcome unknown), never a grant
 * that a failover could lose. REDIS_MIN_REPLICAS_ACK=0 turns it off.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { stopAllRedis } from './support/redis.js';
import { RedisTopology, stopAllSentinels } from './support/topology.js';
import { get, post, startApp, uniqueCluster, waitFor } from './support/app.js';

after(async () => {
  await stopAllSentinels();
  await stopAllRedis();
});

test('with a replica attached, writes are acknowledged once it holds them, and answer 503 when it cannot', async (t) => {
  const topology = await RedisTopology.start({ replicas: 1, sentinels: 0 });
  const [primary, replica] = topology.nodes;
  // A fixed 1: with auto, the count of replicas the server reads every few seconds decides,
  // and it drops to 0 once the replica's link is cut below.
  const app = await startApp(t, primary.url, { REDIS_MIN_REPLICAS_ACK: '1', REDIS_ACK_TIMEOUT_MS: '300' });
  const auto = await startApp(t, primary.url);
  const off = await startApp(t, primary.url, { REDIS_MIN_REPLICAS_ACK: '0' });
  await waitFor(async () => (await get(auto.url, '/readyz')).body?.replicas?.connected === 1, 15_000, 'the replica seen');
  assert.deepEqual((await get(auto.url, '/readyz')).body.replicas, { connected: 1, requiredForAck: 1 }, 'auto: one while a replica is there');
  assert.deepEqual((await get(app.url, '/readyz')).body.replicas.requiredForAck, 1);
  assert.deepEqual((await get(off.url, '/readyz')).body.replicas.requiredForAck, 0);

  const onReplica = new Redis(replica.url).on('error', () => {});
  const onPrimary = new Redis(primary.url).on('error', () => {});
  t.after(() => {
    onReplica.disconnect();
    onPrimary.disconnect();
  });
  const cluster = uniqueCluster('ack');
  const lp = `/v1/clusters/${cluster}/leaders`;

  // Acknowledged: the replica holds the grant the moment the answer comes.
  const a = await post(app.url, `${lp}/dispatcher/campaign`, { contenderId: 'A', ttlMs: 30_000 });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(await onReplica.hget(`lh:{${cluster}}:leader:dispatcher`, 'cid'), 'A');
  const renewed = await post(app.url, `${lp}/dispatcher/renew`, { contenderId: 'A', sessionId: a.body.leader.sessionId });
  assert.equal(renewed.status, 200, JSON.stringify(renewed.body));

  // The replica's link is cut (it cannot sync again with a wrong masterauth).
  await onReplica.config('SET', 'masterauth', 'not-the-password');
  await onPrimary.call('CLIENT', 'KILL', 'TYPE', 'replica');

  const t0 = performance.now();
  const b = await post(app.url, `${lp}/resourcemanager/campaign`, { contenderId: 'B', ttlMs: 30_000 });
  const took = performance.now() - t0;
  assert.equal(b.status, 503, JSON.stringify(b.body));
  assert.equal(b.body.error, 'RedisUnavailable');
  assert.ok(took >= 250, `it waited for the replica (${Math.round(took)} ms)`);
  const write = await fetch(`${app.url}/v1/clusters/${cluster}/job-results/${'ab'.repeat(16)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-fencing-token': String(a.body.leader.fencingToken) },
    body: JSON.stringify({ applicationStatus: 'SUCCEEDED' }),
  });
  assert.equal(write.status, 503, 'a store write is not acknowledged either');
  // Reads answer from the server's view, whatever the replica does.
  assert.equal((await get(app.url, `${lp}/dispatcher`)).status, 200);

  // With the acknowledgement off, the same grant is answered at once.
  const c = await post(off.url, `${lp}/rest/campaign`, { contenderId: 'C', ttlMs: 30_000 });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  assert.equal(c.body.granted, true);
});
