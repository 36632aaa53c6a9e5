/**
 * leasehold on a real Redis Cluster (issue 21): three primaries, three replicas
 * (test/support/redisCluster.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { get, post, randomJobId, request, startApp, waitFor, Watch, type Running } from './support/app.js';
import { scanKeys, stopAllRedis } from './support/redis.js';
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

const leader = (id: string, component: string) => `/v1/clusters/${id}/leaders/${component}`;

async function lead(base: string, id: string, component: string, contenderId = `c-${randomBytes(3).toString('hex')}`) {
  const r = await post(base, `${leader(id, component)}/campaign`, { contenderId, ttlMs: 5000, address: `akka://${contenderId}` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.granted, true, JSON.stringify(r.body));
  return r.body.leader as { contenderId: string; sessionId: string; fencingToken: number };
}

/** One cluster id on each shard, fresh for each test. */
async function spread(prefix: string): Promise<string[]> {
  const tag = `${prefix}-${randomBytes(3).toString('hex')}`;
  return Promise.all((await cluster.primaries()).map((p) => clusterIdOn(cluster, p, tag)));
}

function server(t: Parameters<typeof startApp>[0]): Promise<Running> {
  return startApp(t, undefined, { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_COMMAND_TIMEOUT_MS: '1000' });
}

test('clusters on all three shards: election, retrieval, watch with resume, stores and cleanup', async (t) => {
  const s = await server(t);
  await waitFor(async () => (await get(s.url, '/readyz')).body.redis === 'up', 10_000, 'every shard up');
  const ready = await get(s.url, '/readyz');
  assert.equal(ready.status, 200, JSON.stringify(ready.body));
  assert.equal(ready.body.shards.length, 3, JSON.stringify(ready.body));
  await waitFor(async () => (await get(s.url, '/readyz')).body.shards.every((sh: { replicas: number }) => sh.replicas === 1), 10_000, 'a replica on each shard');
  for (const id of await spread('all')) {
    const watch = await Watch.open(t, `${s.wsUrl}/v1/clusters/${id}/watch`);
    await watch.count(1);
    const rm = await lead(s.url, id, 'resourcemanager');
    const change = await watch.find((m) => m.type === 'change' && m.component === 'resourcemanager');
    assert.equal(change.leader.sessionId, rm.sessionId);
    const got = await get(s.url, leader(id, 'resourcemanager'));
    assert.equal(got.status, 200);
    assert.equal(got.body.leader.sessionId, rm.sessionId);
    // A renewal (acknowledged by the shard's replica: WAIT on the script's node).
    const renewed = await post(s.url, `${leader(id, 'resourcemanager')}/renew`, { contenderId: rm.contenderId, sessionId: rm.sessionId });
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    // Resume after the first change: the next ones, none doubled.
    const since = change.index;
    const disp = await lead(s.url, id, 'dispatcher');
    const resumed = await Watch.open(t, `${s.wsUrl}/v1/clusters/${id}/watch?since=${since}`);
    const next = await resumed.find((m) => m.type === 'change' && m.component === 'dispatcher');
    assert.equal(next.leader.sessionId, disp.sessionId);
    // Stores, fenced by the dispatcher's token.
    const jobId = randomJobId();
    const headers = { 'x-fencing-token': String(disp.fencingToken) };
    const put = await request(s.url, 'PUT', `/v1/clusters/${id}/job-results/${jobId}`, { body: { applicationStatus: 'SUCCEEDED' }, headers });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const plan = await request(s.url, 'PUT', `/v1/clusters/${id}/execution-plans/${jobId}`, { raw: randomBytes(300_000), headers });
    assert.ok(plan.status === 200 || plan.status === 201, JSON.stringify(plan.body));
    assert.equal((await get(s.url, `/v1/clusters/${id}/job-results/${jobId}`)).status, 200);
    // Every key of the cluster is on its shard.
    const primary = await cluster.primaryOf(`{${id}}`);
    const conn = new Redis({ port: primary.port, host: '127.0.0.1' });
    try {
      const keys = await scanKeys(conn, `lh:{${id}}:*`);
      assert.ok(keys.length > 3, JSON.stringify(keys));
      // Cleanup of the whole cluster, which scans its shard.
      const del = await request(s.url, 'DELETE', `/v1/clusters/${id}`);
      assert.equal(del.status, 200, JSON.stringify(del.body));
      assert.deepEqual(await scanKeys(conn, `lh:{${id}}:*`), []);
    } finally {
      conn.disconnect();
    }
    watch.close();
    resumed.close();
  }
});

/** Renews `id`'s resourcemanager lease every 100 ms until stopped; counts the answers by status. */
function renewing(base: string, id: string, held: { contenderId: string; sessionId: string }) {
  const statuses = new Map<number, number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await post(base, `${leader(id, 'resourcemanager')}/renew`, { contenderId: held.contenderId, sessionId: held.sessionId }).catch(() => ({ status: 0, body: null }));
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    statuses,
    stop: async () => {
      running = false;
      await loop;
      return statuses;
    },
  };
}

test('a primary killed (-9): its replica takes over, its clusters recover, the other shards never notice', async (t) => {
  const s = await server(t);
  await waitFor(async () => (await get(s.url, '/readyz')).body.redis === 'up', 10_000, 'every shard up');
  const ids = await spread('kill');
  const leaders = await Promise.all(ids.map((id) => lead(s.url, id, 'resourcemanager')));
  const loops = ids.map((id, i) => renewing(s.url, id, leaders[i]));
  await new Promise((r) => setTimeout(r, 500));
  const victim = await cluster.primaryOf(`{${ids[0]}}`);
  const downSeen = { victim: false, others: [] as number[] };
  const probing = (async () => {
    for (let i = 0; i < 40; i++) {
      const [a, ...rest] = await Promise.all(ids.map((id) => get(s.url, leader(id, 'resourcemanager'))));
      if (a.status === 503) downSeen.victim = true;
      for (const r of rest) if (r.status !== 200) downSeen.others.push(r.status);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const promoted = await cluster.killPrimary(victim);
  await probing;
  // Its clusters recover on the replica promoted: the lease the replica held is renewed again.
  await waitFor(
    async () => (await post(s.url, `${leader(ids[0], 'resourcemanager')}/renew`, { contenderId: leaders[0].contenderId, sessionId: leaders[0].sessionId })).status === 200,
    20_000,
    'the first shard renewing again',
  );
  const [victimStatuses, ...others] = await Promise.all(loops.map((l) => l.stop()));
  for (const [i, st] of others.entries()) assert.deepEqual([...st.keys()], [200], `shard ${i + 1}: ${JSON.stringify([...st])}`);
  assert.deepEqual(downSeen.others, []);
  assert.ok(downSeen.victim, 'the killed shard answered 503 while it was down');
  assert.ok([...victimStatuses.keys()].every((code) => code === 200 || code === 503), JSON.stringify([...victimStatuses]));
  const ready = await get(s.url, '/readyz');
  assert.ok(ready.body.shards.some((sh: { primary: string }) => sh.primary === `127.0.0.1:${promoted.port}`), JSON.stringify(ready.body));
  // The killed node comes back as a replica, for the tests after this one.
  await victim.restart();
  await cluster.waitOk();
});

/** Leaders of `rest` come and go on each cluster, as fast as they can, until stopped: the
 * session ids granted, per cluster, and every answer but a 200 or a retryable 503. */
function churning(base: string, ids: string[]) {
  const granted = ids.map(() => [] as string[]);
  const odd: string[] = [];
  let running = true;
  const retry = (status: number, what: string, body: unknown) => {
    if (status !== 503) odd.push(`${what} ${status} ${JSON.stringify(body)}`);
    return new Promise((r) => setTimeout(r, 20));
  };
  const loops = ids.map(async (id, i) => {
    for (let n = 0; running; n++) {
      const r = await post(base, `${leader(id, 'rest')}/campaign`, { contenderId: `rest-${n}`, ttlMs: 5000 });
      if (r.status !== 200) {
        await retry(r.status, 'campaign', r.body);
        continue;
      }
      if (!r.body.granted) continue;
      granted[i].push(r.body.leader.sessionId);
      const { contenderId, sessionId } = r.body.leader;
      for (;;) {
        const q = await post(base, `${leader(id, 'rest')}/resign`, { contenderId, sessionId });
        if (q.status === 200) break;
        await retry(q.status, 'resign', q.body);
      }
    }
  });
  return {
    granted,
    odd,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Waits until each watcher was told of every grant of its cluster. */
async function toldOfEveryGrant(watches: Watch[], granted: string[][]): Promise<void> {
  for (const [i, w] of watches.entries()) {
    assert.ok(granted[i].length > 0, `cluster ${i} granted`);
    await waitFor(
      () => {
        const seen = new Set(w.messages.filter((m) => m.type === 'change' && m.component === 'rest' && m.event === 'granted').map((m) => m.leader.sessionId));
        return granted[i].every((sid) => seen.has(sid));
      },
      10_000,
      `watcher ${i} told of all ${granted[i].length} grants`,
    );
  }
}

/** How many sharded subscribers each cluster's channel has on this node (PUBSUB SHARDNUMSUB). */
async function shardSubscribers(node: { port: number }, ids: string[]): Promise<number[]> {
  const c = new Redis({ port: node.port, host: '127.0.0.1' });
  try {
    const counts = (await c.call('PUBSUB', 'SHARDNUMSUB', ...ids.map((id) => `lh:{${id}}:changes`))) as Array<string | number>;
    return counts.filter((_, i) => i % 2 === 1).map(Number);
  } finally {
    c.disconnect();
  }
}

test('the slots of clusters under load move to another shard: only retryable 503s, and no watcher misses a change', async (t) => {
  const s = await server(t);
  await waitFor(async () => (await get(s.url, '/readyz')).body.redis === 'up', 10_000, 'every shard up');
  const [from, to] = await cluster.primaries();
  const tag = `move-${randomBytes(3).toString('hex')}`;
  const ids: string[] = [];
  for (let i = 0; ids.length < 3; i++) {
    const id = await clusterIdOn(cluster, from, `${tag}-${i}`);
    if (!ids.includes(id)) ids.push(id);
  }
  const leaders = await Promise.all(ids.map((id) => lead(s.url, id, 'resourcemanager')));
  const loops = ids.map((id, i) => renewing(s.url, id, leaders[i]));
  const watches = await Promise.all(ids.map((id) => Watch.open(t, `${s.wsUrl}/v1/clusters/${id}/watch`)));
  // Leaders of `rest` come and go on each cluster, as fast as they can, all along.
  const churn = churning(s.url, ids);
  await new Promise((r) => setTimeout(r, 500));
  for (const id of ids) await cluster.moveSlot(RedisClusterProcess.slotOf(`{${id}}`), to);
  for (const id of ids) assert.equal((await cluster.primaryOf(`{${id}}`)).port, to.port);
  // And redis-cli's reshard, of slots around theirs, while they keep going.
  await cluster.reshard(from, to, 50);
  await new Promise((r) => setTimeout(r, 500));
  await churn.stop();
  const statuses = await Promise.all(loops.map((l) => l.stop()));
  assert.deepEqual(churn.odd, []);
  for (const st of statuses) assert.ok([...st.keys()].every((code) => code === 200 || code === 503), JSON.stringify([...st]));
  // The server's sharded subscriptions moved with the slots.
  assert.deepEqual(await shardSubscribers(to, ids), [1, 1, 1]);
  await toldOfEveryGrant(watches, churn.granted);
  for (const w of watches) w.close();
});

/** Every node's port but those of `primary`'s shard (it and its replicas). */
async function nodesOutside(primary: { port: number }): Promise<number[]> {
  const shard = new Set([primary.port, ...(await cluster.replicasOf(cluster.node(primary.port))).map((r) => r.port)]);
  return cluster.nodes.filter((n) => n.child && !shard.has(n.port)).map((n) => n.port);
}

test('a change is published on its own shard only (sharded pub/sub): no node of another shard hears it', async (t) => {
  const s = await server(t);
  await waitFor(async () => (await get(s.url, '/readyz')).body.redis === 'up', 10_000, 'every shard up');
  const [id] = await spread('shard');
  const channel = `lh:{${id}}:changes`;
  const owner = await cluster.primaryOf(`{${id}}`);
  const w = await Watch.open(t, `${s.wsUrl}/v1/clusters/${id}/watch`);
  await lead(s.url, id, 'dispatcher');
  // The server follows the channel on the shard that owns it.
  await waitFor(async () => (await shardSubscribers(owner, [id]))[0] === 1, 10_000, 'the server sharded-subscribed on the owner');
  // A plain subscriber on each node of the other shards, and a sharded one on the owner.
  const heard = new Map<number, string[]>();
  const clients: Redis[] = [];
  t.after(() => clients.forEach((c) => c.disconnect()));
  for (const port of await nodesOutside(owner)) {
    const c = new Redis({ port, host: '127.0.0.1' });
    clients.push(c);
    heard.set(port, []);
    c.on('message', (_ch: string, m: string) => heard.get(port)!.push(m));
    await c.subscribe(channel);
  }
  const sharded = new Redis({ port: owner.port, host: '127.0.0.1' });
  clients.push(sharded);
  const onShard: string[] = [];
  sharded.on('smessage', (_ch: string, m: string) => onShard.push(m));
  await sharded.ssubscribe(channel);
  const { sessionId } = await lead(s.url, id, 'rest');
  await waitFor(() => onShard.some((m) => m.includes(sessionId)), 10_000, 'the change heard on its shard');
  await waitFor(() => w.messages.some((m) => m.type === 'change' && m.leader?.sessionId === sessionId), 10_000, 'the watcher told');
  await new Promise((r) => setTimeout(r, 300));
  for (const [port, ms] of heard) assert.deepEqual(ms, [], `node ${port} of another shard heard the change`);
});

test('a primary killed (-9) under churn: its watchers miss no change, the other shards\' watchers neither', async (t) => {
  // Grants are acknowledged once a replica holds them, so none is lost with the primary.
  const s = await startApp(t, undefined, { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_COMMAND_TIMEOUT_MS: '1000', REDIS_MIN_REPLICAS_ACK: '1' });
  await waitFor(async () => (await get(s.url, '/readyz')).body.redis === 'up', 10_000, 'every shard up');
  const ids = await spread('killwatch');
  const watches = await Promise.all(ids.map((id) => Watch.open(t, `${s.wsUrl}/v1/clusters/${id}/watch`)));
  const churn = churning(s.url, ids);
  await new Promise((r) => setTimeout(r, 500));
  const victim = await cluster.primaryOf(`{${ids[0]}}`);
  const promoted = await cluster.killPrimary(victim);
  // The promoted primary's shard answers again, and serves changes to the watchers.
  await waitFor(async () => (await get(s.url, leader(ids[0], 'rest'))).status === 200, 20_000, 'the first shard back');
  await new Promise((r) => setTimeout(r, 1000));
  await churn.stop();
  assert.deepEqual(churn.odd, []);
  await toldOfEveryGrant(watches, churn.granted);
  // The other shards' watchers got changes only, never a snapshot again (they noticed nothing).
  for (const w of watches.slice(1)) assert.equal(w.messages.filter((m) => m.type === 'snapshot').length, 1);
  // The server follows the victim's clusters on the promoted primary now.
  assert.deepEqual(await shardSubscribers(promoted, [ids[0]]), [1]);
  await victim.restart();
  await cluster.waitOk();
});
