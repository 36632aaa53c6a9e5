/**
 * Blobs when Redis loses data (docs/design.md §9): a blob commits only when every staged
 * chunk is there, and a download never promises bytes it cannot send.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { scanKeys, stopAllRedis } from './support/redis.js';
import { restoreSnapshot, snapshot } from './support/topology.js';
import { clusterElsewhere, connectRedis, get, ownRedis, post, randomJobId, readyEverywhere, startApp, uniqueCluster, waitFor } from './support/app.js';

after(() => stopAllRedis());

const MIB = 1 << 20;

/** An upload of `name` to `cluster`'s blobs, sent in parts as the test says, by its dispatcher. */
async function upload(appUrl: string, cluster: string, name: string) {
  const c = await post(appUrl, `/v1/clusters/${cluster}/leaders/dispatcher/campaign`, { contenderId: 'd', ttlMs: 120_000 });
  assert.equal(c.body.granted, true, JSON.stringify(c.body));
  const job = randomJobId();
  const { port } = new URL(appUrl);
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'PUT',
    path: `/v1/clusters/${cluster}/blobs/${job}/${name}`,
    headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': String(c.body.leader.fencingToken) },
  });
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
  return { job, req, answer };
}

test('an upload whose staged chunks Redis lost (a restored backup) does not commit', async (t) => {
  const redis = await ownRedis();
  const app = await startApp(t, redis.url);
  // Its errors while the node restarts are expected; it reconnects by itself.
  const admin = (await connectRedis(redis.url)).on('error', () => {});
  t.after(() => admin.disconnect());
  const cluster = uniqueCluster('blobloss');
  // On a Redis Cluster, the shard of this cluster's keys is the one restored, and an upload
  // to a cluster on another shard, under way throughout, commits.
  const node = await redis.nodeOf(cluster);
  const other = await clusterElsewhere(redis, cluster, 'other');
  const staged = async (cluster: string, n: number) => {
    await waitFor(async () => {
      const keys = await scanKeys(admin, `lh:{${cluster}}:blobdata:*`);
      return keys.length === 1 && (await admin.llen(keys[0])) === n;
    }, 10_000, `${n} chunks staged`);
  };
  const lost = await upload(app.url, cluster, 'job.jar');
  const kept = other === null ? null : await upload(app.url, other, 'job.jar');
  for (const u of [lost, kept]) u?.req.write(Buffer.alloc(MIB + 1, 1));
  await staged(cluster, 1);
  if (other) await staged(other, 1);
  const backup = await snapshot(node);
  for (const u of [lost, kept]) u?.req.write(Buffer.alloc(MIB, 2));
  await staged(cluster, 2);
  if (other) await staged(other, 2);
  // Redis comes back from the backup, which has one staged chunk, not two.
  await restoreSnapshot(node, backup);
  // Ready again once the server has seen the restart (a new run id): before that, it may
  // still be about to find the node down (on a Redis Cluster, 503 for that shard only).
  await waitFor(async () => (await readyEverywhere(app.app)) && (await get(app.url, '/readyz')).body.primaryChanges >= 1, 15_000, 'ready again');
  for (const u of [lost, kept]) u?.req.end(Buffer.alloc(1000, 3));

  const r = await lost.answer;
  assert.notEqual(r.status, 201, `committed with a lost chunk: ${JSON.stringify(r.body)}`);
  assert.equal(r.status, 503, JSON.stringify(r.body));
  assert.match(r.body.message, /staged upload is gone/, 'refused for the lost chunk, not for Redis being away');
  const read = await get(app.url, `/v1/clusters/${cluster}/blobs/${lost.job}`);
  assert.deepEqual(read.body.blobs, [], `no blob became visible: ${read.status} ${JSON.stringify(read.body)}`);
  if (kept) {
    const k = await kept.answer;
    assert.equal(k.status, 201, `the other shard's upload: ${JSON.stringify(k.body)}`);
    const body = await fetch(`${app.url}/v1/clusters/${other}/blobs/${kept.job}/job.jar`);
    assert.equal(body.status, 200);
    assert.equal((await body.arrayBuffer()).byteLength, 2 * MIB + 1 + 1000);
  }
});

test('a blob whose chunks are fewer than it was committed with answers 410 BlobDataLost, not a short body', async (t) => {
  const redis = await ownRedis();
  const app = await startApp(t, redis.url);
  const admin = await connectRedis(redis.url);
  t.after(() => admin.disconnect());
  const cluster = uniqueCluster('blobloss');
  const c = await post(app.url, `/v1/clusters/${cluster}/leaders/dispatcher/campaign`, { contenderId: 'd', ttlMs: 120_000 });
  const job = randomJobId();
  const path = `/v1/clusters/${cluster}/blobs/${job}/state.bin`;
  const put = await fetch(app.url + path, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': String(c.body.leader.fencingToken) },
    body: Buffer.alloc(3 * MIB, 7),
  });
  assert.equal(put.status, 201);
  const [chunks] = await scanKeys(admin, `lh:{${cluster}}:blobdata:*`);
  assert.equal(await admin.llen(chunks), 3);
  // As a lost write leaves it: the last chunk is gone.
  await admin.ltrim(chunks, 0, 1);

  const r = await fetch(app.url + path, { signal: AbortSignal.timeout(10_000) });
  const body = await r.json();
  assert.equal(r.status, 410, JSON.stringify(body));
  assert.equal(body.error, 'BlobDataLost');
  assert.match(body.message, /2 of 3 chunks/);
});
