/**
 * Sessions bound to their caller (issue 16): with access tokens configured, a lease or a
 * leadership is renewed, confirmed, resigned and published under only by the token that
 * campaigned for it; an admin may still force a resignation. Session ids are public (every
 * reader sees them), so they prove nothing. Against real Redis, with a second replica of
 * the server watching.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { stopAllRedis } from './support/redis.js';
import { connectRedis, sharedRedisUrl, sleep, startApp, uniqueCluster, Watch, type Running } from './support/app.js';

let redisUrl: string;
let redis: Redis;
let watcher: Running;
before(async () => {
  redisUrl = await sharedRedisUrl();
  redis = await connectRedis(redisUrl);
  // Open, on the same Redis: it sees every change pushed, whoever made it.
  watcher = await startApp(null, redisUrl);
});
after(async () => {
  redis.disconnect();
  await watcher.close();
  await stopAllRedis();
});

const ONE = 'tok-one-0123456789';
const TWO = 'tok-two-0123456789';
const ROOT = 'tok-root-0123456789';

async function tokenServer(t: Parameters<typeof startApp>[0], c: string): Promise<Running> {
  const tokens = JSON.stringify([
    { name: 'one', token: ONE, role: 'contend', clusters: [c] },
    { name: 'two', token: TWO, role: 'contend', clusters: [c] },
    { name: 'root', token: ROOT, role: 'admin' },
  ]);
  return startApp(t, redisUrl, { AUTH_TOKENS: tokens });
}

async function as(token: string, base: string, path: string, body: unknown) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

test('another contend token can neither renew, confirm, resign nor re-campaign a lease; an admin may force it out', async (t) => {
  const c = uniqueCluster('bound');
  const s = await tokenServer(t, c);
  const L = `/v1/clusters/${c}/leaders/dispatcher`;
  const won = await as(ONE, s.url, `${L}/campaign`, { contenderId: 'd1', ttlMs: 5000, address: 'http://one.example:6123' });
  assert.equal(won.status, 200, JSON.stringify(won.body));
  const { sessionId } = won.body.leader;
  assert.equal(await redis.hget(`lh:{${c}}:leader:dispatcher`, 'own'), 'one', 'the grant keeps the name of its token');

  const watch = await Watch.open(t, `${watcher.wsUrl}/v1/clusters/${c}/watch`);
  await watch.count(1);
  const before = await redis.pttl(`lh:{${c}}:lease:dispatcher`);

  for (const [op, body] of [
    ['renew', { contenderId: 'd1', sessionId, ttlMs: 300_000 }],
    ['confirm', { contenderId: 'd1', sessionId, address: 'http://attacker.example:6123' }],
    ['resign', { contenderId: 'd1', sessionId }],
  ] as const) {
    const r = await as(TWO, s.url, `${L}/${op}`, body);
    assert.equal(r.status, 403, `${op}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, 'NotLeaseOwner');
    assert.equal(r.body.statusCode, 403);
  }
  // A campaign under the holder's contender id is someone else's: refused, unchanged.
  const again = await as(TWO, s.url, `${L}/campaign`, { contenderId: 'd1', ttlMs: 300_000, address: 'http://attacker.example:6123' });
  assert.equal(again.status, 200);
  assert.equal(again.body.granted, false);
  assert.equal(again.body.leader.address, 'http://one.example:6123');

  const h = await redis.hgetall(`lh:{${c}}:leader:dispatcher`);
  assert.equal(h.addr, 'http://one.example:6123');
  assert.equal(h.ttl, '5000');
  assert.equal(await redis.get(`lh:{${c}}:lease:dispatcher`), sessionId);
  assert.ok((await redis.pttl(`lh:{${c}}:lease:dispatcher`)) <= before, 'the lease was not extended');
  await sleep(500);
  assert.deepEqual(watch.messages.slice(1), [], 'watchers saw nothing of it');

  // The token that campaigned goes on as before.
  assert.equal((await as(ONE, s.url, `${L}/renew`, { contenderId: 'd1', sessionId })).status, 200);
  const confirmed = await as(ONE, s.url, `${L}/confirm`, { contenderId: 'd1', sessionId, address: 'http://one.example:7000' });
  assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
  assert.equal(confirmed.body.leader.address, 'http://one.example:7000');

  // An admin forces a resignation; it may not renew or confirm on the holder's behalf.
  assert.equal((await as(ROOT, s.url, `${L}/renew`, { contenderId: 'd1', sessionId })).status, 403);
  const forced = await as(ROOT, s.url, `${L}/resign`, { contenderId: 'd1', sessionId });
  assert.equal(forced.status, 200, JSON.stringify(forced.body));
  assert.deepEqual(forced.body, { released: true });
  const revoked = await watch.find((m) => m.type === 'change' && m.event === 'revoked');
  assert.equal(revoked.component, 'dispatcher');
});

test('a leadership: another contend token is refused, an admin may force its resignation', async (t) => {
  const c = uniqueCluster('bound');
  const s = await tokenServer(t, c);
  const L = `/v1/clusters/${c}/leadership`;
  const won = await as(ONE, s.url, `${L}/campaign`, { contenderId: 'jm', ttlMs: 5000 });
  assert.equal(won.status, 200, JSON.stringify(won.body));
  const { sessionId } = won.body.leadership;
  assert.equal((await as(ONE, s.url, `${L}/publish`, { sessionId, component: 'rest', address: 'http://one.example' })).status, 200);
  assert.equal(await redis.hget(`lh:{${c}}:leadership`, 'own'), 'one');
  const watch = await Watch.open(t, `${watcher.wsUrl}/v1/clusters/${c}/watch`);
  await watch.count(1);

  for (const [op, body] of [
    ['renew', { contenderId: 'jm', sessionId, ttlMs: 300_000 }],
    ['publish', { sessionId, component: 'rest', address: 'http://attacker.example:6123' }],
    ['unpublish', { sessionId, component: 'rest' }],
    ['resign', { contenderId: 'jm', sessionId }],
  ] as const) {
    const r = await as(TWO, s.url, `${L}/${op}`, body);
    assert.equal(r.status, 403, `${op}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, 'NotLeadershipOwner');
  }
  // The published component is a lease like any other: bound to the same token.
  const viaLease = await as(TWO, s.url, `/v1/clusters/${c}/leaders/rest/confirm`, {
    contenderId: 'jm',
    sessionId,
    address: 'http://attacker.example:6123',
  });
  assert.equal(viaLease.status, 403, JSON.stringify(viaLease.body));
  assert.equal(viaLease.body.error, 'NotLeaseOwner');
  assert.equal(await redis.hget(`lh:{${c}}:leader:rest`, 'addr'), 'http://one.example');
  await sleep(500);
  assert.deepEqual(watch.messages.slice(1), [], 'watchers saw nothing of it');

  const forced = await as(ROOT, s.url, `${L}/resign`, { contenderId: 'jm', sessionId });
  assert.equal(forced.status, 200, JSON.stringify(forced.body));
  assert.deepEqual(forced.body, { released: true });
  const revoked = await watch.find((m) => m.type === 'change' && m.event === 'revoked');
  assert.equal(revoked.component, 'rest');
});
