/**
 * Consistent reads (Consul's `consistent` mode, docs/design.md §9): a plain read answers from
 * the server's own view, which trails a change made through another server by the time
 * pub/sub takes; `?consistent` reflects every write acknowledged before it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisProcess, stopAllRedis } from './support/redis.js';
import { TcpProxy } from './support/proxy.js';
import { get, post, startApp, uniqueCluster, waitFor } from './support/app.js';

after(() => stopAllRedis());

// The reader's slow link is a TCP proxy in front of one redis-server: a Cluster client
// reaches each node at the address CLUSTER SLOTS announces, around any proxy. `?consistent`
// on a cluster is read in test/leadership.test.ts, which runs there.
const onCluster = process.env.LEASEHOLD_TEST_REDIS === 'cluster';
const skip = onCluster ? 'a TCP proxy cannot slow a Redis Cluster client (it connects to the addresses the nodes announce)' : false;

test('?consistent answers what another server just wrote; a plain read may still answer the view', { skip }, async (t) => {
  const redis = await RedisProcess.start();
  const writer = await startApp(t, redis.url);
  // The reader reaches Redis over a slow link: its pub/sub hears of a change 400 ms late.
  const link = await TcpProxy.start(redis.port, { delayMs: 400 });
  t.after(() => link.close());
  const reader = await startApp(t, `redis://127.0.0.1:${link.port}`, { REDIS_COMMAND_TIMEOUT_MS: '5000', REDIS_HEALTH_INTERVAL_MS: '2000' });
  const cluster = uniqueCluster('consistent');
  const path = `/v1/clusters/${cluster}/leaders/dispatcher`;
  assert.equal((await get(reader.url, path)).body.leader, null, 'the reader follows the cluster');

  const won = await post(writer.url, `${path}/campaign`, { contenderId: 'd-1', ttlMs: 30_000 });
  assert.equal(won.body.granted, true);
  const plain = await get(reader.url, path);
  assert.equal(plain.body.leader, null, 'a plain read answers the view, which has not heard yet');

  const consistent = await get(reader.url, `${path}?consistent`);
  assert.equal(consistent.status, 200, JSON.stringify(consistent.body));
  assert.equal(consistent.body.leader?.contenderId, 'd-1');
  const all = await get(reader.url, `/v1/clusters/${cluster}/leaders?consistent=true`);
  assert.equal(all.body.leaders.find((l: any) => l.component === 'dispatcher').leader.contenderId, 'd-1');
  assert.equal((await get(reader.url, `${path}?consistent=yes`)).status, 400);
  await waitFor(async () => (await get(reader.url, path)).body.leader?.contenderId === 'd-1', 10_000, 'the view to hear of it');
});
