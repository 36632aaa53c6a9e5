/**
 * Renewals over a stream (issue 19): `GET /v1/renewals` upgrades to a websocket that renews
 * any number of leases and leaderships, each answer carrying its message's id, with the
 * guarantees of `POST …/renew` (session binding to the token that campaigned, NotLeader for
 * a session that does not hold the lease), auth on the upgrade, and a `lost` message pushed
 * when a lease it renews ends. Against real Redis.
 */
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { buildApp } from '../src/app.js';
import { LeaseholdClient, UnavailableError, type ClusterLeadership, type LeaderElection } from '../src/client/index.js';
import { stopAllRedis } from './support/redis.js';
import { readyEverywhere, appRedis, post, randomJobId, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, Watch, type Running } from './support/app.js';

let redisUrl: string;
let open: Running;
before(async () => {
  redisUrl = await sharedRedisUrl();
  open = await startApp(null, redisUrl);
});
after(async () => {
  await open.close();
  await stopAllRedis();
});

/** A renewal stream: a websocket whose messages are kept (test/support's Watch), and
 * renewals sent with ids of its own. */
class Stream {
  private nextId = 1;

  private constructor(private readonly socket: Watch) {}

  /** Opens it, or rejects with the HTTP status and (parsed) body of the refused upgrade. */
  static async open(t: TestContext, base: string, headers: Record<string, string> = {}): Promise<Stream> {
    try {
      return new Stream(await Watch.open(t, `${base}/v1/renewals`, headers));
    } catch (err) {
      const e = err as { status?: number; body?: string };
      throw Object.assign(err as Error, { body: e.body === undefined ? undefined : JSON.parse(e.body) });
    }
  }

  get ws(): WebSocket {
    return this.socket.ws;
  }

  get messages(): any[] {
    return this.socket.messages;
  }

  get closeCode(): number | null {
    return this.socket.closeCode;
  }

  /** Sends a renewal (the id chosen here), and answers its answer. */
  async renew(m: Record<string, unknown>, timeoutMs = 10_000): Promise<any> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, ...m }));
    return this.find((x) => x.id === id, timeoutMs);
  }

  send(raw: string): void {
    this.ws.send(raw);
  }

  find(pred: (m: any) => boolean, timeoutMs = 10_000): Promise<any> {
    return this.socket.find(pred, timeoutMs);
  }
}

function authed(token: string) {
  return { authorization: `Bearer ${token}` };
}

async function as(token: string, base: string, path: string, body: unknown) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authed(token) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

test('many leases and a leadership on one stream, each answered with its id as HTTP answers a renewal', async (t) => {
  const c1 = uniqueCluster('rs-many');
  const c2 = uniqueCluster('rs-many');
  const job = randomJobId();
  const leases: Array<{ component: string; sessionId: string }> = [];
  for (const component of ['dispatcher', 'resourcemanager', 'rest', `jobmanager/${job}`]) {
    const r = await post(open.url, `/v1/clusters/${c1}/leaders/${component}/campaign`, { contenderId: 'p1', ttlMs: 5000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    leases.push({ component, sessionId: r.body.leader.sessionId });
  }
  const l = await post(open.url, `/v1/clusters/${c2}/leadership/campaign`, { contenderId: 'p1', ttlMs: 5000 });
  assert.equal(l.status, 200, JSON.stringify(l.body));

  const s = await Stream.open(t, open.wsUrl);
  // Sent all at once: answered each by its id, in whatever order.
  const answers = await Promise.all([
    ...leases.map((x) => s.renew({ clusterId: c1, component: x.component.toUpperCase().startsWith('JOBMANAGER') ? `jobmanager/${job.toUpperCase()}` : x.component, contenderId: 'p1', sessionId: x.sessionId, ttlMs: 20_000 })),
    s.renew({ clusterId: c2, leadership: true, contenderId: 'p1', sessionId: l.body.leadership.sessionId, ttlMs: 20_000 }),
  ]);
  for (const [i, x] of leases.entries()) {
    const a = answers[i];
    assert.equal(a.leader.sessionId, x.sessionId, JSON.stringify(a));
    assert.ok(a.leader.leaseRemainingMs > 15_000 && a.leader.leaseRemainingMs <= 20_000, JSON.stringify(a));
    // The same body as the HTTP renewal's.
    const http = await post(open.url, `/v1/clusters/${c1}/leaders/${x.component}/renew`, { contenderId: 'p1', sessionId: x.sessionId, ttlMs: 20_000 });
    assert.deepEqual(Object.keys(a).sort(), ['id', ...Object.keys(http.body)].sort());
    assert.deepEqual(Object.keys(a.leader).sort(), Object.keys(http.body.leader).sort());
  }
  const lead = answers[leases.length];
  assert.equal(lead.leadership.sessionId, l.body.leadership.sessionId);
  assert.equal(lead.leadership.ttlMs, 20_000);
  const http = await post(open.url, `/v1/clusters/${c2}/leadership/renew`, { contenderId: 'p1', sessionId: l.body.leadership.sessionId, ttlMs: 20_000 });
  assert.deepEqual(Object.keys(lead.leadership).sort(), Object.keys(http.body.leadership).sort());
});

test('a wrong session or contender is refused with NotLeader, and the stream goes on', async (t) => {
  const c = uniqueCluster('rs-wrong');
  const won = await post(open.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd1', ttlMs: 5000 });
  const { sessionId } = won.body.leader;
  const s = await Stream.open(t, open.wsUrl);
  const wrong = await s.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd1', sessionId: '00000000-0000-4000-8000-000000000000' });
  assert.equal(wrong.error, 'NotLeader', JSON.stringify(wrong));
  assert.equal(wrong.statusCode, 409);
  assert.equal(wrong.leader.sessionId, sessionId, 'the holder, as HTTP answers it');
  const other = await s.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd2', sessionId });
  assert.equal(other.error, 'NotLeader');
  const ok = await s.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd1', sessionId });
  assert.equal(ok.leader.sessionId, sessionId);
  // A leadership that is not held.
  const none = await s.renew({ clusterId: c, leadership: true, contenderId: 'd1', sessionId });
  assert.equal(none.error, 'NotLeader');
});

test('bad messages are answered with an error, and the stream stays open', async (t) => {
  const s = await Stream.open(t, open.wsUrl);
  s.send('not json');
  const notJson = await s.find((m) => m.id === null && m.error === 'BadRequest');
  assert.equal(notJson.statusCode, 400);
  s.send(JSON.stringify({ id: 'a', clusterId: 'c', component: 'nope', contenderId: 'x', sessionId: '00000000-0000-4000-8000-000000000000' }));
  const badComponent = await s.find((m) => m.id === 'a');
  assert.equal(badComponent.error, 'BadRequest');
  assert.match(badComponent.message, /component/);
  s.send(JSON.stringify({ id: 'b', clusterId: 'c', component: 'rest', leadership: true, contenderId: 'x', sessionId: '00000000-0000-4000-8000-000000000000' }));
  assert.match((await s.find((m) => m.id === 'b')).message, /either a component or the leadership/);
  s.send(JSON.stringify({ id: 'c', clusterId: 'c', component: 'rest', contenderId: 'x', sessionId: '00000000-0000-4000-8000-000000000000', ttlMs: 5 }));
  assert.match((await s.find((m) => m.id === 'c')).message, /ttlMs/);
  s.send(JSON.stringify({ id: 'd', clusterId: 'c', component: 'rest', contenderId: 'x', sessionId: 'x', extra: 1 }));
  assert.equal((await s.find((m) => m.id === 'd')).statusCode, 400);
  assert.equal(s.closeCode, null);
  // Still renews.
  const c = uniqueCluster('rs-bad');
  const won = await post(open.url, `/v1/clusters/${c}/leaders/rest/campaign`, { contenderId: 'r1', ttlMs: 5000 });
  assert.equal(won.status, 200, JSON.stringify(won.body));
  const ok = await s.renew({ clusterId: c, component: 'rest', contenderId: 'r1', sessionId: won.body.leader.sessionId });
  assert.equal(ok.leader.contenderId, 'r1');
});

test('a plain GET is told to upgrade', async () => {
  const res = await fetch(`${open.url}/v1/renewals`);
  assert.equal(res.status, 426);
  assert.equal((await res.json()).error, 'UpgradeRequired');
});

test('a lease lost while streaming is told at once, and its next renewal says NotLeader', async (t) => {
  const c = uniqueCluster('rs-lost');
  const s = await Stream.open(t, open.wsUrl);
  // A lease that expires: its TTL runs out (the server's lease timer records the expiry).
  const won = await post(open.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd1', ttlMs: 1000 });
  const { sessionId } = won.body.leader;
  const ok = await s.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd1', sessionId, ttlMs: 1000 });
  assert.equal(ok.leader.sessionId, sessionId);
  const started = Date.now();
  const lost = await s.find((m) => m.type === 'lost' && m.component === 'dispatcher', 15_000);
  assert.equal(lost.sessionId, sessionId);
  assert.equal(lost.clusterId, c);
  assert.equal(lost.reason, 'expired');
  assert.ok(Date.now() - started < 10_000, 'told soon after the lease ran out');
  const again = await s.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd1', sessionId });
  assert.equal(again.error, 'NotLeader');

  // A leadership revoked by an admin (open server: anyone), with a component published.
  const l = await post(open.url, `/v1/clusters/${c}/leadership/campaign`, { contenderId: 'p1', ttlMs: 20_000 });
  assert.equal(l.status, 200, JSON.stringify(l.body));
  const lsid = l.body.leadership.sessionId;
  await post(open.url, `/v1/clusters/${c}/leadership/publish`, { sessionId: lsid, component: 'rest', address: 'http://x' });
  const renewed = await s.renew({ clusterId: c, leadership: true, contenderId: 'p1', sessionId: lsid });
  assert.equal(renewed.leadership.sessionId, lsid);
  const revoked = await post(open.url, `/v1/clusters/${c}/leadership/revoke`, {});
  assert.equal(revoked.body.revoked, true);
  const lostLeadership = await s.find((m) => m.type === 'lost' && m.leadership === true, 10_000);
  assert.equal(lostLeadership.sessionId, lsid);
  assert.equal((await s.renew({ clusterId: c, leadership: true, contenderId: 'p1', sessionId: lsid })).error, 'NotLeader');
});

const ONE = 'tok-one-0123456789';
const TWO = 'tok-two-0123456789';
const READ = 'tok-read-0123456789';

test('auth: the upgrade needs a contend token (401/403 before upgrading); each cluster and lease is checked', async (t) => {
  const c = uniqueCluster('rs-auth');
  const other = uniqueCluster('rs-auth');
  const s = await startApp(t, redisUrl, {
    AUTH_TOKENS: JSON.stringify([
      { name: 'one', token: ONE, role: 'contend', clusters: [c] },
      { name: 'two', token: TWO, role: 'contend', clusters: [c, other] },
      { name: 'reader', token: READ, role: 'read' },
    ]),
  });
  const refused = async (headers: Record<string, string>) => {
    try {
      await Stream.open(t, s.wsUrl, headers);
    } catch (err) {
      return err as { status: number; body: any };
    }
    assert.fail('the upgrade was accepted');
  };
  const none = await refused({});
  assert.equal(none.status, 401);
  assert.equal(none.body.error, 'Unauthorized');
  assert.equal((await refused(authed('wrong-token-0123456789'))).status, 401);
  const reader = await refused(authed(READ));
  assert.equal(reader.status, 403);
  assert.match(reader.body.message, /contend/);
  // With tokens, the token decides, whatever the page's origin (as for the watch).
  const fromPage = await Stream.open(t, s.wsUrl, { ...authed(ONE), origin: 'http://page.example' });
  fromPage.ws.close();
  // Open, only pages of the server's own origin.
  const evil = await Stream.open(t, open.wsUrl, { origin: 'http://evil.example' }).catch((err) => err);
  assert.equal(evil.status, 403);
  assert.match(evil.body.message, /origin/);

  // A lease is renewed only by the token that campaigned for it.
  const won = await as(ONE, s.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd1', ttlMs: 5000 });
  assert.equal(won.status, 200, JSON.stringify(won.body));
  const { sessionId } = won.body.leader;
  const two = await Stream.open(t, s.wsUrl, authed(TWO));
  const stolen = await two.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd1', sessionId, ttlMs: 300_000 });
  assert.equal(stolen.error, 'NotLeaseOwner', JSON.stringify(stolen));
  assert.equal(stolen.statusCode, 403);
  const lw = await as(ONE, s.url, `/v1/clusters/${other}/leadership/campaign`, { contenderId: 'p1', ttlMs: 5000 });
  assert.equal(lw.status, 403, 'one may not touch the other cluster');
  const lw2 = await as(TWO, s.url, `/v1/clusters/${other}/leadership/campaign`, { contenderId: 'p1', ttlMs: 5000 });
  const one = await Stream.open(t, s.wsUrl, authed(ONE));
  // A cluster the token may not touch: 403 in the answer, the stream goes on.
  const forbidden = await one.renew({ clusterId: other, leadership: true, contenderId: 'p1', sessionId: lw2.body.leadership.sessionId });
  assert.equal(forbidden.error, 'Forbidden', JSON.stringify(forbidden));
  assert.equal(forbidden.statusCode, 403);
  const mine = await one.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd1', sessionId, ttlMs: 5000 });
  assert.equal(mine.leader.sessionId, sessionId);
  // The leadership too: won by two on `c`, once the lease is gone; one may not renew it.
  await as(ONE, s.url, `/v1/clusters/${c}/leaders/dispatcher/resign`, { contenderId: 'd1', sessionId });
  const lc = await as(TWO, s.url, `/v1/clusters/${c}/leadership/campaign`, { contenderId: 'p2', ttlMs: 5000 });
  assert.equal(lc.status, 200, JSON.stringify(lc.body));
  const notMine = await one.renew({ clusterId: c, leadership: true, contenderId: 'p2', sessionId: lc.body.leadership.sessionId });
  assert.equal(notMine.statusCode, 403, JSON.stringify(notMine));
  assert.equal(notMine.error, 'NotLeadershipOwner');
});

// ---- the SDK

function sdkCluster(url: string, c: string) {
  const client = new LeaseholdClient({ url, timeoutMs: 5000 });
  return { client, cluster: client.cluster(c), stats: client.http.renewals.stats };
}

function track(t: TestContext, e: LeaderElection | ClusterLeadership) {
  const revoked: string[] = [];
  const errors: Error[] = [];
  e.on('revoked', (r) => revoked.push(r));
  e.on('error', (err) => errors.push(err));
  t.after(() => e.resign());
  return { revoked, errors };
}

test('the SDK renews over the stream by default, every contender of a client on one stream; renewOver http forces HTTP', { timeout: 30_000 }, async (t) => {
  const c = uniqueCluster('rs-sdk');
  const { cluster, stats } = sdkCluster(open.url, c);
  const elections = (['dispatcher', 'rest', `jobmanager/${randomJobId()}`] as const).map((component) => cluster.election({ component, ttlMs: 1500 }));
  const leadership = sdkCluster(open.url, uniqueCluster('rs-sdk')).cluster;
  const held = leadership.leadershipElection({ ttlMs: 1500 });
  const tracked = [...elections, held].map((e) => track(t, e));
  await Promise.all(elections.map((e) => once(e.start(), 'granted')));
  await once(held.start(), 'granted');
  const opened = { streamed: stats.streamed };
  await sleep(2000); // four renewals or so of each
  assert.ok(stats.streamed - opened.streamed >= 6, `streamed: ${JSON.stringify(stats)}`);
  assert.ok(elections.every((e) => e.isLeader()) && held.isLeader());
  assert.deepEqual(tracked.flatMap((x) => x.revoked), []);

  const forced = sdkCluster(open.url, uniqueCluster('rs-http'));
  const e = forced.cluster.election({ component: 'dispatcher', ttlMs: 1500, renewOver: 'http' });
  track(t, e);
  await once(e.start(), 'granted');
  await sleep(1200);
  assert.ok(e.isLeader());
  assert.deepEqual(forced.stats, { streamed: 0, overHttp: 0, cut: 0 });
});

test('the SDK falls back to HTTP for good against a server without the stream (404 on the upgrade)', { timeout: 30_000 }, async (t) => {
  const app = await buildApp({ ...(await appRedis(redisUrl)), logger: false });
  // An older server: no such route.
  app.addHook('onRequest', (req, reply, done) => {
    if (req.url.startsWith('/v1/renewals')) void reply.code(404).send({ error: 'NotFound', message: 'no route', statusCode: 404 });
    else done();
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  await waitFor(() => readyEverywhere(app), 10_000, 'ready');
  const { cluster, stats } = sdkCluster(url, uniqueCluster('rs-old'));
  const e = cluster.election({ component: 'dispatcher', ttlMs: 1500 });
  const tracked = track(t, e);
  await once(e.start(), 'granted');
  await sleep(2000);
  assert.ok(e.isLeader());
  assert.deepEqual(tracked.revoked, []);
  assert.equal(stats.streamed, 0);
  assert.ok(stats.overHttp >= 3, JSON.stringify(stats));
});

test('a stream cut mid-renewal is an unknown outcome: the SDK retries over HTTP, keeps leading, and streams again', { timeout: 60_000 }, async (t) => {
  const s = await startApp(t, redisUrl);
  const upgraded: Socket[] = [];
  s.app.server.on('upgrade', (_req, socket: Socket) => upgraded.push(socket));
  const { client, cluster, stats } = sdkCluster(s.url, uniqueCluster('rs-cut'));
  const e = cluster.election({ component: 'dispatcher', ttlMs: 6000 }); // renewals every 2 s
  const tracked = track(t, e);
  await once(e.start(), 'granted');
  await waitFor(() => stats.streamed >= 1, 10_000, 'a streamed renewal');
  const session = e.leadership!.sessionId;

  // The server stops reading the stream: the next renewal is sent and never answered…
  for (const socket of upgraded) socket.pause();
  const before = { ...stats };
  await waitFor(() => client.http.renewals.inFlight > 0, 5000, 'a renewal in flight');
  // …and then the server side cuts it.
  for (const socket of upgraded.splice(0)) socket.destroy();
  await waitFor(() => stats.cut >= 1, 5000, 'the cut renewal');
  assert.equal(stats.streamed, before.streamed, 'not answered');
  const unknown = tracked.errors.find((err) => err instanceof UnavailableError && /outcome is unknown/.test(err.message));
  assert.ok(unknown, `an unknown outcome reported: ${tracked.errors.map((x) => x.message).join('; ')}`);
  // Retried over HTTP at once, while the stream opens again; never revoked.
  await waitFor(() => stats.overHttp > before.overHttp, 5000, 'a renewal over HTTP');
  await waitFor(() => stats.streamed > before.streamed, 15_000, 'streaming again');
  assert.deepEqual(tracked.revoked, []);
  assert.ok(e.isLeader());
  assert.equal(e.leadership!.sessionId, session);
});

test('the SDK steps down at once when the server pushes lost', { timeout: 30_000 }, async (t) => {
  const c = uniqueCluster('rs-sdk-lost');
  const { cluster, stats } = sdkCluster(open.url, c);
  const held = cluster.leadershipElection({ ttlMs: 6000, renewIntervalMs: 500 });
  const tracked = track(t, held);
  await once(held.start(), 'granted');
  await held.publish('rest', 'http://x');
  await waitFor(() => stats.streamed >= 1, 15_000, 'a streamed renewal');
  const revokedAt = Date.now();
  assert.equal((await post(open.url, `/v1/clusters/${c}/leadership/revoke`, {})).body.revoked, true);
  await waitFor(() => tracked.revoked.length > 0, 5000, 'revoked');
  assert.deepEqual(tracked.revoked, ['lost']);
  // Told by the push, or by the next renewal (due within 500 ms): well within the TTL.
  assert.ok(Date.now() - revokedAt < 3000, 'long before the lease would have run out');
});

// ---- issue 19's list: many leases, lost pushed at once (a leadership with nothing published
// too), cut mid-renewal (above), auth on the upgrade (above)

test('200 leases on one stream: every renewal sent at once is answered by its id, twice over; one resigned is pushed lost alone', { timeout: 120_000 }, async (t) => {
  const c = uniqueCluster('rs-200');
  const leases: Array<{ component: string; sessionId: string }> = [];
  for (let i = 0; i < 200; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const component = `jobmanager/${randomJobId()}`;
        const r = await post(open.url, `/v1/clusters/${c}/leaders/${component}/campaign`, { contenderId: 'jm', ttlMs: 60_000 });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return { component, sessionId: r.body.leader.sessionId as string };
      }),
    );
    leases.push(...batch);
  }
  const s = await Stream.open(t, open.wsUrl);
  for (const ttlMs of [60_000, 50_000]) {
    const answers = await Promise.all(leases.map((x) => s.renew({ clusterId: c, component: x.component, contenderId: 'jm', sessionId: x.sessionId, ttlMs }, 60_000)));
    for (const [i, a] of answers.entries()) {
      assert.equal(a.leader?.sessionId, leases[i].sessionId, JSON.stringify(a));
      assert.ok(a.leader.leaseRemainingMs > ttlMs - 20_000 && a.leader.leaseRemainingMs <= ttlMs, JSON.stringify(a));
    }
  }
  assert.equal(s.closeCode, null);
  // One of them ends (its holder resigns over HTTP): only its lost is pushed.
  const gone = leases[123];
  const resigned = await post(open.url, `/v1/clusters/${c}/leaders/${gone.component}/resign`, { contenderId: 'jm', sessionId: gone.sessionId });
  assert.equal(resigned.status, 200, JSON.stringify(resigned.body));
  const lost = await s.find((m) => m.type === 'lost', 10_000);
  assert.equal(lost.sessionId, gone.sessionId);
  assert.equal(lost.component, gone.component);
  await sleep(500);
  assert.equal(s.messages.filter((m) => m.type === 'lost').length, 1, 'no other lease told lost');
});

test('a leadership with nothing published is pushed lost when revoked, and when it runs out', { timeout: 60_000 }, async (t) => {
  const c = uniqueCluster('rs-bare');
  const s = await Stream.open(t, open.wsUrl);
  // Revoked by an admin: told at once, long before its 60 s lease would have run out.
  const l = await post(open.url, `/v1/clusters/${c}/leadership/campaign`, { contenderId: 'p1', ttlMs: 60_000 });
  assert.equal(l.status, 200, JSON.stringify(l.body));
  const sid = l.body.leadership.sessionId;
  assert.equal((await s.renew({ clusterId: c, leadership: true, contenderId: 'p1', sessionId: sid })).leadership.sessionId, sid);
  const revokedAt = Date.now();
  assert.equal((await post(open.url, `/v1/clusters/${c}/leadership/revoke`, {})).body.revoked, true);
  const lost = await s.find((m) => m.type === 'lost' && m.sessionId === sid, 10_000);
  assert.equal(lost.leadership, true);
  assert.equal(lost.clusterId, c);
  assert.ok(Date.now() - revokedAt < 5000, `told ${Date.now() - revokedAt} ms after the revocation`);

  // Run out: no renewal after the one, a 1.5 s lease; told within a few seconds of its end.
  const c2 = uniqueCluster('rs-bare');
  const l2 = await post(open.url, `/v1/clusters/${c2}/leadership/campaign`, { contenderId: 'p2', ttlMs: 1500 });
  const sid2 = l2.body.leadership.sessionId;
  const renewed = await s.renew({ clusterId: c2, leadership: true, contenderId: 'p2', sessionId: sid2, ttlMs: 1500 });
  assert.equal(renewed.leadership.sessionId, sid2);
  const renewedAt = Date.now();
  const ran = await s.find((m) => m.type === 'lost' && m.sessionId === sid2, 15_000);
  assert.equal(ran.leadership, true);
  assert.equal(ran.reason, 'ended');
  assert.ok(Date.now() - renewedAt >= 1000, 'not before its lease could have run out');
  assert.equal((await s.renew({ clusterId: c2, leadership: true, contenderId: 'p2', sessionId: sid2 })).error, 'NotLeader');
});

test('the SDK learns of a lost lease from the push, long before its next renewal is due', { timeout: 90_000 }, async (t) => {
  // Renewals every 8 s: a lease ended right after one and told within 4 s was pushed.
  const { cluster, stats } = sdkCluster(open.url, uniqueCluster('rs-push'));
  const e = cluster.election({ component: 'dispatcher', ttlMs: 60_000, renewIntervalMs: 8000 });
  const held = sdkCluster(open.url, uniqueCluster('rs-push'));
  // A leadership with nothing published: no component's change tells of its end.
  const l = held.cluster.leadershipElection({ ttlMs: 60_000, renewIntervalMs: 8000 });
  const tracked = [track(t, e), track(t, l)];
  await Promise.all([once(e.start(), 'granted'), once(l.start(), 'granted')]);
  const ended = [
    () => post(open.url, `/v1/clusters/${cluster.clusterId}/leaders/dispatcher/resign`, { contenderId: e.contenderId, sessionId: e.leadership!.sessionId }),
    () => post(open.url, `/v1/clusters/${held.cluster.clusterId}/leadership/revoke`, {}),
  ];
  for (const [i, s] of [stats, held.stats].entries()) {
    // Right after a renewal over the stream (which makes the lease known to it).
    const streamed = s.streamed;
    await waitFor(() => s.streamed > streamed, 20_000, 'a streamed renewal');
    const at = Date.now();
    const r = await ended[i]();
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor(() => tracked[i].revoked.length > 0, 10_000, 'revoked');
    assert.deepEqual(tracked[i].revoked, ['lost']);
    assert.ok(Date.now() - at < 4000, `told ${Date.now() - at} ms after the lease ended`);
  }
});

test('/metrics counts the open streams, their renewals by outcome, and the lost pushed', { timeout: 30_000 }, async (t) => {
  const srv = await startApp(t, redisUrl);
  const metric = async (name: string) => {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    const m = text.match(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm'));
    return m ? Number(m[1]) : null;
  };
  assert.equal(await metric('leasehold_renewal_streams'), 0);
  const c = uniqueCluster('rs-metrics');
  const won = await post(srv.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd1', ttlMs: 30_000 });
  const { sessionId } = won.body.leader;
  const s = await Stream.open(t, srv.wsUrl);
  const s2 = await Stream.open(t, srv.wsUrl);
  assert.equal(await metric('leasehold_renewal_streams'), 2);
  for (let i = 0; i < 3; i++) assert.ok((await s.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd1', sessionId })).leader);
  assert.equal((await s2.renew({ clusterId: c, component: 'dispatcher', contenderId: 'd2', sessionId })).error, 'NotLeader');
  s2.send('not json');
  await s2.find((m) => m.error === 'BadRequest');
  assert.equal(await metric('leasehold_streamed_renewals_total{outcome="renewed"}'), 3);
  assert.equal(await metric('leasehold_streamed_renewals_total{outcome="NotLeader"}'), 1);
  assert.equal(await metric('leasehold_streamed_renewals_total{outcome="BadRequest"}'), 1);
  await post(srv.url, `/v1/clusters/${c}/leaders/dispatcher/resign`, { contenderId: 'd1', sessionId });
  await s.find((m) => m.type === 'lost');
  assert.equal(await metric('leasehold_streamed_lost_total{kind="dispatcher"}'), 1);
  s.ws.close();
  s2.ws.close();
  await waitFor(async () => (await metric('leasehold_renewal_streams')) === 0, 5000, 'the streams closed');
});
