/**
 * The leadership history (GET /v1/clusters/{c}/history, docs/design.md §3.3): written by the
 * scripts that make the changes, read newest first in pages, kept within its retention,
 * removed by cleanup; and the failover metrics built on it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisProcess, scanKeys, stopAllRedis } from './support/redis.js';
import { restoreSnapshot, snapshot } from './support/topology.js';
import { connectRedis, get, post, randomJobId, request, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, type Running } from './support/app.js';

let srv: Running;
let redis: Redis;
before(async () => {
  redis = await connectRedis(await sharedRedisUrl());
  srv = await startApp(null, await sharedRedisUrl());
});
after(async () => {
  await srv.close();
  redis.disconnect();
  await stopAllRedis();
});

const base = (c: string) => `/v1/clusters/${c}`;

async function campaign(url: string, c: string, component: string, contenderId: string, ttlMs = 60_000) {
  const r = await post(url, `${base(c)}/leaders/${component}/campaign`, { contenderId, ttlMs });
  assert.equal(r.body.granted, true, `${component}: ${JSON.stringify(r.body)}`);
  return r.body.leader as { fencingToken: number; sessionId: string; contenderId: string };
}

async function resign(url: string, c: string, component: string, contenderId: string, sessionId: string) {
  const r = await post(url, `${base(c)}/leaders/${component}/resign`, { contenderId, sessionId });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

async function history(url: string, c: string, query = '') {
  const r = await get(url, `${base(c)}/history${query}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as { entries: Array<Record<string, any>>; nextCursor?: string };
}

test('grant, resign, grant: two entries, newest first, the second with its takeover gap', async () => {
  const c = uniqueCluster('hist');
  const a = await campaign(srv.url, c, 'dispatcher', 'a');
  await post(srv.url, `${base(c)}/leaders/dispatcher/confirm`, { contenderId: 'a', sessionId: a.sessionId, address: 'http://a:8081' });
  await resign(srv.url, c, 'dispatcher', 'a', a.sessionId);
  await sleep(150);
  const b = await campaign(srv.url, c, 'dispatcher', 'b');
  const { entries, nextCursor } = await history(srv.url, c);
  assert.equal(nextCursor, undefined);
  assert.equal(entries.length, 2, JSON.stringify(entries));
  const [second, first] = entries;
  assert.deepEqual(
    { ...first, grantedAt: typeof first.grantedAt, endedAt: typeof first.endedAt },
    {
      component: 'dispatcher',
      contenderId: 'a',
      sessionId: a.sessionId,
      token: a.fencingToken,
      address: 'http://a:8081',
      grantedAt: 'string',
      endedAt: 'string',
      ended: 'resigned',
      takeoverGapMs: null,
    },
  );
  assert.ok(Date.parse(first.endedAt) >= Date.parse(first.grantedAt));
  assert.equal(second.contenderId, 'b');
  assert.equal(second.token, b.fencingToken);
  assert.equal(second.ended, null, 'the current leader is in the history, open');
  assert.equal(second.endedAt, null);
  assert.equal(second.address, null);
  assert.ok(second.takeoverGapMs >= 140 && second.takeoverGapMs < 60_000, `gap ${second.takeoverGapMs}`);
  assert.equal(Date.parse(second.grantedAt) - Date.parse(first.endedAt), second.takeoverGapMs);
});

test('an expiry is recorded as expired, a job cleanup revokes (and keeps the entries)', async () => {
  const c = uniqueCluster('hist');
  await campaign(srv.url, c, 'resourcemanager', 'rm', 1000);
  await waitFor(async () => (await history(srv.url, c)).entries[0]?.ended === 'expired', 15_000, 'the expiry recorded');
  const job = randomJobId();
  await campaign(srv.url, c, `jobmanager/${job}`, 'jm');
  const r = await request(srv.url, 'DELETE', `${base(c)}/jobs/${job}`, { headers: { 'x-fencing-token': 'override' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const { entries } = await history(srv.url, c);
  assert.deepEqual(
    entries.map((e) => [e.component, e.ended]),
    [
      [`jobmanager/${job}`, 'revoked'],
      ['resourcemanager', 'expired'],
    ],
  );
  // Nothing of the job is left but its entries, which age out with the history.
  assert.equal(await redis.hexists(`lh:{${c}}:history:state`, `jobmanager/${job}`), 0);
});

test("a leadership and its published components: each its own entry, ended with it", async () => {
  const c = uniqueCluster('hist');
  const l = await post(srv.url, `${base(c)}/leadership/campaign`, { contenderId: 'boss', ttlMs: 60_000 });
  assert.equal(l.status, 200, JSON.stringify(l.body));
  const sessionId = l.body.leadership.sessionId;
  const p = await post(srv.url, `${base(c)}/leadership/publish`, { sessionId, component: 'rest', address: 'http://boss:8081' });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.equal((await post(srv.url, `${base(c)}/leadership/resign`, { contenderId: 'boss', sessionId })).status, 200);
  const { entries } = await history(srv.url, c);
  assert.deepEqual(
    entries.map((e) => [e.component, e.contenderId, e.sessionId, e.ended, e.address]),
    [
      ['rest', 'boss', sessionId, 'resigned', 'http://boss:8081'],
      ['leadership', 'boss', sessionId, 'resigned', null],
    ],
  );
  const only = await history(srv.url, c, '?component=leadership');
  assert.deepEqual(only.entries.map((e) => e.component), ['leadership']);
  // A revocation by an admin ends them as revoked.
  const again = await post(srv.url, `${base(c)}/leadership/campaign`, { contenderId: 'boss', ttlMs: 60_000 });
  assert.equal((await post(srv.url, `${base(c)}/leadership/revoke`, { sessionId: again.body.leadership.sessionId })).status, 200);
  const latest = (await history(srv.url, c, '?component=leadership')).entries[0];
  assert.equal(latest.ended, 'revoked');
  assert.ok(latest.takeoverGapMs >= 0);
});

test('pagination over more than a page, with a component filter and a time range', async () => {
  const c = uniqueCluster('hist');
  const tokens: Record<string, number[]> = { dispatcher: [], rest: [] };
  let middle = 0;
  for (let i = 0; i < 7; i++) {
    for (const component of ['dispatcher', 'rest']) {
      const l = await campaign(srv.url, c, component, `c${i}`);
      tokens[component].push(l.fencingToken);
      await resign(srv.url, c, component, `c${i}`, l.sessionId);
    }
    if (i === 3) {
      await sleep(20);
      middle = Date.now();
      await sleep(20);
    }
  }
  const seen: number[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await history(srv.url, c, `?component=dispatcher&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
    assert.ok(page.entries.length <= 3);
    for (const e of page.entries) assert.equal(e.component, 'dispatcher');
    seen.push(...page.entries.map((e) => e.token));
    cursor = page.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  assert.deepEqual(seen, [...tokens.dispatcher].reverse(), 'every dispatcher entry once, newest first');
  const all = await history(srv.url, c, '?limit=1000');
  assert.equal(all.entries.length, 14);
  const from = await history(srv.url, c, `?from=${new Date(middle).toISOString()}`);
  assert.equal(from.entries.length, 6, 'the grants of the last three rounds');
  const to = await history(srv.url, c, `?to=${new Date(middle).toISOString()}&component=rest`);
  assert.deepEqual(to.entries.map((e) => e.token), tokens.rest.slice(0, 4).reverse());
  const bad = await get(srv.url, `${base(c)}/history?from=yesterday`);
  assert.equal(bad.status, 400);
});

test('retention by count and by age, trimmed by the writes', async (t) => {
  const small = await startApp(t, await sharedRedisUrl(), { HISTORY_MAX_ENTRIES: '5', HISTORY_MAX_AGE_MS: '2000' });
  const c = uniqueCluster('hist');
  const tokens: number[] = [];
  for (let i = 0; i < 12; i++) {
    const l = await campaign(small.url, c, 'rest', `c${i}`);
    tokens.push(l.fencingToken);
    await resign(small.url, c, 'rest', `c${i}`, l.sessionId);
  }
  const kept = await history(small.url, c);
  assert.deepEqual(kept.entries.map((e) => e.token), tokens.slice(-5).reverse());
  assert.equal(await redis.xlen(`lh:{${c}}:history`), 5);
  assert.equal(await redis.hlen(`lh:{${c}}:history:entries`), 5 * 2, 'each kept entry: its grant and its end');
  await sleep(2200);
  const l = await campaign(small.url, c, 'rest', 'late');
  const aged = await history(small.url, c);
  assert.deepEqual(aged.entries.map((e) => e.token), [l.fencingToken], 'the older ones aged out');
  // The grant read the previous end before its write trimmed that entry.
  assert.ok(aged.entries[0].takeoverGapMs >= 2000, `gap ${aged.entries[0].takeoverGapMs}`);
  await sleep(2200);
  assert.deepEqual((await history(small.url, c)).entries, [], 'past the age, an entry is not answered even before a write trims it');
});

test('a cluster cleanup removes the history', async () => {
  const c = uniqueCluster('hist');
  const l = await campaign(srv.url, c, 'rest', 'a');
  await resign(srv.url, c, 'rest', 'a', l.sessionId);
  await campaign(srv.url, c, 'rest', 'b');
  assert.equal((await request(srv.url, 'DELETE', base(c))).status, 200);
  assert.deepEqual(await scanKeys(redis, `lh:{${c}}:*`), []);
  assert.deepEqual((await history(srv.url, c)).entries, []);
});

/** The value of a sample of /metrics, or 0 when absent. */
async function sample(url: string, line: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

test('the failover metrics: takeover gaps, renewal slack and ends, by component kind', async () => {
  const c = uniqueCluster('hist');
  const gaps = await sample(srv.url, 'leasehold_takeover_gap_seconds_count{kind="rest"}');
  const resigned = await sample(srv.url, 'leasehold_leaderships_ended_total{kind="rest",ended="resigned"}');
  const slack = await sample(srv.url, 'leasehold_renewal_slack_seconds_count{kind="rest"}');
  const slow = await sample(srv.url, 'leasehold_renewal_slack_seconds_bucket{kind="rest",le="7.5"}');
  const a = await campaign(srv.url, c, 'rest', 'a', 10_000);
  await sleep(300);
  const renewed = await post(srv.url, `${base(c)}/leaders/rest/renew`, { contenderId: 'a', sessionId: a.sessionId });
  assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
  await resign(srv.url, c, 'rest', 'a', a.sessionId);
  await campaign(srv.url, c, 'rest', 'b');
  assert.equal(await sample(srv.url, 'leasehold_takeover_gap_seconds_count{kind="rest"}'), gaps + 1);
  assert.equal(await sample(srv.url, 'leasehold_leaderships_ended_total{kind="rest",ended="resigned"}'), resigned + 1);
  assert.equal(await sample(srv.url, 'leasehold_renewal_slack_seconds_count{kind="rest"}'), slack + 1);
  // Renewed 0.3 s into a 10 s lease: between 7.5 and 10 s were left.
  assert.equal(await sample(srv.url, 'leasehold_renewal_slack_seconds_bucket{kind="rest",le="7.5"}'), slow);
  assert.equal(await sample(srv.url, 'leasehold_renewal_slack_seconds_bucket{kind="rest",le="10"}'), slow + 1);
  const l = await post(srv.url, `${base(c)}-l/leadership/campaign`, { contenderId: 'boss', ttlMs: 10_000 });
  const leadershipSlack = await sample(srv.url, 'leasehold_renewal_slack_seconds_count{kind="leadership"}');
  const r = await post(srv.url, `${base(c)}-l/leadership/renew`, { contenderId: 'boss', sessionId: l.body.leadership.sessionId });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(await sample(srv.url, 'leasehold_renewal_slack_seconds_count{kind="leadership"}'), leadershipSlack + 1);
});

test('a leader Redis lost to a rollback is recorded as lost', async (t) => {
  const own = await RedisProcess.start();
  t.after(() => own.stop());
  const app = await startApp(t, own.url);
  const c = uniqueCluster('hist');
  // The cluster has data when the backup is taken: a leader that resigned.
  const a = await campaign(app.url, c, 'dispatcher', 'a', 3000);
  await resign(app.url, c, 'dispatcher', 'a', a.sessionId);
  const backup = await snapshot(own);
  // B is granted (acknowledged) after the backup, and the server's view believes it; its
  // lease is long enough to still run when the loss is found.
  const b = await campaign(app.url, c, 'dispatcher', 'b', 30_000);
  assert.equal((await get(app.url, `${base(c)}/leaders/dispatcher`)).body.leader.contenderId, 'b');
  await restoreSnapshot(own, backup);
  await waitFor(async () => (await history(app.url, c)).entries[0]?.ended === 'lost', 20_000, 'the loss recorded');
  const { entries } = await history(app.url, c);
  assert.deepEqual(
    entries.map((e) => [e.contenderId, e.token, e.ended]),
    [
      ['b', b.fencingToken, 'lost'],
      ['a', a.fencingToken, 'resigned'],
    ],
  );
  assert.equal(entries[0].sessionId, b.sessionId);
  assert.equal(await sample(app.url, 'leasehold_leaderships_ended_total{kind="dispatcher",ended="lost"}'), 1);
});
