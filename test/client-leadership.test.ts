/**
 * The SDK's ClusterLeadership (one lease for many components) against a real server and
 * Redis: grant, publish seen by a follower, expiry and an admin's revoke ending it in the
 * SDK and for every component, a standby taking over, the `republish` option, and the
 * access-token binding surfacing as a typed error.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import {
  LeaseholdClient,
  NotLeaderError,
  NotLeadershipOwnerError,
  type Change,
  type Cluster,
  type ClusterLeadership,
  type HeldLeadership,
  type RevokeReason,
} from '../src/client/index.js';
import { randomJobId, sharedRedisUrl, startApp, uniqueCluster, waitFor, type Running } from './support/app.js';
import { TcpProxy } from './support/proxy.js';
import { stopAllRedis } from './support/redis.js';

let app: Running;

before(async () => {
  app = await startApp(null, await sharedRedisUrl());
});

after(async () => {
  await app?.close();
  await stopAllRedis();
});

const TTL = 1000;

function clusterOn(url: string, id = uniqueCluster('lsdk'), token?: string): Cluster {
  return new LeaseholdClient({ url, token }).cluster(id);
}

/** A leadership contender closed after the test. */
function contender(t: TestContext, cluster: Cluster, options: Parameters<Cluster['leadershipElection']>[0] = {}): ClusterLeadership {
  const l = cluster.leadershipElection({ ttlMs: TTL, ...options });
  t.after(() => l.close());
  return l;
}

function granted(l: ClusterLeadership, timeoutMs = 10_000): Promise<HeldLeadership> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no grant within ${timeoutMs} ms`)), timeoutMs);
    l.once('granted', (_s, _t, h) => {
      clearTimeout(timer);
      resolve(h);
    });
  });
}

function revoked(l: ClusterLeadership, timeoutMs = 10_000): Promise<RevokeReason> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no revoke within ${timeoutMs} ms`)), timeoutMs);
    l.once('revoked', (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

test('a grant, publishing seen by a follower, renewals past the TTL, and resign', async (t) => {
  const cluster = clusterOn(app.url);
  const retrieval = cluster.retrieval();
  const changes: Change[] = [];
  retrieval.on('change', (c) => changes.push(c));
  t.after(() => retrieval.close());
  retrieval.start();

  const l = contender(t, cluster);
  const held = await granted(l.start());
  assert.ok(l.isLeader());
  assert.equal(l.fencingToken(), held.fencingToken);
  const job = `jobmanager/${randomJobId()}` as const;
  const leader = await l.publish('dispatcher', 'akka://d');
  assert.equal(leader.sessionId, held.sessionId);
  assert.equal(leader.fencingToken, held.fencingToken);
  await l.publish(job, 'akka://jm');
  await waitFor(() => changes.length >= 2, 5000, 'two granted changes');
  assert.deepEqual(
    changes.map((c) => [c.event, c.component, c.leader?.sessionId]),
    [
      ['granted', 'dispatcher', held.sessionId],
      ['granted', job, held.sessionId],
    ],
  );
  // Renewed in the background: still leading after three TTLs.
  await new Promise((r) => setTimeout(r, 3 * TTL));
  assert.ok(l.isLeader());
  const info = await cluster.leadership();
  assert.equal(info?.sessionId, held.sessionId);
  assert.deepEqual(info?.components.map((c) => c.component), ['dispatcher', job].sort());

  // Store writes take the leadership as their fence.
  await cluster.jobResults(l).createDirty(randomJobId(), { applicationStatus: 'SUCCEEDED' });

  await l.resign();
  assert.equal(l.isLeader(), false);
  assert.throws(() => l.fencingToken(), NotLeaderError);
  assert.equal(await cluster.leadership(), null);
  assert.equal(await cluster.leader('dispatcher'), null);
});

test('expiry: the SDK revokes (unconfirmed) and every published component turns leaderless', async (t) => {
  const proxy = await TcpProxy.start(Number(new URL(app.url).port));
  t.after(() => proxy.close());
  const id = uniqueCluster('lexp');
  const l = contender(t, clusterOn(proxy.url, id));
  await granted(l.start());
  await l.publish('dispatcher', 'a');
  await l.publish('resourcemanager', 'b');
  const direct = clusterOn(app.url, id);
  const gone = revoked(l);
  proxy.blackhole();
  assert.equal(await gone, 'unconfirmed');
  assert.equal(l.isLeader(), false);
  await waitFor(async () => (await direct.leadership()) === null, 5000, 'the leadership to expire');
  // The leaders' view follows with the server's expiry check (GET leadership may answer null a
  // moment before): every component at once.
  await waitFor(async () => (await direct.leaders()).leaders.every((c) => c.leader === null), 5000, 'every component leaderless');
});

test("an admin's revoke: revoked (lost) in the SDK, and a standby takes over", async (t) => {
  const cluster = clusterOn(app.url);
  const a = contender(t, cluster, { contenderId: 'a' });
  const heldA = await granted(a.start());
  await a.publish('dispatcher', 'akka://a');
  const b = contender(t, cluster, { contenderId: 'b' });
  b.start();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(b.isLeader(), false);

  const lost = revoked(a);
  const bGranted = granted(b);
  assert.equal(await cluster.revokeLeadership(heldA.sessionId), true);
  const heldB = await bGranted;
  assert.equal(await lost, 'lost');
  assert.ok(heldB.fencingToken > heldA.fencingToken);
  // Without `republish`, nothing of a's grant is published for b.
  assert.equal(await cluster.leader('dispatcher'), null);
  await assert.rejects(cluster.revokeLeadership(heldA.sessionId), NotLeaderError);
});

test('republish: the components are published again after a re-grant', async (t) => {
  const cluster = clusterOn(app.url);
  const l = contender(t, cluster, { republish: true });
  const first = await granted(l.start());
  await l.publish('rest', 'http://rest');
  const again = granted(l);
  await cluster.revokeLeadership();
  const second = await again;
  assert.notEqual(second.sessionId, first.sessionId);
  const leader = await cluster.leader('rest');
  assert.equal(leader?.sessionId, second.sessionId);
  assert.equal(leader?.address, 'http://rest');
});

test('one-shot helpers, and the access-token binding as NotLeadershipOwnerError', async (t) => {
  const T = { a: 'contend-token-a-000001', b: 'contend-token-b-000001', admin: 'admin-token-00000001' };
  const id = uniqueCluster('lown');
  const secured = await startApp(t, await sharedRedisUrl(), {
    AUTH_TOKENS: JSON.stringify([
      { name: 'a', token: T.a, role: 'write', clusters: [id] },
      { name: 'b', token: T.b, role: 'write', clusters: [id] },
      { name: 'root', token: T.admin, role: 'admin' },
    ]),
  });
  const asA = clusterOn(secured.url, id, T.a);
  const asB = clusterOn(secured.url, id, T.b);
  const won = await asA.campaignLeadership({ contenderId: 'a', ttlMs: 10_000 });
  assert.equal(won.granted, true);
  const { sessionId } = won.leadership;
  assert.equal((await asA.publishUnder(sessionId, 'dispatcher', 'x')).sessionId, sessionId);
  await assert.rejects(asB.publishUnder(sessionId, 'rest', 'y'), NotLeadershipOwnerError);
  await assert.rejects(asB.resignLeadership({ contenderId: 'a', sessionId }), NotLeadershipOwnerError);

  // The same contender id with another token is not the holder: no grant back.
  assert.equal((await asB.campaignLeadership({ contenderId: 'a', ttlMs: 10_000 })).granted, false);

  assert.equal(await asA.resignLeadership({ contenderId: 'a', sessionId }), true);
  assert.equal(await clusterOn(secured.url, id, T.admin).revokeLeadership(), false);
});
