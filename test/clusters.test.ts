/**
 * The cluster listing, `GET /v1/clusters` (issue 20): the clusters a deployment holds, from
 * the registry `lh:clusters` (src/ha/clusterRegistry.ts), only those the caller's token may
 * use, by id, in pages, searchable by prefix. Clusters appear with their first write (a
 * campaign's birth, an admin's unfenced store write), go with their deletion, and a
 * registry that lost entries (or holds stale ones) is repaired at start-up. Reads of
 * unknown clusters add nothing (issue 16).
 *
 * The tests share one Redis: each names its clusters with a prefix of its own and lists
 * with that prefix.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { connectRedis, get, post, randomJobId, request, sharedRedisUrl, startApp, uniqueCluster, waitFor, type Running } from './support/app.js';
import { RedisProcess, scanKeys, stopAllRedis } from './support/redis.js';

const REGISTRY = 'lh:clusters';

let srv: Running;
let redis: Redis;
let redisUrl: string;
before(async () => {
  redisUrl = await sharedRedisUrl();
  srv = await startApp(null, redisUrl);
  redis = await connectRedis(redisUrl);
});
after(async () => {
  redis?.disconnect();
  await srv?.close();
  await stopAllRedis();
});

/** Every page of the listing with `prefix`, each checked to hold at most `limit`. */
async function listAll(base: string, prefix: string, limit?: number, token?: string): Promise<any[]> {
  const entries: any[] = [];
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ prefix });
    if (limit !== undefined) q.set('limit', String(limit));
    if (cursor) q.set('cursor', cursor);
    const r = await request(base, 'GET', `/v1/clusters?${q}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.clusters.length <= (limit ?? 100));
    entries.push(...r.body.clusters);
    cursor = r.body.nextCursor;
  } while (cursor);
  return entries;
}

const ids = (entries: any[]) => entries.map((e) => e.clusterId);

test('a cluster appears with its first campaign, showing its leaders, leadership and job managers', async () => {
  const p = uniqueCluster('cl-born');
  const [a, b] = [`${p}-a`, `${p}-b`];
  assert.deepEqual(await listAll(srv.url, p), []);
  const before = Date.now();
  const c = await post(srv.url, `/v1/clusters/${a}/leaders/dispatcher/campaign`, { contenderId: 'd-1', address: 'http://d:1' });
  assert.equal(c.status, 200);
  const jm = await post(srv.url, `/v1/clusters/${a}/leaders/jobmanager/${randomJobId()}/campaign`, { contenderId: 'jm-1' });
  assert.equal(jm.status, 200);
  const ls = await post(srv.url, `/v1/clusters/${b}/leadership/campaign`, { contenderId: 'jm-process' });
  assert.equal(ls.status, 200);
  // Listed by every server that hears the birth: within moments.
  await waitFor(async () => ids(await listAll(srv.url, p)).length === 2, 5000, 'both clusters listed');
  const [ea, eb] = await listAll(srv.url, p);
  assert.equal(ea.clusterId, a);
  assert.equal(ea.leaders.resourcemanager, null);
  assert.equal(ea.leaders.rest, null);
  assert.deepEqual({ ...ea.leaders.dispatcher, leaseRemainingMs: 0 }, { ...c.body.leader, leaseRemainingMs: 0 });
  assert.ok(ea.leaders.dispatcher.leaseRemainingMs > 0 && ea.leaders.dispatcher.leaseRemainingMs <= 10_000);
  assert.equal(ea.leadership, null);
  assert.equal(ea.jobCount, 1);
  const leaders = await get(srv.url, `/v1/clusters/${a}/leaders`);
  assert.equal(ea.index, leaders.body.index);
  const at = Date.parse(ea.lastChangeAt);
  assert.ok(at >= before - 5000 && at <= Date.now() + 5000, `lastChangeAt ${ea.lastChangeAt} is about now`);

  assert.equal(eb.clusterId, b);
  assert.deepEqual(eb.leaders, { resourcemanager: null, dispatcher: null, rest: null });
  assert.equal(eb.leadership.contenderId, 'jm-process');
  assert.equal(eb.leadership.sessionId, ls.body.leadership.sessionId);
  assert.equal(eb.leadership.token, ls.body.leadership.token);
  assert.equal(eb.leadership.publishedCount, 0);
  assert.ok(eb.leadership.remainingMs > 0);
  assert.equal(eb.jobCount, 0);

  // A component published under the leadership shows its holder.
  const pub = await post(srv.url, `/v1/clusters/${b}/leadership/publish`, {
    sessionId: ls.body.leadership.sessionId,
    component: 'rest',
    address: 'http://rest:8081',
  });
  assert.equal(pub.status, 200, JSON.stringify(pub.body));
  const [, eb2] = await listAll(srv.url, p);
  assert.equal(eb2.leaders.rest.sessionId, ls.body.leadership.sessionId);
  assert.equal(eb2.leaders.rest.address, 'http://rest:8081');
  assert.equal(eb2.leadership.publishedCount, 1);
});

test("an admin's unfenced store write lists a cluster that had no data, before it is answered", async () => {
  const c = uniqueCluster('cl-store');
  const w = await request(srv.url, 'PUT', `/v1/clusters/${c}/job-results/${randomJobId()}`, {
    body: { applicationStatus: 'SUCCEEDED' },
    headers: { 'x-fencing-token': 'override' },
  });
  assert.equal(w.status, 201, JSON.stringify(w.body));
  const [e] = await listAll(srv.url, c);
  assert.deepEqual(e, {
    clusterId: c,
    leaders: { resourcemanager: null, dispatcher: null, rest: null },
    leadership: null,
    jobCount: 0,
    lastChangeAt: null,
    index: null,
  });
});

test('reads of unknown clusters add nothing to the listing', async () => {
  const c = uniqueCluster('cl-unknown');
  assert.equal((await get(srv.url, `/v1/clusters/${c}/leaders`)).status, 200);
  assert.equal((await get(srv.url, `/v1/clusters/${c}/leaders/dispatcher?index=1&wait=100ms`)).status, 200);
  assert.equal((await get(srv.url, `/v1/clusters/${c}/leadership`)).status, 200);
  assert.equal((await get(srv.url, `/v1/clusters/${c}/job-results`)).status, 200);
  assert.equal((await get(srv.url, `/v1/clusters?prefix=${c}`)).status, 200);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await listAll(srv.url, c), []);
  assert.equal(await redis.zscore(REGISTRY, c), null);
  assert.deepEqual(await scanKeys(redis, `lh:{${c}}:*`), []);
});

test('a token sees only its clusters; a token for * sees all; a token without read is refused', async (t) => {
  const p = uniqueCluster('cl-auth');
  const [a, b, c, missing] = [`${p}-a`, `${p}-b`, `${p}-c`, `${p}-missing`];
  const tokens = JSON.stringify([
    { name: 'ab', token: 'reader-of-a-and-b-0001', role: 'read', clusters: [a, b, missing] },
    { name: 'all', token: 'reader-of-everything-01', role: 'read', clusters: ['*'] },
  ]);
  const app = await startApp(t, redisUrl, { AUTH_TOKENS: tokens });
  for (const id of [a, b, c]) await post(srv.url, `/v1/clusters/${id}/leaders/rest/campaign`, { contenderId: 'r' });
  await waitFor(async () => (await listAll(srv.url, p)).length === 3, 5000, 'three listed');
  assert.deepEqual(ids(await listAll(app.url, p, 1, 'reader-of-a-and-b-0001')), [a, b]);
  assert.deepEqual(ids(await listAll(app.url, `${p}-b`, undefined, 'reader-of-a-and-b-0001')), [b]);
  assert.deepEqual(ids(await listAll(app.url, p, 2, 'reader-of-everything-01')), [a, b, c]);
  assert.equal((await request(app.url, 'GET', '/v1/clusters')).status, 401);
  assert.equal((await request(app.url, 'GET', '/v1/clusters', { headers: { authorization: 'Bearer nope-nope-nope' } })).status, 401);
});

test('2,500 clusters page without repeats or gaps, at any limit, and by prefix', async () => {
  const p = uniqueCluster('cl-many');
  const all = Array.from({ length: 2500 }, (_, i) => `${p}-${String(i).padStart(4, '0')}`);
  // Born the way a campaign bears them (an index, then the birth's ZADD), in bulk.
  for (let i = 0; i < all.length; i += 500) {
    const batch = all.slice(i, i + 500);
    // Not one pipeline: on a Redis Cluster the indexes live on every shard.
    await Promise.all(batch.map((id) => redis.set(`lh:{${id}}:index`, String(Date.now() * 1000 + 2))));
    await redis.zadd(REGISTRY, ...batch.flatMap((id) => [0, id]));
  }
  const sorted = [...all].sort();
  for (const limit of [1000, 333, undefined]) {
    const listed = ids(await listAll(srv.url, p, limit));
    assert.equal(new Set(listed).size, listed.length, `limit ${limit}: no repeats`);
    assert.deepEqual(listed, sorted, `limit ${limit}: all, in order`);
  }
  assert.deepEqual(ids(await listAll(srv.url, `${p}-12`)), sorted.filter((id) => id.startsWith(`${p}-12`)));
  assert.equal((await listAll(srv.url, `${p}-12`)).length, 100);
  assert.deepEqual(ids(await listAll(srv.url, `${p}-12`, 7)), sorted.filter((id) => id.startsWith(`${p}-12`)));
  assert.deepEqual(await listAll(srv.url, `${p}-9`), []);
  // A cursor of another list, or of no list, is a 400.
  const other = Buffer.from('jr:0123456789abcdef0123456789abcdef').toString('base64url');
  assert.equal((await get(srv.url, `/v1/clusters?cursor=${other}`)).status, 400);
  assert.equal((await get(srv.url, '/v1/clusters?limit=0')).status, 400);
  assert.equal((await get(srv.url, '/v1/clusters?prefix=a%20b')).status, 400);
  await redis.zrem(REGISTRY, ...all);
  await Promise.all(all.map((id) => redis.del(`lh:{${id}}:index`)));
});

test('a deleted cluster leaves the listing', async () => {
  const c = uniqueCluster('cl-deleted');
  await post(srv.url, `/v1/clusters/${c}/leaders/resourcemanager/campaign`, { contenderId: 'rm' });
  await waitFor(async () => (await listAll(srv.url, c)).length === 1, 5000, 'listed');
  const d = await request(srv.url, 'DELETE', `/v1/clusters/${c}`);
  assert.equal(d.status, 200);
  assert.deepEqual(await listAll(srv.url, c), []);
  // Born again: listed again.
  await post(srv.url, `/v1/clusters/${c}/leaders/resourcemanager/campaign`, { contenderId: 'rm' });
  await waitFor(async () => (await listAll(srv.url, c)).length === 1, 5000, 'listed again');
});

test('a registry that lost entries, or holds stale ones, is repaired at start-up', async (t) => {
  const p = uniqueCluster('cl-repair');
  const [born, crashed, stale] = [`${p}-born`, `${p}-crashed`, `${p}-stale`];
  await post(srv.url, `/v1/clusters/${born}/leaders/dispatcher/campaign`, { contenderId: 'd' });
  await waitFor(async () => (await redis.zscore(REGISTRY, born)) !== null, 5000, 'listed');
  // Lost: the registry entry goes (as with DEL lh:clusters, which the other tests' clusters
  // would miss); a server that crashed between a birth and its ZADD: an index, no entry; a
  // cluster deleted by a server that crashed before its ZREM: an entry, no data.
  await redis.zrem(REGISTRY, born);
  await redis.set(`lh:{${crashed}}:index`, String(Date.now() * 1000));
  await redis.zadd(REGISTRY, 0, stale);
  assert.deepEqual(ids(await listAll(srv.url, p)), [stale]);
  const restarted = await startApp(t, redisUrl);
  await waitFor(async () => ids(await listAll(restarted.url, p)).join() === [born, crashed].join(), 10_000, 'repaired');
  await redis.del(`lh:{${crashed}}:index`);
});

test('DEL lh:clusters: a restart lists every cluster again', async (t) => {
  const p = uniqueCluster('cl-del');
  for (const id of [`${p}-1`, `${p}-2`]) await post(srv.url, `/v1/clusters/${id}/leaders/rest/campaign`, { contenderId: 'r' });
  await waitFor(async () => (await listAll(srv.url, p)).length === 2, 5000, 'listed');
  await redis.del(REGISTRY);
  assert.deepEqual(await listAll(srv.url, p), []);
  const restarted = await startApp(t, redisUrl);
  await waitFor(async () => (await listAll(restarted.url, p)).length === 2, 10_000, 'repaired');
});

test('Redis lost data (its marker gone with the registry): a running server repairs the listing', async (t) => {
  // A Redis of its own: the loss's grace must not touch the other tests' clusters.
  const own = await RedisProcess.start();
  const app = await startApp(t, own.url);
  const direct = new Redis(own.url);
  t.after(() => direct.disconnect());
  const c = uniqueCluster('cl-loss');
  await post(app.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd', ttlMs: 1000 });
  await waitFor(async () => (await listAll(app.url, c)).length === 1, 5000, 'listed');
  await direct.del('leasehold:marker', REGISTRY);
  await waitFor(async () => (await get(app.url, '/readyz')).body.dataLoss.count >= 1, 10_000, 'the loss detected');
  await waitFor(async () => (await listAll(app.url, c)).length === 1, 10_000, 'listed again');
});
