/**
 * Leader retrieval against one server (docs/design.md §4): GET one leader and all leaders, the
 * index and its ETag, Consul-style long-polls, and the websocket watch with its snapshot,
 * change events, components filter and resume with `since`.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { get, post, randomJobId, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, Watch } from './support/app.js';
import { stopAllRedis } from './support/redis.js';

after(() => stopAllRedis());

const SINGLETONS = ['resourcemanager', 'dispatcher', 'rest'];
const LEADER_KEYS = ['acquiredAt', 'address', 'contenderId', 'fencingToken', 'leaseRemainingMs', 'sessionId'];

const leadersPath = (cluster: string) => `/v1/clusters/${cluster}/leaders`;
const leaderPath = (cluster: string, component: string) => `${leadersPath(cluster)}/${component}`;
const watchUrl = (wsUrl: string, cluster: string, query = '') => `${wsUrl}/v1/clusters/${cluster}/watch${query}`;

function campaign(base: string, cluster: string, component: string, body: Record<string, unknown>) {
  return post(base, `${leaderPath(cluster, component)}/campaign`, body);
}

/** Campaigns and insists on a grant; answers the leader. */
async function lead(base: string, cluster: string, component: string, body: Record<string, unknown>) {
  const r = await campaign(base, cluster, component, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.granted, true, JSON.stringify(r.body));
  return r.body.leader;
}

async function resign(base: string, cluster: string, component: string, leader: { contenderId: string; sessionId: string }) {
  const r = await post(base, `${leaderPath(cluster, component)}/resign`, { contenderId: leader.contenderId, sessionId: leader.sessionId });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function confirm(base: string, cluster: string, component: string, leader: { contenderId: string; sessionId: string }, address: string) {
  const r = await post(base, `${leaderPath(cluster, component)}/confirm`, { contenderId: leader.contenderId, sessionId: leader.sessionId, address });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.leader;
}

async function indexOf(base: string, cluster: string): Promise<number> {
  const r = await get(base, leadersPath(cluster));
  assert.equal(r.status, 200);
  return r.body.index;
}

/** Starts a request and tells whether it has answered yet, and how long it took. */
function timed<T>(p: Promise<T>) {
  const started = performance.now();
  const state = { settled: false, ms: 0 };
  const result = p.then((v) => {
    state.settled = true;
    state.ms = performance.now() - started;
    return v;
  });
  return { state, result };
}

function assertLeaderShape(leader: any) {
  assert.deepEqual(Object.keys(leader).sort(), LEADER_KEYS);
  assert.equal(typeof leader.contenderId, 'string');
  assert.match(leader.sessionId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.ok(Number.isSafeInteger(leader.fencingToken) && leader.fencingToken > 0, `fencingToken ${leader.fencingToken}`);
  assert.match(leader.acquiredAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.ok(Number.isInteger(leader.leaseRemainingMs) && leader.leaseRemainingMs >= 0);
}

describe('GET a leader and all leaders', () => {
  test('a component nobody leads answers {component, leader: null, index}', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const r = await get(app.url, leaderPath(cluster, 'dispatcher'));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['component', 'index', 'leader']);
    assert.equal(r.body.component, 'dispatcher');
    assert.equal(r.body.leader, null);
    assert.ok(Number.isSafeInteger(r.body.index) && r.body.index >= 0);
  });

  test('a granted leader is answered with contender, session, fencing token, address, acquiredAt and lease left', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const granted = await lead(app.url, cluster, 'resourcemanager', { contenderId: 'rm-1', ttlMs: 10_000, address: 'akka://rm-1' });
    const r = await get(app.url, leaderPath(cluster, 'resourcemanager'));
    assert.equal(r.status, 200);
    assert.equal(r.body.component, 'resourcemanager');
    assertLeaderShape(r.body.leader);
    assert.equal(r.body.leader.contenderId, 'rm-1');
    assert.equal(r.body.leader.sessionId, granted.sessionId);
    assert.equal(r.body.leader.fencingToken, granted.fencingToken);
    assert.equal(r.body.leader.address, 'akka://rm-1');
    assert.equal(r.body.leader.acquiredAt, granted.acquiredAt);
    assert.ok(r.body.leader.leaseRemainingMs > 5_000 && r.body.leader.leaseRemainingMs <= 10_000, `${r.body.leader.leaseRemainingMs}`);
  });

  test('GET all lists every singleton, and a job manager only while it has a leader', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const jobId = randomJobId();
    // Job managers are listed by job id, whichever was granted first.
    const [before, afterAll] = ['0'.repeat(32), 'f'.repeat(32)];

    const empty = await get(app.url, leadersPath(cluster));
    assert.equal(empty.status, 200);
    assert.deepEqual(Object.keys(empty.body).sort(), ['index', 'leaders']);
    assert.deepEqual(empty.body.leaders, SINGLETONS.map((component) => ({ component, leader: null })));

    const jm = await lead(app.url, cluster, `jobmanager/${jobId}`, { contenderId: 'jm-1' });
    const dispatcher = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    const others = [afterAll, before].map((id) => lead(app.url, cluster, `jobmanager/${id}`, { contenderId: `jm-${id}` }));
    const [last, first] = await Promise.all(others);
    const full = await get(app.url, leadersPath(cluster));
    assert.deepEqual(
      full.body.leaders.map((l: any) => l.component),
      [...SINGLETONS, `jobmanager/${before}`, `jobmanager/${jobId}`, `jobmanager/${afterAll}`],
    );
    for (const l of full.body.leaders) assert.deepEqual(Object.keys(l).sort(), ['component', 'leader']);
    const byComponent = new Map(full.body.leaders.map((l: any) => [l.component, l.leader]));
    assert.equal((byComponent.get('dispatcher') as any).sessionId, dispatcher.sessionId);
    assert.equal((byComponent.get(`jobmanager/${jobId}`) as any).sessionId, jm.sessionId);
    assert.equal(byComponent.get('resourcemanager'), null);
    assert.equal(byComponent.get('rest'), null);

    await resign(app.url, cluster, `jobmanager/${jobId}`, jm);
    const fewer = await get(app.url, leadersPath(cluster));
    assert.deepEqual(
      fewer.body.leaders.map((l: any) => l.component),
      [...SINGLETONS, `jobmanager/${before}`, `jobmanager/${afterAll}`],
    );
    await resign(app.url, cluster, `jobmanager/${before}`, first);
    await resign(app.url, cluster, `jobmanager/${afterAll}`, last);
    await resign(app.url, cluster, 'dispatcher', dispatcher);
    const emptied = await get(app.url, leadersPath(cluster));
    assert.deepEqual(emptied.body.leaders, SINGLETONS.map((component) => ({ component, leader: null })));
  });

  test('job ids are answered in lower case, however they were written', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const jobId = randomJobId();
    const upper = jobId.toUpperCase();
    const granted = await lead(app.url, cluster, `jobmanager/${upper}`, { contenderId: 'jm-1' });

    const one = await get(app.url, leaderPath(cluster, `jobmanager/${upper}`));
    assert.equal(one.status, 200);
    assert.equal(one.body.component, `jobmanager/${jobId}`);
    assert.equal(one.body.leader.sessionId, granted.sessionId);

    const lower = await get(app.url, leaderPath(cluster, `jobmanager/${jobId}`));
    assert.equal(lower.body.leader.sessionId, granted.sessionId);

    const all = await get(app.url, leadersPath(cluster));
    assert.deepEqual(all.body.leaders.map((l: any) => l.component), [...SINGLETONS, `jobmanager/${jobId}`]);
  });

  test('an unknown component or a malformed job id is a 400', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    for (const component of ['taskmanager', 'jobmanager/123', `jobmanager/${randomJobId()}0`, `jobmanager/${'g'.repeat(32)}`]) {
      const r = await get(app.url, leaderPath(cluster, component));
      assert.equal(r.status, 400, component);
      assert.equal(r.body.statusCode, 400);
    }
  });
});

describe('index and ETag', () => {
  test('the ETag carries the index, and If-None-Match with it (weak, or in a list) answers 304', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });

    for (const path of [leadersPath(cluster), leaderPath(cluster, 'rest')]) {
      const r = await get(app.url, path);
      assert.equal(r.headers.get('etag'), `"${r.body.index}"`, path);

      const same = await fetch(app.url + path, { headers: { 'if-none-match': `"${r.body.index}"` } });
      assert.equal(same.status, 304, path);
      assert.equal(await same.text(), '');
      assert.equal(same.headers.get('etag'), `"${r.body.index}"`);

      for (const header of [`W/"${r.body.index}"`, `"1", "${r.body.index}"`, `"1",W/"${r.body.index}"`]) {
        const listed = await fetch(app.url + path, { headers: { 'if-none-match': header } });
        assert.equal(listed.status, 304, `${path} If-None-Match: ${header}`);
      }

      const stale = await fetch(app.url + path, { headers: { 'if-none-match': `"${r.body.index - 1}"` } });
      assert.equal(stale.status, 200, path);
      assert.equal((await stale.json()).index, r.body.index);
    }
  });

  test('after a change the old ETag no longer answers 304', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const before = await get(app.url, leadersPath(cluster));
    await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    const r = await fetch(app.url + leadersPath(cluster), { headers: { 'if-none-match': before.headers.get('etag')! } });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.ok(body.index > before.body.index);
    assert.equal(r.headers.get('etag'), `"${body.index}"`);
  });

  test('the index grows with every change: granted, confirmed, revoked, granted again', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const indices = [await indexOf(app.url, cluster)];

    const first = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    indices.push(await indexOf(app.url, cluster));
    await confirm(app.url, cluster, 'dispatcher', first, 'http://d-1');
    indices.push(await indexOf(app.url, cluster));
    await resign(app.url, cluster, 'dispatcher', first);
    indices.push(await indexOf(app.url, cluster));
    await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-2', address: 'http://d-2' });
    indices.push(await indexOf(app.url, cluster));
    await lead(app.url, cluster, `jobmanager/${randomJobId()}`, { contenderId: 'jm-1' });
    indices.push(await indexOf(app.url, cluster));

    for (let i = 1; i < indices.length; i++) assert.ok(indices[i] > indices[i - 1], `index did not grow: ${indices.join(', ')}`);
    const one = await get(app.url, leaderPath(cluster, 'dispatcher'));
    assert.equal(one.body.index, indices.at(-1));
  });
});

describe('long-poll', () => {
  for (const [what, pathOf] of [
    ['GET all', (c: string) => leadersPath(c)],
    ['GET one', (c: string) => leaderPath(c, 'dispatcher')],
  ] as const) {
    test(`${what}: a long-poll is held until a campaign, then answers the new leader with a higher index`, async (t) => {
      const app = await startApp(t, await sharedRedisUrl());
      const cluster = uniqueCluster();
      const n = await indexOf(app.url, cluster);

      const poll = timed(get(app.url, `${pathOf(cluster)}?index=${n}&wait=5s`));
      await sleep(300);
      assert.equal(poll.state.settled, false, 'answered before anything changed');

      const granted = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1', address: 'http://d-1' });
      const r = await poll.result;
      assert.equal(r.status, 200);
      assert.ok(poll.state.ms < 4_000, `woke only after ${poll.state.ms} ms`);
      assert.ok(r.body.index > n, `index ${r.body.index} not above ${n}`);
      assert.equal(r.headers.get('etag'), `"${r.body.index}"`);
      const leader = what === 'GET all' ? r.body.leaders.find((l: any) => l.component === 'dispatcher').leader : r.body.leader;
      assert.equal(leader.sessionId, granted.sessionId);
      assert.equal(leader.address, 'http://d-1');
    });
  }

  test('a long-poll returns at once when the index is already past N', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    const n = await indexOf(app.url, cluster);

    for (const path of [leadersPath(cluster), leaderPath(cluster, 'rest')]) {
      for (const asked of [0, n - 1]) {
        const poll = timed(get(app.url, `${path}?index=${asked}&wait=5s`));
        const r = await poll.result;
        assert.equal(r.status, 200);
        assert.equal(r.body.index, n);
        assert.ok(poll.state.ms < 1_000, `${path}?index=${asked} took ${poll.state.ms} ms`);
      }
    }
  });

  test('a long-poll returns after the wait with the same index when nothing changes', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    const n = await indexOf(app.url, cluster);

    for (const path of [leadersPath(cluster), leaderPath(cluster, 'rest')]) {
      const poll = timed(get(app.url, `${path}?index=${n}&wait=300ms`));
      const r = await poll.result;
      assert.equal(r.status, 200);
      assert.equal(r.body.index, n);
      assert.equal(r.headers.get('etag'), `"${n}"`);
      assert.ok(poll.state.ms >= 250, `${path} answered after only ${poll.state.ms} ms`);
      assert.ok(poll.state.ms < 3_000, `${path} answered after ${poll.state.ms} ms`);
    }
  });

  test('a long-poll on one component is not woken by a change of another component', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const n = await indexOf(app.url, cluster);

    const poll = timed(get(app.url, `${leaderPath(cluster, 'dispatcher')}?index=${n}&wait=1500ms`));
    await sleep(100);
    await lead(app.url, cluster, 'resourcemanager', { contenderId: 'rm-1' });
    await lead(app.url, cluster, `jobmanager/${randomJobId()}`, { contenderId: 'jm-1' });
    const r = await poll.result;
    assert.equal(r.status, 200);
    assert.ok(poll.state.ms >= 1_400, `woken after ${poll.state.ms} ms by a change of another component`);
    assert.equal(r.body.component, 'dispatcher');
    assert.equal(r.body.leader, null);

    // whereas a change of the component itself does wake it
    const again = timed(get(app.url, `${leaderPath(cluster, 'dispatcher')}?index=${n}&wait=5s`));
    await sleep(100);
    const granted = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    const woken = await again.result;
    assert.ok(again.state.ms < 4_000, `not woken by its own component (${again.state.ms} ms)`);
    assert.equal(woken.body.leader.sessionId, granted.sessionId);
  });

  test('a malformed index or wait is a 400', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const queries = [
      'index=abc',
      'index=-1',
      'index=1.5',
      'index=1e3',
      'index=',
      'index=5&wait=abc',
      'index=5&wait=5',
      'index=5&wait=5h',
      'index=5&wait=1.5s',
      'index=5&wait=-1s',
      'index=5&wait=6m',
      'index=5&wait=301s',
    ];
    for (const path of [leadersPath(cluster), leaderPath(cluster, 'dispatcher'), leaderPath(cluster, `jobmanager/${randomJobId()}`)]) {
      for (const q of queries) {
        const r = await get(app.url, `${path}?${q}`);
        assert.equal(r.status, 400, `${path}?${q} answered ${r.status}`);
        assert.deepEqual(Object.keys(r.body).sort(), ['error', 'message', 'statusCode']);
        assert.equal(r.body.statusCode, 400);
      }
    }
  });

  test('a wait of more than 5 minutes is a 400 even without an index', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    for (const path of [leadersPath(cluster), leaderPath(cluster, 'dispatcher')]) {
      const r = await get(app.url, `${path}?wait=6m`);
      assert.equal(r.status, 400, `${path}?wait=6m answered ${r.status}`);
    }
  });

  test('a wait of exactly 5 minutes is accepted', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    // index 0 is long passed, so the request answers at once
    const r = await get(app.url, `${leadersPath(cluster)}?index=0&wait=5m`);
    assert.equal(r.status, 200);
  });
});

describe('websocket watch', () => {
  test('a watcher first gets a snapshot of every component, at the current index', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const jobId = randomJobId();
    const jm = await lead(app.url, cluster, `jobmanager/${jobId}`, { contenderId: 'jm-1', address: 'http://jm-1' });
    const index = await indexOf(app.url, cluster);

    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster));
    const [snapshot] = await w.count(1);
    assert.equal(snapshot.type, 'snapshot');
    assert.equal(snapshot.index, index);
    assert.deepEqual(snapshot.leaders.map((l: any) => l.component), [...SINGLETONS, `jobmanager/${jobId}`]);
    const leader = snapshot.leaders.find((l: any) => l.component === `jobmanager/${jobId}`).leader;
    assertLeaderShape(leader);
    assert.equal(leader.sessionId, jm.sessionId);
    assert.equal(leader.address, 'http://jm-1');
    for (const c of SINGLETONS) assert.equal(snapshot.leaders.find((l: any) => l.component === c).leader, null);
  });

  test('components= narrows the snapshot and the changes to the named components', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const jobId = randomJobId();

    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster, `?components=dispatcher,jobmanager/${jobId.toUpperCase()}`));
    const [snapshot] = await w.count(1);
    assert.equal(snapshot.type, 'snapshot');
    assert.deepEqual(snapshot.leaders, [
      { component: 'dispatcher', leader: null },
      { component: `jobmanager/${jobId}`, leader: null },
    ]);

    await lead(app.url, cluster, 'resourcemanager', { contenderId: 'rm-1' });
    await lead(app.url, cluster, `jobmanager/${randomJobId()}`, { contenderId: 'other-jm' });
    const d = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    const jm = await lead(app.url, cluster, `jobmanager/${jobId}`, { contenderId: 'jm-1' });

    const messages = await w.count(3);
    await sleep(200);
    assert.equal(w.messages.length, 3, JSON.stringify(w.messages));
    assert.deepEqual(
      messages.slice(1).map((m) => [m.type, m.event, m.component, m.leader.sessionId]),
      [
        ['change', 'granted', 'dispatcher', d.sessionId],
        ['change', 'granted', `jobmanager/${jobId}`, jm.sessionId],
      ],
    );
  });

  test('a campaign with an address is pushed as exactly one granted event with the address set', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster));
    await w.count(1);

    const granted = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1', address: 'http://d-1:8081' });
    const index = await indexOf(app.url, cluster);
    // a later change marks the end of whatever the campaign produced
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    await w.find((m) => m.type === 'change' && m.component === 'rest');

    const dispatcherChanges = w.messages.filter((m) => m.type === 'change' && m.component === 'dispatcher');
    assert.equal(dispatcherChanges.length, 1, JSON.stringify(dispatcherChanges));
    const [g] = dispatcherChanges;
    assert.deepEqual(Object.keys(g).sort(), ['component', 'event', 'index', 'leader', 'type']);
    assert.equal(g.event, 'granted');
    assert.equal(g.index, index);
    assertLeaderShape(g.leader);
    assert.equal(g.leader.address, 'http://d-1:8081');
    assert.equal(g.leader.sessionId, granted.sessionId);
    assert.equal(g.leader.fencingToken, granted.fencingToken);
    assert.equal(g.leader.contenderId, 'd-1');
  });

  test('confirm is pushed as confirmed with the address, and resign as revoked with leader null', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster));
    const [snapshot] = await w.count(1);

    const granted = await lead(app.url, cluster, 'resourcemanager', { contenderId: 'rm-1' });
    await confirm(app.url, cluster, 'resourcemanager', granted, 'akka://rm-1');
    assert.deepEqual(await resign(app.url, cluster, 'resourcemanager', granted), { released: true });

    const [, g, c, r] = await w.count(4);
    assert.deepEqual([g.event, c.event, r.event], ['granted', 'confirmed', 'revoked']);
    for (const m of [g, c, r]) {
      assert.equal(m.type, 'change');
      assert.equal(m.component, 'resourcemanager');
    }
    assert.equal(g.leader.address, null);
    assert.equal(g.leader.sessionId, granted.sessionId);
    assert.equal(c.leader.address, 'akka://rm-1');
    assert.equal(c.leader.sessionId, granted.sessionId);
    assert.equal(c.leader.fencingToken, granted.fencingToken);
    assert.equal(r.leader, null);
    assert.ok(snapshot.index < g.index && g.index < c.index && c.index < r.index, JSON.stringify(w.messages));
    assert.equal(r.index, await indexOf(app.url, cluster));
  });

  test('a lease that is not renewed is pushed as expired, leader null, within a couple of seconds', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster));
    await w.count(1);

    const started = performance.now();
    const granted = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1', ttlMs: 1000 });
    const expired = await w.find((m) => m.type === 'change' && m.event === 'expired', 3_000);
    const ms = performance.now() - started;
    assert.ok(ms >= 900, `expired after only ${ms} ms of a 1000 ms lease`);
    assert.ok(ms < 2_500, `expired reached the watcher after ${ms} ms`);
    assert.equal(expired.component, 'dispatcher');
    assert.equal(expired.leader, null);

    const grantedEvent = w.messages.find((m) => m.event === 'granted');
    assert.equal(grantedEvent.leader.sessionId, granted.sessionId);
    assert.ok(expired.index > grantedEvent.index);

    const r = await get(app.url, leaderPath(cluster, 'dispatcher'));
    assert.equal(r.body.leader, null);
    assert.equal(r.body.index, expired.index);

    await sleep(500);
    assert.equal(w.messages.filter((m) => m.event === 'expired').length, 1, JSON.stringify(w.messages));
  });

  for (const how of ['renew', 'campaign'] as const) {
    test(`a lease shortened by a ${how} of its holder is pushed as expired when the shorter lease ends`, async (t) => {
      const app = await startApp(t, await sharedRedisUrl());
      const cluster = uniqueCluster();
      const w = await Watch.open(t, watchUrl(app.wsUrl, cluster));
      await w.count(1);

      const granted = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1', ttlMs: 30_000 });
      const shortened =
        how === 'renew'
          ? await post(app.url, `${leaderPath(cluster, 'dispatcher')}/renew`, { contenderId: 'd-1', sessionId: granted.sessionId, ttlMs: 1000 })
          : await campaign(app.url, cluster, 'dispatcher', { contenderId: 'd-1', ttlMs: 1000 });
      assert.equal(shortened.status, 200, JSON.stringify(shortened.body));
      assert.equal(shortened.body.leader.sessionId, granted.sessionId);
      assert.ok(shortened.body.leader.leaseRemainingMs <= 1000);

      // the lease now ends in Redis after 1 s: watchers must hear of it, and reads must stop naming the leader
      const expired = await w.find((m) => m.type === 'change' && m.event === 'expired', 3_000);
      assert.equal(expired.component, 'dispatcher');
      assert.equal(expired.leader, null);
      assert.equal((await get(app.url, leaderPath(cluster, 'dispatcher'))).body.leader, null);
    });
  }

  test('since= replays exactly the changes missed, in index order, and no snapshot', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const first = await Watch.open(t, watchUrl(app.wsUrl, cluster));
    const [snapshot] = await first.count(1);
    const noted = snapshot.index;
    first.close();
    await waitFor(() => first.closeCode !== null, 2_000, 'first watcher closed');

    const granted = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    await confirm(app.url, cluster, 'dispatcher', granted, 'http://d-1');
    await resign(app.url, cluster, 'dispatcher', granted);

    const resumed = await Watch.open(t, watchUrl(app.wsUrl, cluster, `?since=${noted}`));
    const messages = await resumed.count(3);
    await sleep(300);
    assert.equal(resumed.messages.length, 3, JSON.stringify(resumed.messages));
    assert.ok(messages.every((m) => m.type === 'change'), JSON.stringify(messages));
    assert.deepEqual(messages.map((m) => m.event), ['granted', 'confirmed', 'revoked']);
    assert.ok(noted < messages[0].index && messages[0].index < messages[1].index && messages[1].index < messages[2].index);
    assert.equal(messages[0].leader.sessionId, granted.sessionId);
    assert.equal(messages[1].leader.address, 'http://d-1');
    assert.equal(messages[2].leader, null);

    // and it goes on with live changes after the replay
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    const [, , , live] = await resumed.count(4);
    assert.equal(live.event, 'granted');
    assert.equal(live.component, 'rest');
    assert.ok(live.index > messages[2].index);
  });

  test('since= with components= replays only the named components\' missed changes', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    const noted = await indexOf(app.url, cluster);

    await lead(app.url, cluster, 'resourcemanager', { contenderId: 'rm-1' });
    const d = await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    await resign(app.url, cluster, 'dispatcher', d);

    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster, `?components=dispatcher&since=${noted}`));
    const messages = await w.count(2);
    await sleep(300);
    assert.equal(w.messages.length, 2, JSON.stringify(w.messages));
    assert.deepEqual(messages.map((m) => [m.type, m.event, m.component]), [
      ['change', 'granted', 'dispatcher'],
      ['change', 'revoked', 'dispatcher'],
    ]);
  });

  test('since= the current index sends nothing until the next change', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    await lead(app.url, cluster, 'dispatcher', { contenderId: 'd-1' });
    const index = await indexOf(app.url, cluster);

    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster, `?since=${index}`));
    await sleep(300);
    assert.deepEqual(w.messages, []);
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    const [m] = await w.count(1);
    assert.equal(m.type, 'change');
    assert.equal(m.component, 'rest');
  });

  test('since= older than the capped change log gets a snapshot instead', async (t) => {
    const app = await startApp(t, await sharedRedisUrl(), { CHANGE_LOG_SIZE: '10' });
    const cluster = uniqueCluster();
    const noted = await indexOf(app.url, cluster);

    // 12 changes: the log keeps only the last 10
    let held: any = null;
    for (let i = 0; i < 6; i++) {
      if (held) await resign(app.url, cluster, 'dispatcher', held);
      held = await lead(app.url, cluster, 'dispatcher', { contenderId: `d-${i}` });
    }
    await lead(app.url, cluster, 'rest', { contenderId: 'rest-1' });
    const index = await indexOf(app.url, cluster);

    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster, `?since=${noted}`));
    const [snapshot] = await w.count(1);
    await sleep(300);
    assert.equal(w.messages.length, 1, JSON.stringify(w.messages));
    assert.equal(snapshot.type, 'snapshot');
    assert.equal(snapshot.index, index);
    const byComponent = new Map(snapshot.leaders.map((l: any) => [l.component, l.leader]));
    assert.equal((byComponent.get('dispatcher') as any).sessionId, held.sessionId);
    assert.equal((byComponent.get('rest') as any).contenderId, 'rest-1');
  });

  test('since= still replays when exactly as many changes were missed as the log keeps', async (t) => {
    const app = await startApp(t, await sharedRedisUrl(), { CHANGE_LOG_SIZE: '10' });
    const cluster = uniqueCluster();
    const noted = await indexOf(app.url, cluster);

    // 10 changes: granted, revoked, five times
    for (let i = 0; i < 5; i++) {
      const held = await lead(app.url, cluster, 'dispatcher', { contenderId: `d-${i}` });
      await resign(app.url, cluster, 'dispatcher', held);
    }

    const w = await Watch.open(t, watchUrl(app.wsUrl, cluster, `?since=${noted}`));
    const messages = await w.count(10);
    await sleep(300);
    assert.equal(w.messages.length, 10, JSON.stringify(w.messages));
    assert.ok(messages.every((m) => m.type === 'change'));
    assert.deepEqual(messages.map((m) => m.event), Array.from({ length: 5 }, () => ['granted', 'revoked']).flat());
    for (let i = 1; i < messages.length; i++) assert.ok(messages[i].index > messages[i - 1].index);
  });

  test('an invalid query refuses the upgrade with 400', async (t) => {
    const app = await startApp(t, await sharedRedisUrl());
    const cluster = uniqueCluster();
    for (const q of ['components=foo', 'components=dispatcher,foo', 'components=jobmanager/123', 'since=abc', 'since=-1', 'since=1.5', 'other=1']) {
      await assert.rejects(Watch.open(t, watchUrl(app.wsUrl, cluster, `?${q}`)), /upgrade refused: 400/, q);
    }
  });
});

test('a watcher that stops answering pings is dropped; one that answers stays', async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { WS_HEARTBEAT_MS: '150' });
  const url = watchUrl(app.wsUrl, uniqueCluster());
  const { default: WebSocket } = await import('ws');
  const silent = new WebSocket(url, { autoPong: false });
  t.after(() => silent.terminate());
  const dropped = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
  const alive = await Watch.open(t, url);
  const code = await dropped;
  assert.equal(code, 1006, 'terminated without a close frame');
  await sleep(400);
  assert.equal(alive.closeCode, null);
});
