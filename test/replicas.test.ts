/**
 * Two server replicas that share nothing but Redis (docs/design.md §1, §4): a change made through
 * one reaches watchers and long-polls on the other, an expiry is told once by whichever
 * replica notices it first, and concurrent campaigns through both elect one leader.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { get, post, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, Watch, type Running } from './support/app.js';
import { stopAllRedis } from './support/redis.js';
import type { TestContext } from 'node:test';

after(() => stopAllRedis());

const leadersPath = (cluster: string) => `/v1/clusters/${cluster}/leaders`;
const leaderPath = (cluster: string, component: string) => `${leadersPath(cluster)}/${component}`;
const watchUrl = (app: Running, cluster: string, query = '') => `${app.wsUrl}/v1/clusters/${cluster}/watch${query}`;

/** Two replicas on the same Redis. */
async function twoReplicas(t: TestContext): Promise<[Running, Running]> {
  const redisUrl = await sharedRedisUrl();
  return Promise.all([startApp(t, redisUrl), startApp(t, redisUrl)]);
}

function campaign(app: Running, cluster: string, component: string, body: Record<string, unknown>) {
  return post(app.url, `${leaderPath(cluster, component)}/campaign`, body);
}

async function lead(app: Running, cluster: string, component: string, body: Record<string, unknown>) {
  const r = await campaign(app, cluster, component, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.granted, true, JSON.stringify(r.body));
  return r.body.leader;
}

/** A watcher that has had its snapshot. */
async function watcher(t: TestContext, app: Running, cluster: string, query = ''): Promise<Watch> {
  const w = await Watch.open(t, watchUrl(app, cluster, query));
  const [snapshot] = await w.count(1);
  assert.equal(snapshot.type, 'snapshot');
  return w;
}

const changesOf = (w: Watch, component: string) => w.messages.filter((m) => m.type === 'change' && m.component === component);

test('a grant made through replica A reaches a websocket watcher on replica B', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const onB = await watcher(t, b, cluster);

  const granted = await lead(a, cluster, 'dispatcher', { contenderId: 'd-1', address: 'http://d-1' });
  const g = await onB.find((m) => m.type === 'change' && m.component === 'dispatcher', 2_000);
  assert.equal(g.event, 'granted');
  assert.equal(g.leader.sessionId, granted.sessionId);
  assert.equal(g.leader.fencingToken, granted.fencingToken);
  assert.equal(g.leader.address, 'http://d-1');

  // and so do confirm and resign
  await post(a.url, `${leaderPath(cluster, 'dispatcher')}/confirm`, { contenderId: 'd-1', sessionId: granted.sessionId, address: 'http://d-1:2' });
  await post(a.url, `${leaderPath(cluster, 'dispatcher')}/resign`, { contenderId: 'd-1', sessionId: granted.sessionId });
  await onB.count(4, 2_000);
  assert.deepEqual(changesOf(onB, 'dispatcher').map((m) => m.event), ['granted', 'confirmed', 'revoked']);
  const indexOnA = (await get(a.url, leadersPath(cluster))).body.index;
  assert.equal(onB.messages.at(-1).index, indexOnA);
});

test('a campaign through replica A wakes a long-poll held on replica B', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const n = (await get(b.url, leadersPath(cluster))).body.index;

  for (const path of [leadersPath(cluster), leaderPath(cluster, 'resourcemanager')]) {
    // B must have caught up with everything done through A so far (the previous round's resign).
    // Until its first write a cluster has no stored index: each replica answers its own, from
    // Redis's clock (odd; docs/decisions.md), and the poll waits past the higher of the two.
    const viaA = (await get(a.url, leadersPath(cluster))).body.index;
    await waitFor(async () => viaA % 2 === 1 || (await get(b.url, leadersPath(cluster))).body.index === viaA, 2_000, 'B caught up');
    const current = Math.max(viaA, (await get(b.url, leadersPath(cluster))).body.index);
    const started = performance.now();
    let settled = false;
    const poll = get(b.url, `${path}?index=${current}&wait=5s`).then((r) => ((settled = true), r));
    await sleep(300);
    assert.equal(settled, false, `${path} answered before anything changed`);

    const granted = await lead(a, cluster, 'resourcemanager', { contenderId: `rm-${path.length}`, ttlMs: 60_000 });
    const r = await poll;
    const ms = performance.now() - started;
    assert.equal(r.status, 200);
    assert.ok(ms < 4_000, `${path} on B woken only after ${ms} ms`);
    assert.ok(r.body.index > current && current >= n);
    const leader = r.body.leader ?? r.body.leaders.find((l: any) => l.component === 'resourcemanager').leader;
    assert.equal(leader.sessionId, granted.sessionId);
    await post(a.url, `${leaderPath(cluster, 'resourcemanager')}/resign`, { contenderId: leader.contenderId, sessionId: leader.sessionId });
  }
});

test('GET on replica B shows a leader granted through replica A within a short bound', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  // B already has the cluster open, so it must learn of the change rather than read it fresh
  assert.equal((await get(b.url, leaderPath(cluster, 'rest'))).body.leader, null);

  const granted = await lead(a, cluster, 'rest', { contenderId: 'rest-1', address: 'http://rest-1' });
  const started = performance.now();
  await waitFor(async () => (await get(b.url, leaderPath(cluster, 'rest'))).body.leader?.sessionId === granted.sessionId, 1_000, 'leader on B');
  const ms = performance.now() - started;
  assert.ok(ms < 1_000, `B showed the leader after ${ms} ms`);

  const onB = await get(b.url, leaderPath(cluster, 'rest'));
  assert.equal(onB.body.leader.fencingToken, granted.fencingToken);
  assert.equal(onB.body.leader.address, 'http://rest-1');
  assert.equal(onB.body.index, (await get(a.url, leaderPath(cluster, 'rest'))).body.index);
});

test('an expired lease is pushed as expired exactly once to watchers on both replicas, with the same index', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const onA = await watcher(t, a, cluster);
  const onB = await watcher(t, b, cluster);

  const started = performance.now();
  const granted = await lead(a, cluster, 'dispatcher', { contenderId: 'd-1', ttlMs: 1000 });
  const [expiredA, expiredB] = await Promise.all([
    onA.find((m) => m.type === 'change' && m.event === 'expired', 3_000),
    onB.find((m) => m.type === 'change' && m.event === 'expired', 3_000),
  ]);
  const ms = performance.now() - started;
  assert.ok(ms < 2_500, `expiry reached both watchers only after ${ms} ms`);

  // time for a second, duplicate expiry to show up if either replica recorded one
  await sleep(1_000);
  for (const [name, w] of [['A', onA], ['B', onB]] as const) {
    const events = changesOf(w, 'dispatcher');
    assert.deepEqual(events.map((m) => m.event), ['granted', 'expired'], `${name}: ${JSON.stringify(w.messages)}`);
    assert.equal(events[0].leader.sessionId, granted.sessionId);
    assert.equal(events[1].leader, null);
  }
  assert.equal(expiredA.index, expiredB.index);
  assert.equal(changesOf(onA, 'dispatcher')[0].index, changesOf(onB, 'dispatcher')[0].index);
  for (const app of [a, b]) {
    const r = await get(app.url, leaderPath(cluster, 'dispatcher'));
    assert.equal(r.body.leader, null);
    assert.equal(r.body.index, expiredA.index);
  }
});

test('a lease granted through replica A is renewed through replica B', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const onA = await watcher(t, a, cluster);
  const onB = await watcher(t, b, cluster);
  const component = 'resourcemanager';

  const granted = await lead(a, cluster, component, { contenderId: 'rm-1', ttlMs: 1500 });
  await sleep(500);
  const renewed = await post(b.url, `${leaderPath(cluster, component)}/renew`, { contenderId: 'rm-1', sessionId: granted.sessionId, ttlMs: 10_000 });
  assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
  assert.equal(renewed.body.leader.sessionId, granted.sessionId);
  assert.equal(renewed.body.leader.fencingToken, granted.fencingToken);
  assert.ok(renewed.body.leader.leaseRemainingMs > 9_000, `${renewed.body.leader.leaseRemainingMs}`);

  // replica A learns the new lease time at once, not when its old timer runs out
  await waitFor(async () => (await get(a.url, leaderPath(cluster, component))).body.leader.leaseRemainingMs > 9_000, 500, 'A shows the renewed lease time');

  // well past the first TTL: the lease still stands on both replicas and nobody was told it expired
  await sleep(2_000);
  for (const app of [a, b]) {
    const r = await get(app.url, leaderPath(cluster, component));
    assert.equal(r.body.leader?.sessionId, granted.sessionId, `${app.url}: ${JSON.stringify(r.body)}`);
    assert.ok(r.body.leader.leaseRemainingMs > 5_000, `${app.url}: ${r.body.leader.leaseRemainingMs}`);
  }
  for (const w of [onA, onB]) assert.deepEqual(changesOf(w, component).map((m) => m.event), ['granted']);

  // another contender still cannot take it, through either replica
  for (const app of [a, b]) {
    const r = await campaign(app, cluster, component, { contenderId: 'rm-2' });
    assert.equal(r.body.granted, false);
    assert.equal(r.body.leader.sessionId, granted.sessionId);
  }

  // and a renewal with the wrong session is refused through B as through A
  const wrong = await post(b.url, `${leaderPath(cluster, component)}/renew`, {
    contenderId: 'rm-1',
    sessionId: '00000000-0000-4000-8000-000000000000',
  });
  assert.equal(wrong.status, 409);
  assert.equal(wrong.body.error, 'NotLeader');
  assert.equal(wrong.body.leader.sessionId, granted.sessionId);
});

test('20 concurrent contenders across both replicas: exactly one is granted and all are told the same winner', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const onA = await watcher(t, a, cluster);
  const onB = await watcher(t, b, cluster);
  const component = 'dispatcher';

  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => campaign(i % 2 === 0 ? a : b, cluster, component, { contenderId: `contender-${i}`, ttlMs: 30_000 })),
  );
  for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));

  const winners = answers.filter((r) => r.body.granted);
  assert.equal(winners.length, 1, `granted: ${winners.map((r) => r.body.leader.contenderId).join(', ')}`);
  const winner = winners[0].body.leader;
  for (const r of answers) {
    assert.equal(r.body.leader.contenderId, winner.contenderId);
    assert.equal(r.body.leader.sessionId, winner.sessionId);
    assert.equal(r.body.leader.fencingToken, winner.fencingToken);
  }

  // the winner's fencing token is the same on every replica, read or watched
  for (const app of [a, b]) {
    await waitFor(async () => (await get(app.url, leaderPath(cluster, component))).body.leader?.sessionId === winner.sessionId, 2_000, `winner on ${app.url}`);
    const r = await get(app.url, leaderPath(cluster, component));
    assert.equal(r.body.leader.fencingToken, winner.fencingToken);
    assert.equal(r.body.leader.contenderId, winner.contenderId);
  }
  await Promise.all([onA, onB].map((w) => w.find((m) => m.event === 'granted', 2_000)));
  await sleep(300);
  for (const w of [onA, onB]) {
    const grants = changesOf(w, component);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    assert.equal(grants[0].event, 'granted');
    assert.equal(grants[0].leader.sessionId, winner.sessionId);
    assert.equal(grants[0].leader.fencingToken, winner.fencingToken);
  }
  assert.equal(changesOf(onA, component)[0].index, changesOf(onB, component)[0].index);
});

test('a watcher that reconnects to the other replica with since gets exactly the changes it missed', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const first = await Watch.open(t, watchUrl(a, cluster));
  const [snapshot] = await first.count(1);
  first.close();
  await waitFor(() => first.closeCode !== null, 2_000, 'first watcher closed');

  const granted = await lead(a, cluster, 'dispatcher', { contenderId: 'd-1' });
  await post(a.url, `${leaderPath(cluster, 'dispatcher')}/confirm`, { contenderId: 'd-1', sessionId: granted.sessionId, address: 'http://d-1' });
  await post(a.url, `${leaderPath(cluster, 'dispatcher')}/resign`, { contenderId: 'd-1', sessionId: granted.sessionId });

  const resumed = await Watch.open(t, watchUrl(b, cluster, `?since=${snapshot.index}`));
  const messages = await resumed.count(3, 2_000);
  await sleep(300);
  assert.equal(resumed.messages.length, 3, JSON.stringify(resumed.messages));
  assert.deepEqual(messages.map((m) => [m.type, m.event]), [
    ['change', 'granted'],
    ['change', 'confirmed'],
    ['change', 'revoked'],
  ]);
  assert.ok(snapshot.index < messages[0].index && messages[0].index < messages[1].index && messages[1].index < messages[2].index);
});

test('a watcher resuming on B while changes keep coming through A misses none and doubles none', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const witness = await watcher(t, a, cluster);
  const noted = witness.messages[0].index;

  // a steady stream of changes through A, while B's watchers resume in the middle of it
  let stop = false;
  const stream = (async () => {
    for (let i = 0; !stop && i < 200; i++) {
      const held = await lead(a, cluster, 'rest', { contenderId: `rest-${i}` });
      await post(a.url, `${leaderPath(cluster, 'rest')}/resign`, { contenderId: held.contenderId, sessionId: held.sessionId });
    }
  })();
  const resumed: Watch[] = [];
  for (let i = 0; i < 5; i++) {
    await sleep(40);
    resumed.push(await Watch.open(t, watchUrl(b, cluster, `?since=${noted}`)));
  }
  await sleep(200);
  stop = true;
  await stream;

  const last = (await get(a.url, leadersPath(cluster))).body.index;
  await waitFor(() => witness.messages.at(-1).index === last, 2_000, 'witness up to date');
  const expected = witness.messages.slice(1).map((m) => m.index);
  assert.ok(expected.length >= 10, `only ${expected.length} changes were made`);
  for (const [k, w] of resumed.entries()) {
    await waitFor(() => w.messages.at(-1)?.index === last, 2_000, `resumed watcher ${k} up to date`);
    assert.ok(w.messages.every((m) => m.type === 'change'), `watcher ${k} got a snapshot`);
    assert.deepEqual(w.messages.map((m) => m.index), expected, `watcher ${k}`);
  }
});

test('after replica A shuts down, replica B alone tells its watchers that a lease granted through A expired', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const onB = await watcher(t, b, cluster);
  await get(a.url, leadersPath(cluster)); // A watches the cluster too, until it goes

  const granted = await lead(a, cluster, 'resourcemanager', { contenderId: 'rm-1', ttlMs: 1000 });
  await onB.find((m) => m.event === 'granted', 2_000);
  await a.close();

  const expired = await onB.find((m) => m.event === 'expired', 3_000);
  assert.equal(expired.component, 'resourcemanager');
  assert.equal(expired.leader, null);
  assert.ok(expired.index > onB.messages.find((m) => m.event === 'granted').index);
  const r = await get(b.url, leaderPath(cluster, 'resourcemanager'));
  assert.equal(r.body.leader, null);

  // and a new leader can take over through B, with a higher token
  const next = await lead(b, cluster, 'resourcemanager', { contenderId: 'rm-2' });
  assert.ok(next.fencingToken > granted.fencingToken);
});

test('a lease shortened by a renewal through B is pushed as expired to watchers on A when it ends', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const onA = await watcher(t, a, cluster);
  // B watches nothing of this cluster: it only passes the renewal on to Redis

  const granted = await lead(a, cluster, 'dispatcher', { contenderId: 'd-1', ttlMs: 30_000 });
  const renewed = await post(b.url, `${leaderPath(cluster, 'dispatcher')}/renew`, { contenderId: 'd-1', sessionId: granted.sessionId, ttlMs: 1000 });
  assert.equal(renewed.status, 200, JSON.stringify(renewed.body));

  const expired = await onA.find((m) => m.type === 'change' && m.event === 'expired', 3_000);
  assert.equal(expired.component, 'dispatcher');
  assert.equal((await get(a.url, leaderPath(cluster, 'dispatcher'))).body.leader, null);
});

test('renewals through a replica that does not follow the cluster answer the leader as it is now, after a confirm through the other replica changed its address', async (t) => {
  const [a, b] = await twoReplicas(t);
  const cluster = uniqueCluster();
  const component = 'dispatcher';
  const granted = await lead(a, cluster, component, { contenderId: 'd-1', ttlMs: 10_000, address: 'akka://old' });
  const renew = () => post(b.url, `${leaderPath(cluster, component)}/renew`, { contenderId: 'd-1', sessionId: granted.sessionId });
  for (let i = 0; i < 2; i++) {
    const r = await renew();
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual({ ...r.body.leader, leaseRemainingMs: 0 }, { ...granted, leaseRemainingMs: 0 }, `renewal ${i}`);
  }
  const confirmed = await post(a.url, `${leaderPath(cluster, component)}/confirm`, { contenderId: 'd-1', sessionId: granted.sessionId, address: 'akka://new' });
  assert.equal(confirmed.status, 200);
  const r = await renew();
  assert.equal(r.body.leader.address, 'akka://new');
  assert.equal(r.body.leader.fencingToken, granted.fencingToken);
});
