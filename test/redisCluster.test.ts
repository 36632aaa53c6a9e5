/**
 * leasehold on a real Redis Cluster (issue 21): three primaries, three replicas
 * (test/support/redisCluster.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { stopAllRedis } from './support/redis.js';
import { clusterIdOn, RedisClusterProcess } from './support/redisCluster.js';

after(() => stopAllRedis());

let cluster: RedisClusterProcess;
before(async () => {
  cluster = await RedisClusterProcess.start();
});

test('the harness: three shards, a key found on its primary, a slot moved, a replica promoted', async () => {
  const primaries = await cluster.primaries();
  assert.equal(primaries.length, 3);
  const ids = await Promise.all(primaries.map((p) => clusterIdOn(cluster, p, 'harness')));
  for (const [i, id] of ids.entries()) assert.equal((await cluster.primaryOf(`{${id}}`)).port, primaries[i].port);
  // A key written through the owner moves with its slot.
  const key = `lh:{${ids[0]}}:index`;
  const owner = new Redis({ port: primaries[0].port, host: '127.0.0.1' });
  try {
    await owner.set(key, '7');
  } finally {
    owner.disconnect();
  }
  await cluster.moveSlot(RedisClusterProcess.slotOf(key), primaries[1]);
  assert.equal((await cluster.primaryOf(key)).port, primaries[1].port);
  const there = new Redis({ port: primaries[1].port, host: '127.0.0.1' });
  try {
    assert.equal(await there.get(key), '7');
  } finally {
    there.disconnect();
  }
  await cluster.moveSlot(RedisClusterProcess.slotOf(key), primaries[0]);
  // A manual failover, and back.
  const [replica] = await cluster.replicasOf(primaries[2]);
  await cluster.promote(replica);
  assert.equal((await cluster.primaryOf(`{${ids[2]}}`)).port, replica.port);
  await cluster.promote(primaries[2]);
  assert.equal((await cluster.primaryOf(`{${ids[2]}}`)).port, primaries[2].port);
});
