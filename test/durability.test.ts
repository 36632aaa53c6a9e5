/**
 * The stores are as durable as Redis: with AOF, everything acknowledged survives a kill -9
 * of Redis; without persistence, the loss is detected and reported, and the leases that
 * vanished with it fence nothing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stopAllRedis } from './support/redis.js';
import { clusterElsewhere, get, ownRedis, post, randomJobId, servesCluster, startApp, uniqueCluster, untilServed, waitFor } from './support/app.js';

after(() => stopAllRedis());

const TEST = { timeout: 60_000 };

/** A fenced write; answers status and parsed body. */
async function write(base: string, method: string, path: string, token: number, body?: unknown, type = 'application/json') {
  const res = await fetch(base + path, {
    method,
    headers: { 'x-fencing-token': String(token), ...(body === undefined ? {} : { 'content-type': type }) },
    body: body === undefined ? undefined : type === 'application/json' ? JSON.stringify(body) : new Uint8Array(body as Buffer),
  });
  return { status: res.status, body: await res.json() };
}

async function tokenOf(base: string, cluster: string, component: string, ttlMs = 60_000): Promise<number> {
  const r = await post(base, `/v1/clusters/${cluster}/leaders/${component}/campaign`, { contenderId: component, ttlMs });
  assert.equal(r.body.granted, true);
  return r.body.leader.fencingToken;
}

test('with AOF, every acknowledged store write survives a kill -9 of Redis, and the counter never repeats an id', TEST, async (t) => {
  const redis = await ownRedis({ aof: true });
  const app = await startApp(t, redis.url);
  const c = uniqueCluster('aof');
  const job = randomJobId();
  const base = `/v1/clusters/${c}`;
  const d = await tokenOf(app.url, c, 'dispatcher');
  const jm = await tokenOf(app.url, c, `jobmanager/${job}`);
  const plan = randomBytes(100_000);
  const blob = randomBytes(3 * 1024 * 1024 + 7);

  assert.equal((await write(app.url, 'PUT', `${base}/job-results/${job}`, d, { applicationStatus: 'FAILED' })).status, 201);
  assert.equal((await write(app.url, 'PUT', `${base}/execution-plans/${job}`, d, plan, 'application/octet-stream')).status, 200);
  assert.equal((await write(app.url, 'PUT', `${base}/blobs/${job}/lib.jar`, d, blob, 'application/octet-stream')).status, 201);
  for (let i = 1; i <= 3; i++) {
    assert.equal((await write(app.url, 'POST', `${base}/jobs/${job}/checkpoint-id-counter/increment`, jm)).body.value, i);
  }
  const cp = { checkpointId: 3, timestamp: 1, externalPointer: 's3://b/3' };
  assert.equal((await write(app.url, 'POST', `${base}/jobs/${job}/checkpoints`, jm, cp)).status, 200);

  // On a Redis Cluster, the node that holds this cluster.
  const node = await redis.nodeOf(c);
  await node.kill();
  await node.restart();
  await waitFor(() => servesCluster(app.url, c), 15_000, 'readyz after restart');

  // The reads share a connection, the writes another: each may find the node a moment later.
  assert.equal((await untilServed(() => get(app.url, `${base}/job-results/${job}`))).body.state, 'dirty');
  assert.deepEqual(Buffer.from(await (await fetch(`${app.url}${base}/execution-plans/${job}`)).arrayBuffer()), plan);
  assert.deepEqual(Buffer.from(await (await fetch(`${app.url}${base}/blobs/${job}/lib.jar`)).arrayBuffer()), blob);
  assert.deepEqual((await get(app.url, `${base}/jobs/${job}/checkpoints/latest`)).body, cp);
  assert.equal((await untilServed(() => write(app.url, 'POST', `${base}/jobs/${job}/checkpoint-id-counter/increment`, jm))).body.value, 4);
  assert.equal((await get(app.url, '/readyz')).body.dataLoss.count, 0);
});

test('without persistence, a lost counter is reported, not silent, and the vanished leases fence nothing', TEST, async (t) => {
  const redis = await ownRedis({ aof: false });
  const app = await startApp(t, redis.url);
  const c = uniqueCluster('lost');
  const job = randomJobId();
  const counter = `/v1/clusters/${c}/jobs/${job}/checkpoint-id-counter`;
  const jm = await tokenOf(app.url, c, `jobmanager/${job}`, 2000);
  for (let i = 1; i <= 4; i++) assert.equal((await write(app.url, 'POST', `${counter}/increment`, jm)).body.value, i);
  // On a Redis Cluster, a cluster on another shard, whose node keeps its data.
  const elsewhere = await clusterElsewhere(redis, c);
  const kept = elsewhere && { counter: `/v1/clusters/${elsewhere}/jobs/${job}/checkpoint-id-counter`, jm: await tokenOf(app.url, elsewhere, `jobmanager/${job}`) };
  if (kept) assert.equal((await write(app.url, 'POST', `${kept.counter}/increment`, kept.jm)).body.value, 1);

  const node = await redis.nodeOf(c);
  await node.kill();
  await node.restart();
  await waitFor(async () => (await get(app.url, '/readyz')).body?.dataLoss?.count >= 1, 15_000, 'the data loss reported by readyz');
  const metrics = await (await fetch(`${app.url}/metrics`)).text();
  assert.match(metrics, /^leasehold_redis_data_loss_total [1-9]/m);

  // The job manager's lease went with the data: its token writes nothing any more.
  const refused = await write(app.url, 'POST', `${counter}/increment`, jm);
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error, 'FencingTokenStale');
  // Nothing is granted until the lost lease has run out (the grace after a data loss)...
  const early = await post(app.url, `/v1/clusters/${c}/leaders/jobmanager/${job}/campaign`, { contenderId: 'jm-2', ttlMs: 2000 });
  assert.equal(early.status, 503);
  assert.equal(early.body.error, 'GracePeriod');
  // ...then a new leader's token is above the lost one, and the counter goes on above the
  // ids handed out before the loss: the server wrote its floor back.
  let jm2 = 0;
  await waitFor(
    async () => {
      const r = await post(app.url, `/v1/clusters/${c}/leaders/jobmanager/${job}/campaign`, { contenderId: 'jm-2', ttlMs: 2000 });
      jm2 = r.body.granted ? r.body.leader.fencingToken : 0;
      return jm2 > 0;
    },
    15_000,
    'a grant after the grace',
  );
  assert.ok(jm2 > jm);
  assert.equal((await write(app.url, 'POST', `${counter}/increment`, jm2)).body.value, 5);
  // The other shard's cluster lost nothing: its lease still fences, its counter goes on.
  if (kept) assert.equal((await write(app.url, 'POST', `${kept.counter}/increment`, kept.jm)).body.value, 2);
});
