/**
 * A cluster's leadership (issue 22, docs/design.md §3, docs/api.md "The leadership"): one
 * lease, session and token for a Flink process, under which it publishes the leader
 * information of its components. Against real Redis, with two server replicas on it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { scanKeys, stopAllRedis } from './support/redis.js';
import { get, post, randomJobId, connectRedis, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, Watch, type Running } from './support/app.js';

let a: Running;
let b: Running;
let redis: Redis;
let redisUrl: string;
before(async () => {
  redisUrl = await sharedRedisUrl();
  a = await startApp(null, redisUrl);
  b = await startApp(null, redisUrl);
  redis = await connectRedis(redisUrl);
});
after(async () => {
  redis.disconnect();
  await a.close();
  await b.close();
  await stopAllRedis();
});

const L = (c: string) => `/v1/clusters/${c}/leadership`;

async function send(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function lead(c: string, contenderId = 'jm-1', ttlMs = 10_000) {
  const r = await post(a.url, `${L(c)}/campaign`, { contenderId, ttlMs });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.granted, true);
  return r.body.leadership as { sessionId: string; token: number; contenderId: string };
}

/** Publishes the Flink components of a process: resource manager, dispatcher, REST, one job. */
async function publishAll(c: string, sessionId: string, job: string) {
  const components = ['resourcemanager', 'dispatcher', 'rest', `jobmanager/${job}`];
  for (const component of components) {
    const r = await post(a.url, `${L(c)}/publish`, { sessionId, component, address: `akka://${component}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  return components;
}

describe('campaign', () => {
  test('one winner among concurrent campaigns; the others are told who leads', async () => {
    const c = uniqueCluster('ls');
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post(i % 2 ? a.url : b.url, `${L(c)}/campaign`, { contenderId: `jm-${i}` })),
    );
    assert.ok(answers.every((r) => r.status === 200));
    const winners = answers.filter((r) => r.body.granted);
    assert.equal(winners.length, 1);
    const won = winners[0].body.leadership;
    assert.match(won.sessionId, /^[0-9a-f-]{36}$/);
    for (const r of answers) assert.equal(r.body.leadership.sessionId, won.sessionId);
    const again = await post(a.url, `${L(c)}/campaign`, { contenderId: won.contenderId, ttlMs: 20_000 });
    assert.equal(again.body.granted, true);
    assert.equal(again.body.leadership.sessionId, won.sessionId);
    assert.equal(again.body.leadership.ttlMs, 20_000);
    const read = await get(b.url, L(c));
    assert.equal(read.body.leadership.sessionId, won.sessionId);
    assert.equal(read.body.leadership.token, won.token);
  });

  test('renew extends the leadership; a stale session gets 409 NotLeader with the holder', async () => {
    const c = uniqueCluster('ls');
    const l = await lead(c, 'jm-1', 2000);
    await publishAll(c, l.sessionId, randomJobId());
    const r = await post(b.url, `${L(c)}/renew`, { contenderId: 'jm-1', sessionId: l.sessionId, ttlMs: 30_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.leadership.ttlMs, 30_000);
    assert.equal(r.body.leadership.components.length, 4);
    // Every published component's lease was extended with it.
    for (const comp of r.body.leadership.components) assert.ok((await redis.pttl(`lh:{${c}}:lease:${comp.component}`)) > 20_000);
    await waitFor(async () => (await get(a.url, `/v1/clusters/${c}/leaders/dispatcher`)).body.leader.leaseRemainingMs > 20_000);
    const stale = await post(a.url, `${L(c)}/renew`, { contenderId: 'jm-1', sessionId: '00000000-0000-4000-8000-000000000000' });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error, 'NotLeader');
    assert.equal(stale.body.leadership.sessionId, l.sessionId);
  });
});

describe('publish', () => {
  test('readers see a published component as any leader; a stale session may not publish', async () => {
    const c = uniqueCluster('ls');
    const job = randomJobId();
    const l = await lead(c);
    const watch = await Watch.open(null, `${b.wsUrl}/v1/clusters/${c}/watch`);
    await watch.count(1);
    const r = await post(a.url, `${L(c)}/publish`, { sessionId: l.sessionId, component: `jobmanager/${job.toUpperCase()}`, address: 'akka://jm' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.leader.sessionId, l.sessionId);
    assert.equal(r.body.leader.fencingToken, l.token);
    assert.equal(r.body.leader.address, 'akka://jm');
    const granted = await watch.find((m) => m.type === 'change');
    assert.equal(granted.event, 'granted');
    assert.equal(granted.component, `jobmanager/${job}`);
    await post(a.url, `${L(c)}/publish`, { sessionId: l.sessionId, component: `jobmanager/${job}`, address: 'akka://jm2' });
    const confirmed = await watch.find((m) => m.type === 'change' && m.event === 'confirmed');
    assert.equal(confirmed.leader.address, 'akka://jm2');
    const one = await get(b.url, `/v1/clusters/${c}/leaders/jobmanager/${job}?consistent`);
    assert.equal(one.body.leader.contenderId, 'jm-1');
    assert.equal(one.body.leader.sessionId, l.sessionId);
    assert.equal(one.body.leader.fencingToken, l.token);
    const all = await get(b.url, `/v1/clusters/${c}/leaders?consistent`);
    assert.equal(all.body.leaders.find((x: any) => x.component === `jobmanager/${job}`).leader.sessionId, l.sessionId);
    watch.close();

    // Resigned and won again: the old session is stale.
    assert.equal((await post(a.url, `${L(c)}/resign`, { contenderId: 'jm-1', sessionId: l.sessionId })).body.released, true);
    const l2 = await lead(c, 'jm-2');
    const stale = await post(a.url, `${L(c)}/publish`, { sessionId: l.sessionId, component: 'dispatcher', address: 'x' });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error, 'NotLeader');
    assert.equal(stale.body.leadership.sessionId, l2.sessionId);
    assert.ok(l2.token > l.token);
    const gone = await post(a.url, `${L(c)}/unpublish`, { sessionId: l.sessionId, component: 'dispatcher' });
    assert.equal(gone.status, 409);
    assert.equal((await get(a.url, `/v1/clusters/${c}/leaders/dispatcher?consistent`)).body.leader, null);
  });

  test('unpublish makes one component leaderless (revoked)', async () => {
    const c = uniqueCluster('ls');
    const l = await lead(c);
    await publishAll(c, l.sessionId, randomJobId());
    const r = await post(a.url, `${L(c)}/unpublish`, { sessionId: l.sessionId, component: 'rest' });
    assert.deepEqual(r.body, { removed: true });
    assert.deepEqual((await post(a.url, `${L(c)}/unpublish`, { sessionId: l.sessionId, component: 'rest' })).body, { removed: false });
    assert.equal((await get(b.url, `/v1/clusters/${c}/leaders/rest?consistent`)).body.leader, null);
    const read = await get(a.url, L(c));
    assert.deepEqual(
      read.body.leadership.components.map((x: any) => x.component),
      ['dispatcher', read.body.leadership.components[1].component, 'resourcemanager'],
    );
  });
});

describe('the end of a leadership clears every published component in one step', () => {
  for (const how of ['resign', 'revoke', 'expiry'] as const) {
    test(`by ${how}: pushed to a watcher on another replica, each change with its own index, in order`, async () => {
      const c = uniqueCluster('ls');
      const l = await lead(c, 'jm-1', how === 'expiry' ? 1500 : 10_000);
      const components = await publishAll(c, l.sessionId, randomJobId());
      const watch = await Watch.open(null, `${b.wsUrl}/v1/clusters/${c}/watch`);
      const [snapshot] = await watch.count(1);
      assert.equal(snapshot.leaders.filter((x: any) => x.leader?.sessionId === l.sessionId).length, 4);
      if (how === 'resign') {
        assert.deepEqual((await post(a.url, `${L(c)}/resign`, { contenderId: 'jm-1', sessionId: l.sessionId })).body, { released: true });
      } else if (how === 'revoke') {
        assert.deepEqual((await post(a.url, `${L(c)}/revoke`, { sessionId: l.sessionId })).body, { revoked: true });
      }
      const ended = await watch.count(1 + components.length, 10_000);
      const changes = ended.slice(1);
      const event = how === 'expiry' ? 'expired' : 'revoked';
      assert.deepEqual(
        changes.map((m) => [m.event, m.component, m.leader]),
        [...components].sort().map((comp) => [event, comp, null]),
      );
      for (let i = 1; i < changes.length; i++) assert.ok(changes[i].index > changes[i - 1].index, 'indexes increase');
      // One script: the log holds the changes one after another, nothing between them.
      const log = await redis.xrange(`lh:{${c}}:log`, '-', '+');
      const last = log.slice(-components.length).map(([, f]) => JSON.parse(f[3]));
      assert.deepEqual(last.map((x) => x.i), changes.map((m) => m.index));
      for (let i = 1; i < last.length; i++) assert.equal(last[i].p, last[i - 1].i);
      assert.equal((await get(a.url, L(c))).body.leadership, null);
      watch.close();
    });
  }

  test('revoke without a session ends whoever leads; a session that does not lead gets 409', async () => {
    const c = uniqueCluster('ls');
    const l = await lead(c);
    const wrong = await post(a.url, `${L(c)}/revoke`, { sessionId: '00000000-0000-4000-8000-000000000000' });
    assert.equal(wrong.status, 409);
    assert.equal(wrong.body.leadership.sessionId, l.sessionId);
    assert.deepEqual((await post(a.url, `${L(c)}/revoke`, {})).body, { revoked: true });
    assert.deepEqual((await post(a.url, `${L(c)}/revoke`, {})).body, { revoked: false });
    const renew = await post(a.url, `${L(c)}/renew`, { contenderId: 'jm-1', sessionId: l.sessionId });
    assert.equal(renew.status, 409);
    assert.equal(renew.body.leadership, null);
  });
});

describe('fencing', () => {
  test("the leadership's token fences every store write, published or not, and not after it moved", async () => {
    const c = uniqueCluster('ls');
    const job = randomJobId();
    const l = await lead(c);
    const inc = (tok: string | number) =>
      send(a.url, 'POST', `/v1/clusters/${c}/jobs/${job}/checkpoint-id-counter/increment`, undefined, { 'x-fencing-token': String(tok) });
    const plan = (tok: string | number) =>
      fetch(`${a.url}/v1/clusters/${c}/execution-plans/${job}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': String(tok) },
        body: 'plan',
      });
    // Not published yet: Flink recovers a job's counter before its JobMaster publishes.
    assert.equal((await inc(l.token)).status, 200);
    assert.equal((await plan(l.token)).status, 200);
    assert.equal((await inc(l.token + 1)).status, 409);
    await publishAll(c, l.sessionId, job);
    assert.equal((await inc(l.token)).status, 200);
    await post(a.url, `${L(c)}/resign`, { contenderId: 'jm-1', sessionId: l.sessionId });
    const stale = await inc(l.token);
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error, 'FencingTokenStale');
    const l2 = await lead(c, 'jm-2');
    assert.equal((await inc(l.token)).status, 409);
    assert.equal((await plan(l.token)).status, 409);
    assert.equal((await inc(l2.token)).status, 200);
  });
});

describe('mixed use', () => {
  test('no leadership beside per-component leases, and no per-component lease beside a leadership', async () => {
    const c = uniqueCluster('ls');
    const job = randomJobId();
    const lease = await post(a.url, `/v1/clusters/${c}/leaders/jobmanager/${job}/campaign`, { contenderId: 'old' });
    assert.equal(lease.body.granted, true);
    const refused = await post(b.url, `${L(c)}/campaign`, { contenderId: 'jm-1' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'ComponentLeasesHeld');
    assert.deepEqual(refused.body.leaders.map((x: any) => [x.component, x.leader.contenderId]), [[`jobmanager/${job}`, 'old']]);
    await post(a.url, `/v1/clusters/${c}/leaders/jobmanager/${job}/resign`, { contenderId: 'old', sessionId: lease.body.leader.sessionId });
    const l = await lead(c);
    assert.ok(l.token > lease.body.leader.fencingToken);
    const per = await post(b.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'x' });
    assert.equal(per.status, 409);
    assert.equal(per.body.error, 'LeadershipHeld');
    assert.equal(per.body.leadership.sessionId, l.sessionId);
    // Once the leadership ends, per-component leases are granted again.
    await post(a.url, `${L(c)}/resign`, { contenderId: 'jm-1', sessionId: l.sessionId });
    assert.equal((await post(b.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'x' })).body.granted, true);
  });

  test('a leadership that ran out unnoticed is ended before a per-component grant', async () => {
    const c = uniqueCluster('ls');
    const l = await lead(c, 'jm-1', 1000);
    await publishAll(c, l.sessionId, randomJobId());
    await a.close(); // no server of its own times the leases; b has no view of the cluster
    try {
      await sleep(1300);
      const per = await post(b.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'x' });
      assert.equal(per.status, 200, JSON.stringify(per.body));
      assert.equal(per.body.granted, true);
      const log = (await redis.xrange(`lh:{${c}}:log`, '-', '+')).map(([, f]) => JSON.parse(f[3]));
      assert.deepEqual(
        log.slice(-5).map((x) => [x.e, x.c]),
        [['expired', 'dispatcher'], ['expired', log.at(-4).c], ['expired', 'resourcemanager'], ['expired', 'rest'], ['granted', 'dispatcher']],
      );
    } finally {
      a = await startApp(null, redisUrl);
    }
  });
});

describe('cleanup', () => {
  test("a job's global cleanup deletes its published job manager; cleanupAllData ends the leadership", async () => {
    const c = uniqueCluster('ls');
    const job = randomJobId();
    const l = await lead(c);
    await publishAll(c, l.sessionId, job);
    const watch = await Watch.open(null, `${b.wsUrl}/v1/clusters/${c}/watch?components=jobmanager/${job}`);
    await watch.count(1);
    const del = await send(a.url, 'DELETE', `/v1/clusters/${c}/jobs/${job}`, undefined, { 'x-fencing-token': String(l.token) });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(del.body.parts.leader, 'deleted');
    const revoked = await watch.find((m) => m.type === 'change');
    assert.equal(revoked.event, 'revoked');
    const read = await get(a.url, L(c));
    assert.deepEqual(read.body.leadership.components.map((x: any) => x.component), ['dispatcher', 'resourcemanager', 'rest']);
    watch.close();

    const all = await send(a.url, 'DELETE', `/v1/clusters/${c}`);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal((await get(a.url, L(c))).body.leadership, null);
    assert.deepEqual(await scanKeys(redis, `lh:{${c}}:*`), []);
    const renew = await post(a.url, `${L(c)}/renew`, { contenderId: 'jm-1', sessionId: l.sessionId });
    assert.equal(renew.status, 409);
  });
});

describe('input and access', () => {
  test('bad input is a 400', async () => {
    const c = uniqueCluster('ls');
    const l = await lead(c);
    const bad: Array<[string, unknown]> = [
      ['campaign', {}],
      ['campaign', { contenderId: 'x', ttl: 5 }],
      ['campaign', { contenderId: 'x', ttlMs: 5 }],
      ['renew', { contenderId: 'jm-1', sessionId: 'nope' }],
      ['publish', { sessionId: l.sessionId, component: 'taskmanager', address: 'x' }],
      ['publish', { sessionId: l.sessionId, component: 'jobmanager/123', address: 'x' }],
      ['publish', { sessionId: l.sessionId, component: 'rest', address: '' }],
      ['unpublish', { sessionId: l.sessionId }],
      ['revoke', { sessionId: 12 }],
      ['resign', { contenderId: 'jm-1' }],
    ];
    for (const [op, body] of bad) {
      const r = await post(a.url, `${L(c)}/${op}`, body);
      assert.equal(r.status, 400, `${op} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.statusCode, 400);
    }
    assert.equal((await get(a.url, '/v1/clusters/no!/leadership')).status, 400);
  });

  test('with access tokens, only the token that campaigned acts on it, and only an admin revokes', async (t) => {
    const c = uniqueCluster('ls');
    const tokens = JSON.stringify([
      { name: 'one', token: 'tok-one-0123456789', role: 'contend', clusters: [c] },
      { name: 'two', token: 'tok-two-0123456789', role: 'contend', clusters: [c] },
      { name: 'root', token: 'tok-root-0123456789', role: 'admin' },
    ]);
    const s = await startApp(t, redisUrl, { AUTH_TOKENS: tokens });
    const as = (tok: string) => ({ authorization: `Bearer ${tok}` });
    const won = await send(s.url, 'POST', `${L(c)}/campaign`, { contenderId: 'jm-1' }, as('tok-one-0123456789'));
    assert.equal(won.status, 200);
    const sessionId = won.body.leadership.sessionId;
    for (const [op, body] of [
      ['renew', { contenderId: 'jm-1', sessionId }],
      ['publish', { sessionId, component: 'rest', address: 'x' }],
      ['unpublish', { sessionId, component: 'rest' }],
      ['resign', { contenderId: 'jm-1', sessionId }],
    ] as const) {
      const r = await send(s.url, 'POST', `${L(c)}/${op}`, body, as('tok-two-0123456789'));
      assert.equal(r.status, 403, `${op}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'NotLeadershipOwner');
    }
    assert.equal((await send(s.url, 'POST', `${L(c)}/publish`, { sessionId, component: 'rest', address: 'x' }, as('tok-one-0123456789'))).status, 200);
    assert.equal((await send(s.url, 'POST', `${L(c)}/revoke`, {}, as('tok-one-0123456789'))).status, 403);
    const revoked = await send(s.url, 'POST', `${L(c)}/revoke`, {}, as('tok-root-0123456789'));
    assert.deepEqual(revoked.body, { revoked: true });
    assert.equal(await redis.hget(`lh:{${c}}:leadership`, 'own'), 'one', "the token's name is kept, never the token");
  });
});
