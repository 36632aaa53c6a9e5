/**
 * The grace after a failover (docs/design.md §9): when the Redis now serving is another
 * primary and this server acknowledged leases that no replica held, none of its clusters
 * grants a lease until every such lease has run out. When every grant was held by a
 * replica before it was acknowledged, a failover loses nothing and costs no grace.
 * Real processes: a primary, one replica and three Sentinels.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { stopAllRedis } from './support/redis.js';
import { cutReplicaLink, RedisTopology, stopAllSentinels } from './support/topology.js';
import { get, post, sleep, startApp, uniqueCluster, waitFor } from './support/app.js';

after(async () => {
  await stopAllSentinels();
  await stopAllRedis();
});

const TTL = 5000;

test('a failover after grants no replica held: no other contender is granted within the old lease, then one is', async (t) => {
  const topology = await RedisTopology.start({ replicas: 1, sentinels: 3 });
  const app = await startApp(t, undefined, { ...topology.env, REDIS_MIN_REPLICAS_ACK: '0' });
  const cluster = uniqueCluster('fgrace');
  const lp = `/v1/clusters/${cluster}/leaders`;
  const [primary, replica] = topology.nodes;

  // The grant below exists on the primary alone, as a lagging replica would have it.
  await cutReplicaLink(primary, replica);

  const sentAt = performance.now();
  const a = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'A', ttlMs: TTL });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.granted, true);
  await topology.failover();

  // B campaigns until it wins: never while A's lease may still be running.
  let b: Awaited<ReturnType<typeof post>> | undefined;
  let refusedInGrace = 0;
  for (const deadline = performance.now() + 30_000; performance.now() < deadline; await sleep(200)) {
    const r = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'B', ttlMs: TTL });
    if (r.status === 503 && r.body.error === 'GracePeriod') {
      refusedInGrace++;
      assert.ok(Number(r.headers.get('retry-after')) >= 1, 'a grace answer says when to come back');
    }
    if (r.status === 200 && r.body.granted) {
      b = r;
      break;
    }
  }
  const grantedAt = performance.now();
  assert.ok(b, 'B is granted once A cannot lead any more');
  assert.ok(grantedAt - sentAt >= TTL, `B was granted ${Math.round(grantedAt - sentAt)} ms after A's grant of ${TTL} ms was sent: two leaders`);
  assert.ok(refusedInGrace > 0, 'B was refused with GracePeriod meanwhile');
  assert.ok(b.body.leader.fencingToken > a.body.leader.fencingToken);
  const ready = await get(app.url, '/readyz');
  assert.ok(ready.body.primaryChanges >= 1, JSON.stringify(ready.body));
});

test('a failover after grants a replica held before they were acknowledged costs no grace', async (t) => {
  const topology = await RedisTopology.start({ replicas: 1, sentinels: 3 });
  // auto: one replica while there is one, none once the new primary stands alone.
  const app = await startApp(t, undefined, topology.env);
  await waitFor(async () => (await get(app.url, '/readyz')).body?.replicas?.connected === 1, 15_000, 'the replica seen');
  const cluster = uniqueCluster('nograce');
  const lp = `/v1/clusters/${cluster}/leaders`;

  const a = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'A', ttlMs: 30_000 });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.granted, true);
  await topology.failover();
  await waitFor(async () => {
    const r = await get(app.url, '/readyz');
    return r.status === 200 && r.body.primaryChanges >= 1;
  }, 20_000, 'the new primary seen');

  // Another component of the same cluster is granted at once: no grace.
  const b = await post(app.url, `${lp}/dispatcher/campaign`, { contenderId: 'B', ttlMs: TTL });
  assert.equal(b.status, 200, JSON.stringify(b.body));
  assert.equal(b.body.granted, true);
  // A's lease survived the failover: A still holds it, B is told so.
  const again = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'B', ttlMs: TTL });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.granted, false);
  assert.equal(again.body.leader.contenderId, 'A');
});
