/**
 * Consul's lock-delay, per campaign (docs/decisions.md): after a lease granted with
 * `lockDelayMs` EXPIRES, its component is granted to nobody for that long, so that a
 * leader that stalled past its lease has time to notice before another starts. A
 * resignation (or a revocation) frees it at once. campaign.lua enforces it, and the SDK's
 * election waits it out.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { LeaseholdClient } from '../src/client/index.js';
import { stopAllRedis } from './support/redis.js';
import { post, sharedRedisUrl, sleep, startApp, uniqueCluster } from './support/app.js';

after(() => stopAllRedis());

test('after an expiry, no grant for lockDelayMs (409 LockDelay with Retry-After); then one', async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const lp = `/v1/clusters/${uniqueCluster('ldelay')}/leaders`;
  const sentAt = performance.now();
  const a = await post(app.url, `${lp}/dispatcher/campaign`, { contenderId: 'A', ttlMs: 1000, lockDelayMs: 3000 });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.granted, true);

  let delayed = 0;
  let b: Awaited<ReturnType<typeof post>> | undefined;
  for (const deadline = performance.now() + 15_000; performance.now() < deadline; await sleep(100)) {
    const r = await post(app.url, `${lp}/dispatcher/campaign`, { contenderId: 'B', ttlMs: 5000 });
    if (r.status === 409 && r.body.error === 'LockDelay') {
      delayed++;
      assert.ok(r.body.retryAfterMs > 0 && r.body.retryAfterMs <= 3000, JSON.stringify(r.body));
      assert.equal(r.headers.get('retry-after'), String(Math.ceil(r.body.retryAfterMs / 1000)));
      continue;
    }
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (r.body.granted) {
      b = r;
      break;
    }
  }
  const grantedAt = performance.now();
  assert.ok(b, 'B is granted after the lock delay');
  assert.ok(delayed > 0, 'B was refused with LockDelay meanwhile');
  assert.ok(grantedAt - sentAt >= 4000, `B was granted ${Math.round(grantedAt - sentAt)} ms after A's 1 s lease with a 3 s lock delay`);
  assert.ok(b.body.leader.fencingToken > a.body.leader.fencingToken);
});

test('a resignation frees the component at once, and a lease without lockDelayMs has none', async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const lp = `/v1/clusters/${uniqueCluster('ldelay')}/leaders`;
  const a = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'A', ttlMs: 1000, lockDelayMs: 10_000 });
  assert.equal(a.body.granted, true);
  await post(app.url, `${lp}/rest/resign`, { contenderId: 'A', sessionId: a.body.leader.sessionId });
  const b = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'B', ttlMs: 1000 });
  assert.equal(b.status, 200, JSON.stringify(b.body));
  assert.equal(b.body.granted, true, 'granted right after the resignation');

  await sleep(1500); // B's lease, without a lock delay, ran out
  const c = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'C', ttlMs: 1000 });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  assert.equal(c.body.granted, true, 'granted right after an expiry without lock delay');

  const bad = await post(app.url, `${lp}/rest/campaign`, { contenderId: 'D', lockDelayMs: 600_001 });
  assert.equal(bad.status, 400);
});

test("the SDK's election waits a lock delay out and then leads", async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const clusterId = uniqueCluster('ldelay');
  const cluster = new LeaseholdClient({ url: app.url }).cluster(clusterId);
  const a = await post(app.url, `/v1/clusters/${clusterId}/leaders/resourcemanager/campaign`, { contenderId: 'A', ttlMs: 1000, lockDelayMs: 2000 });
  assert.equal(a.body.granted, true);
  const errors: Error[] = [];
  const election = cluster.election({ component: 'resourcemanager', contenderId: 'sdk', ttlMs: 3000 });
  election.on('error', (e: Error) => errors.push(e));
  t.after(() => election.resign().catch(() => {}));
  const startedAt = performance.now();
  const granted = new Promise<number>((resolve) => election.once('granted', () => resolve(performance.now())));
  election.start();
  const at = await granted;
  assert.ok(at - startedAt >= 2500, `led ${Math.round(at - startedAt)} ms after start: after the 1 s lease and the 2 s delay`);
  const delays = errors.filter((e) => (e as { code?: string }).code === 'LockDelay');
  assert.ok(delays.length >= 1 && delays.length <= 3, `waited the delay out rather than polling it (${delays.length} LockDelay answers)`);
});
