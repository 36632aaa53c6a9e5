/** Leader election against real Redis: campaign, renew, confirm, resign, expiry, tokens. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisProcess, stopAllRedis } from './support/redis.js';
import { get, post, randomJobId, sharedRedisUrl, sleep, startApp, uniqueCluster, type Running } from './support/app.js';

let srv: Running;
before(async () => {
  srv = await startApp(null, await sharedRedisUrl());
});
after(async () => {
  await srv.close();
  await stopAllRedis();
});

const leaderPath = (cluster: string, component = 'dispatcher') => `/v1/clusters/${cluster}/leaders/${component}`;
const campaign = (cluster: string, body: object, component = 'dispatcher') =>
  post(srv.url, `${leaderPath(cluster, component)}/campaign`, body);

describe('campaign', () => {
  test('of many concurrent contenders, exactly one wins and all are told the same winner', async () => {
    const c = uniqueCluster();
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => campaign(c, { contenderId: `c${i}` })));
    assert.ok(answers.every((a) => a.status === 200));
    const winners = answers.filter((a) => a.body.granted);
    assert.equal(winners.length, 1);
    const winner = winners[0].body.leader;
    for (const a of answers) assert.deepEqual(a.body.leader.sessionId, winner.sessionId);
    const read = await get(srv.url, leaderPath(c));
    assert.equal(read.body.leader.contenderId, winner.contenderId);
    assert.equal(read.body.leader.fencingToken, winner.fencingToken);
  });

  test('a grant carries a UUID session id, a fencing token, the lease time and the acquisition time', async () => {
    const c = uniqueCluster();
    const before = Date.now();
    const { body } = await campaign(c, { contenderId: 'a', ttlMs: 5000 });
    assert.equal(body.granted, true);
    assert.match(body.leader.sessionId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(Number.isSafeInteger(body.leader.fencingToken) && body.leader.fencingToken > 0);
    assert.equal(body.leader.leaseRemainingMs, 5000);
    assert.equal(body.leader.address, null);
    const acquired = Date.parse(body.leader.acquiredAt);
    assert.match(body.leader.acquiredAt, /Z$/);
    assert.ok(Math.abs(acquired - before) < 60_000, 'acquiredAt is about now');
  });

  test('the holder campaigning again gets its own grant back, with the lease extended', async () => {
    const c = uniqueCluster();
    const first = (await campaign(c, { contenderId: 'a', ttlMs: 2000 })).body;
    await sleep(300);
    const again = (await campaign(c, { contenderId: 'a', ttlMs: 8000 })).body;
    assert.equal(again.granted, true);
    assert.equal(again.leader.sessionId, first.leader.sessionId);
    assert.equal(again.leader.fencingToken, first.leader.fencingToken);
    assert.ok(again.leader.leaseRemainingMs > 7000);
    await sleep(2200); // past the first TTL: still held thanks to the extension
    const read = await get(srv.url, leaderPath(c));
    assert.equal(read.body.leader?.sessionId, first.leader.sessionId);
  });

  test('a refused campaign names the current holder', async () => {
    const c = uniqueCluster();
    const a = (await campaign(c, { contenderId: 'a', address: 'http://a:1' })).body;
    const b = (await campaign(c, { contenderId: 'b', address: 'http://b:1' })).body;
    assert.equal(b.granted, false);
    assert.equal(b.leader.contenderId, 'a');
    assert.equal(b.leader.sessionId, a.leader.sessionId);
    assert.equal(b.leader.address, 'http://a:1');
  });

  test('a campaign with an address confirms it at once', async () => {
    const c = uniqueCluster();
    const { body } = await campaign(c, { contenderId: 'a', address: 'akka://flink@host:6123' });
    assert.equal(body.leader.address, 'akka://flink@host:6123');
    assert.equal((await get(srv.url, leaderPath(c))).body.leader.address, 'akka://flink@host:6123');
  });

  test('each cluster and each job manager has a lease of its own; job ids are answered in lower case', async () => {
    const c1 = uniqueCluster();
    const c2 = uniqueCluster();
    const job = randomJobId();
    assert.equal((await campaign(c1, { contenderId: 'a' })).body.granted, true);
    assert.equal((await campaign(c2, { contenderId: 'b' })).body.granted, true);
    assert.equal((await campaign(c1, { contenderId: 'r' }, 'resourcemanager')).body.granted, true);
    assert.equal((await campaign(c1, { contenderId: 'j' }, `jobmanager/${job.toUpperCase()}`)).body.granted, true);
    const read = await get(srv.url, leaderPath(c1, `jobmanager/${job}`));
    assert.equal(read.body.component, `jobmanager/${job}`);
    assert.equal(read.body.leader.contenderId, 'j');
  });
});

describe('renew, confirm, resign', () => {
  test('a renewal without ttlMs keeps the TTL the lease was granted or last renewed with', async () => {
    const c = uniqueCluster();
    const { body } = await campaign(c, { contenderId: 'a', ttlMs: 2000 });
    const session = { contenderId: 'a', sessionId: body.leader.sessionId };
    const renew = (extra: object = {}) => post(srv.url, `${leaderPath(c)}/renew`, { ...session, ...extra });
    const kept = await renew();
    assert.equal(kept.status, 200);
    assert.ok(kept.body.leader.leaseRemainingMs <= 2000, `granted with 2 s: ${kept.body.leader.leaseRemainingMs}`);
    assert.ok((await renew({ ttlMs: 30_000 })).body.leader.leaseRemainingMs > 2000);
    const again = await renew();
    assert.ok(again.body.leader.leaseRemainingMs > 29_000 && again.body.leader.leaseRemainingMs <= 30_000, 'the last TTL is kept');
  });

  test('renewals that arrive together each get their own answer, and each extends only its own lease', async () => {
    const c = uniqueCluster();
    const jobs = Array.from({ length: 30 }, () => `jobmanager/${randomJobId()}`);
    const leaders = await Promise.all(jobs.map((j, i) => campaign(c, { contenderId: `jm${i}`, ttlMs: 5000 }, j)));
    // Every third renewal names a wrong session: only those are refused.
    const answers = await Promise.all(
      jobs.map((j, i) =>
        post(srv.url, `${leaderPath(c, j)}/renew`, {
          contenderId: `jm${i}`,
          sessionId: i % 3 === 0 ? '00000000-0000-4000-8000-000000000000' : leaders[i].body.leader.sessionId,
          ttlMs: 60_000 + i,
        }),
      ),
    );
    answers.forEach((a, i) => {
      assert.equal(a.status, i % 3 === 0 ? 409 : 200, `renewal ${i}`);
      assert.equal(a.body.leader.sessionId, leaders[i].body.leader.sessionId);
      if (i % 3 !== 0) assert.ok(a.body.leader.leaseRemainingMs > 59_000, `renewal ${i} extended its lease`);
    });
    const refused = await get(srv.url, leaderPath(c, jobs[0]));
    assert.ok(refused.body.leader.leaseRemainingMs <= 5000, 'a refused renewal extends nothing');
  });

  test('scripts that Redis forgot (SCRIPT FLUSH, as after a restart without persistence) are sent again', async (t) => {
    // A Redis of its own: flushing the shared one's scripts would touch other tests.
    const redis = await RedisProcess.start();
    t.after(() => redis.stop());
    const own = await startApp(t, redis.url);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const c = uniqueCluster();
    const granted = (await post(own.url, `${leaderPath(c)}/campaign`, { contenderId: 'a' })).body.leader;
    await admin.script('FLUSH');
    const renewed = await post(own.url, `${leaderPath(c)}/renew`, { contenderId: 'a', sessionId: granted.sessionId, ttlMs: 60_000 });
    assert.equal(renewed.status, 200);
    assert.ok(renewed.body.leader.leaseRemainingMs > 59_000);
    await admin.script('FLUSH');
    const other = await post(own.url, `${leaderPath(c, 'resourcemanager')}/campaign`, { contenderId: 'b' });
    assert.equal(other.body.granted, true);
    assert.equal((await get(own.url, leaderPath(c, 'resourcemanager'))).body.leader.sessionId, other.body.leader.sessionId);
  });

  test('only the holder renews; anyone else gets 409 NotLeader with the current leader', async () => {
    const c = uniqueCluster();
    const a = (await campaign(c, { contenderId: 'a', ttlMs: 3000 })).body.leader;
    const ok = await post(srv.url, `${leaderPath(c)}/renew`, { contenderId: 'a', sessionId: a.sessionId, ttlMs: 6000 });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.leader.leaseRemainingMs, 6000);
    assert.equal(ok.body.leader.fencingToken, a.fencingToken);

    for (const body of [
      { contenderId: 'b', sessionId: a.sessionId },
      { contenderId: 'a', sessionId: '00000000-0000-4000-8000-000000000000' },
    ]) {
      const r = await post(srv.url, `${leaderPath(c)}/renew`, body);
      assert.equal(r.status, 409);
      assert.equal(r.body.error, 'NotLeader');
      assert.equal(r.body.statusCode, 409);
      assert.equal(r.body.leader.sessionId, a.sessionId);
    }
  });

  test('confirm publishes the address; a non-holder cannot', async () => {
    const c = uniqueCluster();
    const a = (await campaign(c, { contenderId: 'a' })).body.leader;
    const r = await post(srv.url, `${leaderPath(c)}/confirm`, { contenderId: 'a', sessionId: a.sessionId, address: 'http://a:8081' });
    assert.equal(r.status, 200);
    assert.equal(r.body.leader.address, 'http://a:8081');
    const bad = await post(srv.url, `${leaderPath(c)}/confirm`, { contenderId: 'b', sessionId: a.sessionId, address: 'x' });
    assert.equal(bad.status, 409);
    assert.equal((await get(srv.url, leaderPath(c))).body.leader.address, 'http://a:8081');
  });

  test('resign releases the lease now; again answers released false; a non-holder gets 409', async () => {
    const c = uniqueCluster();
    const a = (await campaign(c, { contenderId: 'a' })).body.leader;
    const refused = await post(srv.url, `${leaderPath(c)}/resign`, { contenderId: 'b', sessionId: a.sessionId });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.leader.sessionId, a.sessionId);
    const r = await post(srv.url, `${leaderPath(c)}/resign`, { contenderId: 'a', sessionId: a.sessionId });
    assert.deepEqual([r.status, r.body], [200, { released: true }]);
    const again = await post(srv.url, `${leaderPath(c)}/resign`, { contenderId: 'a', sessionId: a.sessionId });
    assert.deepEqual([again.status, again.body], [200, { released: false }]);
    assert.equal((await get(srv.url, leaderPath(c))).body.leader, null);
    const b = (await campaign(c, { contenderId: 'b' })).body;
    assert.equal(b.granted, true);
    assert.ok(b.leader.fencingToken > a.fencingToken);
  });

  test('a renew after the lease expired is refused, and the lease is free for others', async () => {
    const c = uniqueCluster();
    const a = (await campaign(c, { contenderId: 'a', ttlMs: 1000 })).body.leader;
    await sleep(1300);
    const r = await post(srv.url, `${leaderPath(c)}/renew`, { contenderId: 'a', sessionId: a.sessionId });
    assert.equal(r.status, 409);
    assert.equal(r.body.leader, null);
    const b = (await campaign(c, { contenderId: 'b' })).body;
    assert.equal(b.granted, true);
    assert.ok(b.leader.fencingToken > a.fencingToken);
  });
});

test('fencing tokens strictly increase across resigns and expiries', async () => {
  const c = uniqueCluster();
  let last = 0;
  for (let round = 0; round < 6; round++) {
    const g = (await campaign(c, { contenderId: `c${round}`, ttlMs: 1000 })).body;
    assert.equal(g.granted, true, `round ${round} granted`);
    assert.ok(g.leader.fencingToken > last, `round ${round}: ${g.leader.fencingToken} > ${last}`);
    last = g.leader.fencingToken;
    if (round % 2 === 0) {
      await post(srv.url, `${leaderPath(c)}/resign`, { contenderId: `c${round}`, sessionId: g.leader.sessionId });
    } else {
      await sleep(1150); // let it expire
    }
  }
});

test('expiry is noticed by the server itself and a read shows no leader', async () => {
  const c = uniqueCluster();
  await get(srv.url, leaderPath(c)); // the server now keeps this cluster in view
  await campaign(c, { contenderId: 'a', ttlMs: 1000 });
  const before = (await get(srv.url, leaderPath(c))).body;
  assert.equal(before.leader.contenderId, 'a');
  await sleep(1400);
  const after = (await get(srv.url, leaderPath(c))).body;
  assert.equal(after.leader, null);
  assert.ok(after.index > before.index, 'the expiry is a change');
});
