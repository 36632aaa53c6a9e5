/**
 * A server replica cut off from Redis while more changes than its change log holds went
 * through another replica (issue 15, "watchers always converge"; the chaos harness's
 * `logcut` lane): once the link heals, its watchers must hear of what they missed as a
 * snapshot, at an index above every one they had, never as the log's tail with an untold gap
 * before it. Real server processes, a real Redis, the cut made by a TCP proxy; on a Redis
 * Cluster (whose nodes name their own addresses to clients, past any proxy), by turning the
 * replica's Redis user off on every node and ending its connections.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { LeaseholdClient } from '../src/client/index.js';
import { ownRedis, post, ServerProcess, uniqueCluster, waitFor, Watch } from './support/app.js';
import { TcpProxy } from './support/proxy.js';
import { stopAllRedis } from './support/redis.js';
import { onEveryNode } from './support/topology.js';

after(() => stopAllRedis());

const LOG_SIZE = 10;
/** The cut replica's own Redis user: `CLIENT KILL USER` ends its connections and no other's,
 * so that what Redis publishes while the link is cut never reaches it. */
const CUT = { name: 'cutoff', password: 'cutoff-link' };

async function server(t: TestContext, redisUrl: string, more: Record<string, string> = {}): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'leasehold-logcut-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { ...more, REDIS_URL: redisUrl, DATA_DIR: dataDir, CHANGE_LOG_SIZE: String(LOG_SIZE), REDIS_HEALTH_INTERVAL_MS: '200', SHED_EVENT_LOOP_DELAY_MS: '0', LOG_LEVEL: 'error' };
  return ServerProcess.start(t, env);
}

/** A websocket watcher's messages checked as the chaos harness checks them: no change may
 * come after an index that skips one `truth` holds (a gap it was not told of). */
function untoldGaps(messages: any[], truth: number[]): string[] {
  const gaps: string[] = [];
  let told = -1;
  for (const m of messages) {
    if (m.type === 'change') {
      const missed = truth.filter((i) => i > told && i < m.index);
      if (told >= 0 && missed.length) gaps.push(`after ${told} came ${m.index}, missing ${missed.join(', ')}`);
    }
    told = Math.max(told, m.index);
  }
  return gaps;
}

function leadersOf(snapshot: { leaders: Array<{ component: string; leader: { contenderId: string } | null }> }): Record<string, string | null> {
  return Object.fromEntries(snapshot.leaders.map((l) => [l.component, l.leader?.contenderId ?? null]));
}

test('a replica cut off past its change log tells its watchers, long-polls and the SDK by a snapshot at a new index', { timeout: 120_000 }, async (t) => {
  const redis = await ownRedis();
  const acl = (on: 'on' | 'off') => onEveryNode(redis, (c) => c.call('ACL', 'SETUSER', CUT.name, on));
  const killCut = () => onEveryNode(redis, (c) => c.call('CLIENT', 'KILL', 'USER', CUT.name));
  await onEveryNode(redis, (c) => c.call('ACL', 'SETUSER', CUT.name, 'on', `>${CUT.password}`, '~*', '&*', '+@all'));
  // s2 reaches a Redis Cluster as its user (REDIS_URL's credentials), through every node.
  const link = redis.cluster ? null : await TcpProxy.start(redis.nodes[0].port);
  t.after(() => link?.close());
  const cutUrl = `redis://${CUT.name}:${CUT.password}@127.0.0.1${link ? `:${link.port}` : ''}`;
  const cutEnv: Record<string, string> = redis.cluster ? { REDIS_CLUSTER_NODES: redis.nodes.map((n) => `127.0.0.1:${n.port}`).join(',') } : {};
  const [s1, s2] = await Promise.all([server(t, redis.url), server(t, cutUrl, cutEnv)]);
  const cut = async () => {
    if (link) link.blackhole();
    else await acl('off');
    await killCut();
  };
  const heal = async () => {
    if (link) link.restore();
    else await acl('on');
  };
  const id = uniqueCluster('logcut');
  const leaders = `/v1/clusters/${id}/leaders`;
  const watchUrl = (s: ServerProcess) => `${s.url.replace('http', 'ws')}/v1/clusters/${id}/watch`;

  const campaign = async (component: string, contenderId: string) => {
    const r = await post(s1.url, `${leaders}/${component}/campaign`, { contenderId, ttlMs: 60_000 });
    assert.equal(r.body.granted, true, JSON.stringify(r.body));
    return r.body.leader.sessionId as string;
  };
  const resign = async (component: string, contenderId: string, sessionId: string) => {
    const r = await post(s1.url, `${leaders}/${component}/resign`, { contenderId, sessionId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };

  await campaign('dispatcher', 'd-1');
  const truthWatch = await Watch.open(t, watchUrl(s1)); // every change, in full
  const cutWatch = await Watch.open(t, watchUrl(s2));
  const [first] = await cutWatch.count(1, 10_000);
  assert.equal(first.type, 'snapshot');
  assert.equal(leadersOf(first).dispatcher, 'd-1');
  const sdk = new LeaseholdClient({ url: s2.url }).cluster(id).retrieval({ transport: 'websocket', minBackoffMs: 50, maxBackoffMs: 400 }).start();
  t.after(() => sdk.close());
  const sdkSnapshots: Array<{ index: number; leaders: Record<string, string | null> }> = [];
  sdk.on('snapshot', (ls, index) => sdkSnapshots.push({ index, leaders: Object.fromEntries(ls.map((l) => [l.component, l.leader?.contenderId ?? null])) }));
  await waitFor(() => sdkSnapshots.length > 0, 10_000, 'the SDK\'s first snapshot');

  // Two cuts: in the first the log's tail alone gives the right leaders (once, no snapshot
  // came at all); in the second a leader changes early and the log loses it (once, the
  // snapshot came after the tail, as changes with a gap before them).
  let rest: { contenderId: string; sessionId: string } | null = null;
  let dispatcher = 'd-1';
  for (const round of [1, 2]) {
    const had = Math.max(...cutWatch.messages.map((m) => m.index));
    const sdkHad = sdk.index;
    const cutBefore = cutWatch.messages.length;
    // A long-poll on the cut replica, waiting past the index it has answered.
    const polled = fetch(`${s2.url}${leaders}?index=${had}&wait=60s`).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

    await cut();
    await waitFor(async () => (await fetch(`${s2.url}/readyz`)).status === 503, 15_000, 'the cut replica to notice');
    if (round === 2) {
      await resign('dispatcher', 'd-1', (await (await fetch(`${s1.url}${leaders}/dispatcher`)).json()).leader.sessionId);
      dispatcher = 'd-2';
      await campaign('dispatcher', dispatcher);
    }
    // More changes than the log holds, through the other replica; the last lease kept.
    for (let k = 0; k < LOG_SIZE + 2; k++) {
      if (rest) await resign('rest', rest.contenderId, rest.sessionId);
      const contenderId = `r-${round}-${k}`;
      rest = { contenderId, sessionId: await campaign('rest', contenderId) };
    }
    const want: Record<string, string | null> = { dispatcher, rest: rest!.contenderId, resourcemanager: null };
    const top = (await (await fetch(`${s1.url}${leaders}`)).json()).index as number;
    await heal();

    const snap = await cutWatch.find((m) => m.type === 'snapshot' && m.index > had, 20_000);
    assert.ok(snap.index >= top, `the snapshot's index ${snap.index} is the state's (${top}) or above`);
    assert.deepEqual(leadersOf(snap), want, 'the snapshot has the right leaders');
    await waitFor(() => truthWatch.messages.some((m) => m.index >= top), 10_000, 'the full watcher to hear every change');
    const truth = truthWatch.messages.filter((m) => m.type === 'change').map((m) => m.index);
    assert.deepEqual(untoldGaps(cutWatch.messages.slice(cutBefore - 1), truth), [], 'no change after a gap the watcher was not told of');

    const poll = await polled;
    assert.equal(poll.status, 200, `round ${round}: ${JSON.stringify(poll.body)}`);
    assert.ok(poll.body.index > had, `the long-poll answers a new index (${poll.body.index} after ${had})`);
    await waitFor(
      async () => {
        const r = await (await fetch(`${s2.url}${leaders}`)).json();
        return r.leaders.find((l: any) => l.component === 'rest')?.leader?.contenderId === want.rest;
      },
      10_000,
      'the cut replica to read the right leaders',
    );

    await waitFor(() => sdkSnapshots.some((s) => s.index > sdkHad), 20_000, `the SDK's snapshot after cut ${round}`);
    const last = sdkSnapshots.at(-1)!;
    assert.ok(last.index > sdkHad);
    assert.deepEqual({ dispatcher: last.leaders.dispatcher, rest: last.leaders.rest }, { dispatcher, rest: want.rest });
  }
});
