/**
 * A cluster's leadership (issue 22, docs/design.md §3a): one lease, one session id and one
 * fencing token over several components, against a real Redis, through two server replicas.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { stopAllRedis } from './support/redis.js';
import { get, post, randomJobId, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, Watch, type Running } from './support/app.js';

let a: Running;
let b: Running;
let redis: Redis;
before(async () => {
  const url = await sharedRedisUrl();
  // Two replicas of the server on one Redis: changes made through one reach the other's watchers.
  [a, b] = await Promise.all([startApp(null, url), startApp(null, url)]);
  redis = new Redis(url);
});
after(async () => {
  redis.disconnect();
  await Promise.all([a.close(), b.close()]);
  await stopAllRedis();
});

const L = (c: string) => `/v1/clusters/${c}/leadership`;

async function campaign(c: string, contenderId: string, ttlMs = 10_000, srv = a) {
  const r = await post(srv.url, `${L(c)}/campaign`, { contenderId, ttlMs });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as { granted: boolean; leadership: { sessionId: string; token: number; contenderId: string; components: unknown[] } };
}

async function publish(c: string, sessionId: string, component: string, address: string, srv = a) {
  return post(srv.url, `${L(c)}/publish`, { sessionId, component, address });
}

async function send(srv: Running, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(srv.url + path, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

test('one winner among concurrent campaigns; the holder gets its own grant back', async () => {
  const c = uniqueCluster('ls');
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => post((i % 2 ? b : a).url, `${L(c)}/campaign`, { contenderId: `p${i}`, ttlMs: 10_000 })),
  );
  for (const r of results) assert.equal(r.status, 200);
  const winners = results.filter((r) => r.body.granted);
  assert.equal(winners.length, 1);
  const won = winners[0].body.leadership;
  for (const r of results) assert.equal(r.body.leadership.sessionId, won.sessionId, 'every answer names the holder');
  assert.match(won.sessionId, /^[0-9a-f-]{36}$/);
  const again = await campaign(c, won.contenderId);
  assert.equal(again.granted, true);
  assert.equal(again.leadership.sessionId, won.sessionId);
  const read = await get(b.url, L(c));
  assert.equal(read.body.leadership.sessionId, won.sessionId);
  assert.equal(read.body.leadership.token, won.token);
});

test('published components read as ordinary leaders; a stale session may not publish', async () => {
  const c = uniqueCluster('ls');
  const job = randomJobId();
  const first = await campaign(c, 'p1');
  const sid = first.leadership.sessionId;
  const p = await publish(c, sid, 'dispatcher', 'akka://d');
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.equal(p.body.leader.sessionId, sid);
  assert.equal(p.body.leader.fencingToken, first.leadership.token);
  assert.equal(p.body.leader.address, 'akka://d');
  assert.equal((await publish(c, sid, `jobmanager/${job.toUpperCase()}`, 'akka://jm')).status, 200);
  const one = await get(b.url, `/v1/clusters/${c}/leaders/jobmanager/${job}?consistent`);
  assert.equal(one.body.leader.sessionId, sid);
  assert.equal(one.body.leader.address, 'akka://jm');
  const all = await get(a.url, `/v1/clusters/${c}/leaders?consistent`);
  assert.deepEqual(
    all.body.leaders.filter((l: any) => l.leader).map((l: any) => [l.component, l.leader.sessionId]),
    [['dispatcher', sid], [`jobmanager/${job}`, sid]],
  );
  const l = (await get(a.url, L(c))).body.leadership;
  assert.deepEqual(l.components, [
    { component: 'dispatcher', address: 'akka://d' },
    { component: `jobmanager/${job}`, address: 'akka://jm' },
  ]);

  // Revoked, then taken by another: the first session is stale.
  assert.deepEqual((await post(a.url, `${L(c)}/revoke`, {})).body, { revoked: true });
  const second = await campaign(c, 'p2');
  assert.equal(second.granted, true);
  assert.ok(second.leadership.token > first.leadership.token);
  const stale = await publish(c, sid, 'rest', 'http://old');
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error, 'NotLeader');
  assert.equal(stale.body.leadership.sessionId, second.leadership.sessionId);
  const staleRenew = await post(a.url, `${L(c)}/renew`, { contenderId: 'p1', sessionId: sid });
  assert.equal(staleRenew.status, 409);
  assert.equal((await post(a.url, `${L(c)}/unpublish`, { sessionId: sid, component: 'rest' })).status, 409);
  assert.equal((await get(a.url, `/v1/clusters/${c}/leaders/rest?consistent`)).body.leader, null);
});

for (const [how, end, event] of [
  ['resign', (c: string, sid: string) => post(a.url, `${L(c)}/resign`, { contenderId: 'p1', sessionId: sid }), 'revoked'],
  ['revocation', (c: string, sid: string) => post(a.url, `${L(c)}/revoke`, { sessionId: sid }), 'revoked'],
  ['expiry', async () => ({ status: 200, body: {} }), 'expired'],
] as const) {
  test(`${how} clears every published component at once, pushed to another replica's watchers with own indexes`, { timeout: 30_000 }, async (t) => {
    const c = uniqueCluster('ls');
    const jobs = [randomJobId(), randomJobId()].sort();
    const ttlMs = how === 'expiry' ? 1000 : 10_000;
    const { leadership } = await campaign(c, 'p1', ttlMs);
    const watch = await Watch.open(t, `${b.wsUrl}/v1/clusters/${c}/watch`);
    await watch.count(1);
    const components = ['resourcemanager', 'dispatcher', 'rest', ...jobs.map((j) => `jobmanager/${j}`)];
    for (const comp of components) assert.equal((await publish(c, leadership.sessionId, comp, `addr-${comp}`)).status, 200);
    const granted = await watch.count(1 + components.length);
    assert.deepEqual(
      granted.slice(1).map((m) => [m.event, m.component]),
      components.map((comp) => ['granted', comp]),
    );
    const indexBefore: number = granted[granted.length - 1].index;
    const ended = await end(c, leadership.sessionId);
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    const all = await watch.count(1 + 2 * components.length, 15_000);
    const ends = all.slice(1 + components.length);
    assert.deepEqual(
      ends.map((m) => [m.event, m.component, m.leader]),
      components.map((comp) => [event, comp, null]),
      'each published component, in order, leaderless',
    );
    const indexes = ends.map((m) => m.index as number);
    for (let i = 0; i < indexes.length; i++) assert.ok(indexes[i] > (i ? indexes[i - 1] : indexBefore), 'an index of its own, in order');
    // One script: the cluster's log holds them back to back, with nothing in between.
    const log = await redis.xrange(`lh:{${c}}:log`, '-', '+');
    const tail = log.slice(-components.length).map(([, f]) => JSON.parse(f[3]));
    assert.deepEqual(tail.map((x) => x.i), indexes);
    for (let i = 1; i < tail.length; i++) assert.equal(tail[i].p, tail[i - 1].i, 'no change between them');
    assert.equal((await get(a.url, L(c))).body.leadership, null);
    await waitFor(async () => (await get(b.url, `/v1/clusters/${c}/leaders/dispatcher`)).body.leader === null, 5000);
    // The cluster is free for a new leadership or per-component leases.
    const lease = await post(a.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'solo' });
    assert.equal(lease.body.granted, true);
  });
}

test('renewal extends every published component with the leadership', { timeout: 20_000 }, async () => {
  const c = uniqueCluster('ls');
  const { leadership } = await campaign(c, 'p1', 1500);
  assert.equal((await publish(c, leadership.sessionId, 'dispatcher', 'd')).status, 200);
  for (let i = 0; i < 4; i++) {
    await sleep(600);
    const r = await post(b.url, `${L(c)}/renew`, { contenderId: 'p1', sessionId: leadership.sessionId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.leadership.ttlMs, 1500);
  }
  const d = await get(a.url, `/v1/clusters/${c}/leaders/dispatcher?consistent`);
  assert.equal(d.body.leader?.sessionId, leadership.sessionId, 'still led after 2.4 s of a 1.5 s TTL');
  assert.ok(d.body.leader.leaseRemainingMs > 500);
});

test('store writes are fenced by the live leadership’s token, published or not, and refused after it moved', async () => {
  const c = uniqueCluster('ls');
  const job = randomJobId();
  const first = await campaign(c, 'p1');
  const write = (token: string | number, n: number) =>
    send(a, 'POST', `/v1/clusters/${c}/jobs/${job}/checkpoints`, { 'x-fencing-token': String(token) }, {
      checkpointId: n,
      timestamp: Date.now(),
      externalPointer: 's3://cp',
    });
  // Not published yet (Flink recovers checkpoints before its JobMaster publishes).
  assert.equal((await write(first.leadership.token, 1)).status, 200);
  assert.equal((await write(first.leadership.token + 1, 2)).status, 409);
  assert.equal((await publish(c, first.leadership.sessionId, `jobmanager/${job}`, 'jm')).status, 200);
  assert.equal((await write(first.leadership.token, 2)).status, 200);
  assert.equal((await post(a.url, `${L(c)}/revoke`, {})).status, 200);
  const second = await campaign(c, 'p2');
  const refused = await write(first.leadership.token, 3);
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error, 'FencingTokenStale');
  assert.equal((await write(second.leadership.token, 3)).status, 200);
  // After the leadership ended, nothing of it fences: a write with its token is refused.
  assert.equal((await post(a.url, `${L(c)}/resign`, { contenderId: 'p2', sessionId: second.leadership.sessionId })).status, 200);
  assert.equal((await write(second.leadership.token, 4)).status, 409);
});

test('mixed use with per-component leases is refused both ways, naming who leads', async () => {
  const c = uniqueCluster('ls');
  const lease = await post(a.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'solo' });
  assert.equal(lease.body.granted, true);
  const refused = await post(a.url, `${L(c)}/campaign`, { contenderId: 'p1' });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error, 'ComponentLeasesHeld');
  assert.deepEqual(refused.body.leaders.map((l: any) => [l.component, l.leader.contenderId]), [['dispatcher', 'solo']]);
  assert.equal(
    (await post(a.url, `/v1/clusters/${c}/leaders/dispatcher/resign`, { contenderId: 'solo', sessionId: lease.body.leader.sessionId })).status,
    200,
  );
  const { leadership } = await campaign(c, 'p1');
  const other = await post(b.url, `/v1/clusters/${c}/leaders/rest/campaign`, { contenderId: 'solo' });
  assert.equal(other.status, 409);
  assert.equal(other.body.error, 'LeadershipHeld');
  assert.equal(other.body.leadership.sessionId, leadership.sessionId);
});

test('cleanup: a job’s global cleanup unpublishes its job manager; cleanupAllData ends the leadership', async (t) => {
  const c = uniqueCluster('ls');
  const job = randomJobId();
  const { leadership } = await campaign(c, 'p1');
  const sid = leadership.sessionId;
  for (const comp of ['dispatcher', `jobmanager/${job}`]) assert.equal((await publish(c, sid, comp, 'x')).status, 200);
  const watch = await Watch.open(t, `${b.wsUrl}/v1/clusters/${c}/watch`);
  await watch.count(1);
  const cleaned = await send(a, 'DELETE', `/v1/clusters/${c}/jobs/${job}`, { 'x-fencing-token': String(leadership.token) });
  assert.equal(cleaned.status, 200, JSON.stringify(cleaned.body));
  const revoked = await watch.find((m) => m.type === 'change' && m.component === `jobmanager/${job}`);
  assert.equal(revoked.event, 'revoked');
  assert.deepEqual((await get(a.url, L(c))).body.leadership.components, [{ component: 'dispatcher', address: 'x' }]);

  const all = await send(a, 'DELETE', `/v1/clusters/${c}`, {});
  assert.equal(all.status, 200, JSON.stringify(all.body));
  assert.equal((await get(a.url, L(c))).body.leadership, null);
  assert.deepEqual(await redis.keys(`lh:{${c}}:*`), []);
  assert.equal((await post(a.url, `${L(c)}/renew`, { contenderId: 'p1', sessionId: sid })).status, 409);
});

test('bad input gets 4xx', async () => {
  const c = uniqueCluster('ls');
  const { leadership } = await campaign(c, 'p1');
  for (const [path, body] of [
    ['campaign', {}],
    ['campaign', { contenderId: 'p', ttlMs: 1 }],
    ['campaign', { contenderId: 'p', extra: 1 }],
    ['renew', { contenderId: 'p1', sessionId: 'not-a-uuid' }],
    ['publish', { sessionId: leadership.sessionId, component: 'nope', address: 'x' }],
    ['publish', { sessionId: leadership.sessionId, component: 'jobmanager/123', address: 'x' }],
    ['publish', { sessionId: leadership.sessionId, component: 'rest', address: '' }],
    ['unpublish', { sessionId: leadership.sessionId }],
    ['revoke', { sessionId: 'x' }],
  ] as const) {
    const r = await post(a.url, `${L(c)}/${path}`, body);
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, 'BadRequest');
  }
  const wrong = await post(a.url, `${L(c)}/revoke`, { sessionId: '00000000-0000-4000-8000-000000000000' });
  assert.equal(wrong.status, 409);
  assert.equal(wrong.body.error, 'NotLeader');
  assert.equal((await get(a.url, `${L('bad id!')}`)).status, 400);
});

test('with access tokens, only the campaigning token renews, resigns and publishes; revoke needs admin', async (t) => {
  const c = uniqueCluster('ls');
  const tokens = JSON.stringify([
    { name: 'one', token: 'contender-token-0000001', role: 'contend', clusters: [c] },
    { name: 'two', token: 'contender-token-0000002', role: 'contend', clusters: [c] },
    { name: 'root', token: 'admin-token-00000000001', role: 'admin' },
  ]);
  const srv = await startApp(t, await sharedRedisUrl(), { AUTH_TOKENS: tokens });
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const won = await send(srv, 'POST', `${L(c)}/campaign`, as('contender-token-0000001'), { contenderId: 'p1' });
  assert.equal(won.body.granted, true);
  const sid = won.body.leadership.sessionId;
  for (const [path, body] of [
    ['renew', { contenderId: 'p1', sessionId: sid }],
    ['publish', { sessionId: sid, component: 'dispatcher', address: 'x' }],
    ['unpublish', { sessionId: sid, component: 'dispatcher' }],
    ['resign', { contenderId: 'p1', sessionId: sid }],
  ] as const) {
    const r = await send(srv, 'POST', `${L(c)}/${path}`, as('contender-token-0000002'), body);
    assert.equal(r.status, 403, `${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, 'NotLeadershipOwner');
  }
  // The same contender id campaigning with another token does not get the grant.
  assert.equal((await send(srv, 'POST', `${L(c)}/campaign`, as('contender-token-0000002'), { contenderId: 'p1' })).body.granted, false);
  assert.equal((await send(srv, 'POST', `${L(c)}/publish`, as('contender-token-0000001'), { sessionId: sid, component: 'dispatcher', address: 'x' })).status, 200);
  assert.equal((await send(srv, 'POST', `${L(c)}/revoke`, as('contender-token-0000001'), {})).status, 403);
  assert.deepEqual((await send(srv, 'POST', `${L(c)}/revoke`, as('admin-token-00000000001'), {})).body, { revoked: true });
  // The token itself is not stored, only its digest.
  const stored = await redis.hgetall(`lh:{${c}}:leadership:h`);
  assert.ok(!JSON.stringify(stored).includes('contender-token-0000001'));
});
