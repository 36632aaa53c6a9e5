/** Under a storm of campaigns, renewals, resignations and expiries through two replicas,
 * every watcher sees the same history, in index order, with nothing missed or doubled. */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { stopAllRedis } from './support/redis.js';
import { get, post, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, Watch } from './support/app.js';

after(() => stopAllRedis());

const COMPONENTS = ['dispatcher', 'resourcemanager', 'jobmanager/0123456789abcdef0123456789abcdef'];

test('watchers on both replicas and a replay from the log agree on every change', { timeout: 60_000 }, async (t) => {
  const redisUrl = await sharedRedisUrl();
  const replicas = [await startApp(t, redisUrl), await startApp(t, redisUrl)];
  const cluster = uniqueCluster('storm');
  const base = `/v1/clusters/${cluster}/leaders`;
  const start = (await get(replicas[0].url, base)).body.index;
  const watchers = await Promise.all(replicas.map((r) => Watch.open(t, `${r.wsUrl}/v1/clusters/${cluster}/watch?since=${start}`)));

  // Contenders act at random through either replica until the deadline.
  const deadline = Date.now() + 4000;
  const tokens = new Map<string, number[]>(COMPONENTS.map((c) => [c, []]));
  const contender = async (id: number) => {
    let held: { component: string; sessionId: string } | null = null;
    while (Date.now() < deadline) {
      const via = replicas[Math.floor(Math.random() * 2)].url;
      if (!held) {
        const component = COMPONENTS[Math.floor(Math.random() * COMPONENTS.length)];
        const r = await post(via, `${base}/${component}/campaign`, { contenderId: `c${id}`, ttlMs: 1000 });
        if (r.body.granted) {
          held = { component, sessionId: r.body.leader.sessionId };
          tokens.get(component)!.push(r.body.leader.fencingToken);
        }
      } else {
        const roll = Math.random();
        const body = { contenderId: `c${id}`, sessionId: held.sessionId };
        if (roll < 0.4) {
          const r = await post(via, `${base}/${held.component}/renew`, { ...body, ttlMs: 1000 });
          if (r.status === 409) held = null;
        } else if (roll < 0.7) {
          await post(via, `${base}/${held.component}/resign`, body);
          held = null;
        } else if (roll < 0.8) {
          held = null; // walk away: the lease will expire
        }
      }
      await sleep(Math.random() * 40);
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, i) => contender(i)));

  // Let the leases left behind expire, then compare what everyone saw.
  await sleep(1500);
  const final = (await get(replicas[0].url, base)).body.index;
  await waitFor(() => watchers.every((w) => w.messages.at(-1)?.index === final), 5000, 'watchers caught up');
  const replay = await Watch.open(t, `${replicas[1].wsUrl}/v1/clusters/${cluster}/watch?since=${start}`);
  await waitFor(() => replay.messages.at(-1)?.index === final, 5000, 'replay complete');

  const history = (w: Watch) => w.messages.map((m) => `${m.type}:${m.index}:${m.event}:${m.component}:${m.leader?.sessionId ?? '-'}`);
  const [a, b] = watchers.map(history);
  assert.ok(a.length > 20, `a storm of changes (${a.length})`);
  assert.ok(a.every((h) => h.startsWith('change:')), 'only changes, no snapshot');
  assert.deepEqual(b, a);
  assert.deepEqual(history(replay), a);
  const indexes = watchers[0].messages.map((m) => m.index);
  assert.deepEqual(indexes, [...indexes].sort((x, y) => x - y));
  assert.equal(new Set(indexes).size, indexes.length);

  // Per component: grants alternate with revocations or expiries, and tokens only grow.
  for (const component of COMPONENTS) {
    const events = watchers[0].messages.filter((m) => m.component === component);
    let leader: string | null = null;
    let lastToken = 0;
    for (const m of events) {
      if (m.event === 'granted') {
        assert.equal(leader, null, `${component}: granted while led`);
        assert.ok(m.leader.fencingToken > lastToken);
        lastToken = m.leader.fencingToken;
        leader = m.leader.sessionId;
      } else {
        assert.ok(m.event === 'revoked' || m.event === 'expired', m.event);
        assert.notEqual(leader, null, `${component}: ${m.event} with no leader`);
        leader = null;
      }
    }
    assert.deepEqual(tokens.get(component), [...tokens.get(component)!].sort((x, y) => x - y));
  }
});
