/**
 * The fault schedule of a run, drawn from its seed, in two lanes that run side by side:
 *   process  kill -9 of the process of a component's leading contender (a replacement
 *            starts, with the same contenderIds or new ones), or SIGSTOP of it past its
 *            lease, then SIGCONT;
 *   infra    one at a time, from a shuffled deck of the topology's kinds:
 *            single    kill -9 and restart of the AOF Redis and of the Redis without
 *                      persistence, kill -9 and restart of a server replica (its websocket
 *                      clients connected), CLIENT PAUSE, SIGSTOP/SIGCONT of redis-server, a
 *                      slow link and a blackholed link between a server and Redis;
 *            sentinel  a Sentinel failover with a lagging replica (its link cut, then the
 *                      primary killed), and a failover under load (the primary killed);
 *                      the killed Redis comes back as the new primary's replica;
 *            restore   a snapshot taken, then Redis killed and restarted from it seconds
 *                      later (the changes in between lost);
 *            logcut    a server's link to Redis cut (its connections killed, and what
 *                      Redis sends meanwhile lost) while more changes than the change log
 *                      holds go through the other servers, then healed;
 *            cluster   on the Redis Cluster, the primary of a loaded shard killed (-9) or
 *                      paused past cluster-node-timeout until its replica is promoted,
 *                      then restarted or resumed to rejoin as that replica's replica; the
 *                      slot of a loaded cluster moved to another primary (SETSLOT and
 *                      MIGRATE, as `redis-cli --cluster reshard` does) while its contenders
 *                      write; and kill -9 and restart of a server.
 * Every fault is healed before its lane draws the next; each is recorded with its times.
 * Which process a fault hits is decided when it fires (the leader of the moment).
 */
import { CHURN_COMPONENT, CUT_USER, fastSync, hashTag, MAX_TTL_MS, READY_TIMEOUT_MS, SHORT_CHANGE_LOG, ttlOf, type Topology, type Worker } from './cluster.js';
import { sharedNow, type SetupName, type TopologyName } from './history.js';
import { restoreSnapshot, snapshot } from '../test/support/topology.js';
import { RedisClusterProcess } from '../test/support/redisCluster.js';
import type { RedisProcess } from '../test/support/redis.js';

/** A deterministic generator of numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const INFRA = {
  single: ['kill-redis-aof', 'kill-redis-volatile', 'kill-server', 'client-pause', 'stop-redis', 'slow-link', 'blackhole-link'],
  sentinel: ['lagging-failover', 'failover'],
  restore: ['restore-snapshot'],
  logcut: ['cut-past-log'],
  cluster: ['kill-primary', 'pause-primary', 'move-slot', 'kill-server'],
} as const satisfies Record<TopologyName, readonly string[]>;
type InfraKind = (typeof INFRA)[TopologyName][number];

interface Lane {
  topo: Topology;
  random: () => number;
  log: (line: string) => void;
  /** Faults injected so far (all lanes). */
  count: { n: number };
  /** The logcut topology's churn: leases granted so far, and the one it keeps. */
  churns: number;
  churned: { contenderId: string; sessionId: string } | null;
}

/** Runs both lanes until `durationMs` has passed and their last faults are healed;
 * answers how many faults were injected. */
export async function runFaults(topo: Topology, seed: number, durationMs: number, log: (line: string) => void): Promise<number> {
  const end = sharedNow() + durationMs;
  const count = { n: 0 };
  await Promise.all([
    processLane({ topo, random: rng(seed), log, count, churns: 0, churned: null }, end),
    infraLane({ topo, random: rng(seed ^ 0x5eed), log, count, churns: 0, churned: null }, end),
  ]);
  topo.healAll();
  return count.n;
}

/** `x` in [0, 1) scaled to [min, max]. */
const scale = (x: number, min: number, max: number) => Math.round(min + x * (max - min));

async function processLane(lane: Lane, end: number): Promise<void> {
  const { topo, random } = lane;
  const targets = [...topo.setups.values()].flatMap((s) => s.info.components.map((component) => ({ setup: s.name, component })));
  while (sharedNow() < end) {
    // Draws that do not depend on what happens, so a seed always draws the same numbers.
    const gap = scale(random(), 500, 2500);
    const kill = random() < 0.5;
    const first = Math.floor(random() * targets.length);
    const hold = 1.3 + random() * 1.2;
    const pause = scale(random(), 200, 1200);
    const sameId = random() < 0.5;
    await sleep(gap);
    if (sharedNow() >= end) break;
    let target: { setup: SetupName; component: string; w: Worker } | null = null;
    for (let i = 0; i < targets.length && !target; i++) {
      const t = targets[(first + i) % targets.length];
      const w = topo.leaderOf(t.setup, t.component);
      if (w) target = { ...t, w };
    }
    if (!target) continue;
    lane.count.n++;
    if (kill) await killLeader(lane, target.setup, target.component, target.w, pause, sameId);
    else await stopLeader(lane, target.setup, target.w, Math.round(ttlOf(target.component) * hold));
  }
}

async function killLeader(lane: Lane, setup: SetupName, component: string, w: Worker, pauseMs: number, sameId: boolean): Promise<void> {
  const { topo } = lane;
  const start = sharedNow();
  await topo.killWorker(w);
  const dead = sharedNow();
  await sleep(pauseMs);
  const next = topo.spawnContenders(setup, w.server, sameId ? w.contenders : {});
  const detail = `replaced by ${next.proc} (${sameId ? 'same' : 'new'} contenderId) after ${pauseMs} ms`;
  topo.push({ k: 'fault', kind: 'kill-leader', setup, target: w.proc, start, dead, end: sharedNow(), detail });
  lane.log(`kill -9 leader ${w.proc} of ${setup}/${component}; ${detail}`);
}

async function stopLeader(lane: Lane, setup: SetupName, w: Worker, holdMs: number): Promise<void> {
  const start = sharedNow();
  w.stopped = true;
  w.child.kill('SIGSTOP');
  await sleep(holdMs);
  if (w.alive) w.child.kill('SIGCONT');
  w.stopped = false;
  lane.topo.push({ k: 'fault', kind: 'stop-leader', setup, target: w.proc, start, end: sharedNow(), detail: `stopped ${holdMs} ms` });
  lane.log(`SIGSTOP leader ${w.proc} for ${holdMs} ms, then SIGCONT`);
}

/** A Redis-topology lane injects each of its few kinds at least once, however long its
 * faults take (a Sentinel failover can take seconds more on a loaded machine): a short run
 * must still be one of every kind. */
async function infraLane(lane: Lane, end: number): Promise<void> {
  const kinds = INFRA[lane.topo.name];
  const owed = new Set<InfraKind>(lane.topo.name === 'single' ? [] : kinds);
  let deck: InfraKind[] = [];
  while (sharedNow() < end || owed.size > 0) {
    if (deck.length === 0) deck = shuffle([...kinds], lane.random);
    const kind = deck.pop()!;
    const gap = scale(lane.random(), 800, 2000);
    const draws = [lane.random(), lane.random(), lane.random()];
    await sleep(gap);
    if (sharedNow() >= end && !owed.has(kind)) break;
    owed.delete(kind);
    lane.count.n++;
    await infraFault(lane, kind, draws);
  }
}

/** `draws`: three numbers in [0, 1): how long, which target, and which setup. */
async function infraFault(lane: Lane, kind: InfraKind, [a, b, c]: number[]): Promise<void> {
  const { topo } = lane;
  const setup: SetupName = c < 0.5 ? 'aof' : 'volatile';
  const start = sharedNow();
  const record = (s: SetupName, target: string, detail: string, dead?: number) => {
    topo.push({ k: 'fault', kind, setup: s, target, start, ...(dead === undefined ? {} : { dead }), end: sharedNow(), detail });
    lane.log(`${kind} ${target}: ${detail}`);
  };
  switch (kind) {
    case 'kill-redis-aof':
    case 'kill-redis-volatile': {
      const s: SetupName = kind === 'kill-redis-aof' ? 'aof' : 'volatile';
      const redis = topo.setup(s).redis;
      const downMs = scale(a, 200, 1500);
      await redis.kill();
      const dead = sharedNow();
      await sleep(downMs);
      await redis.restart();
      return record(s, `redis-${s}`, `kill -9, down ${downMs} ms, restarted on port ${redis.port}${s === 'volatile' ? ' (data lost)' : ''}`, dead);
    }
    case 'kill-server': {
      // Only replicas of the AOF setup: those of the other must live through every loss of
      // its Redis, to be asked at the end whether they reported it. (On a Redis Cluster,
      // where nothing acknowledged is lost, any.)
      const servers = topo.name === 'cluster' ? topo.servers : topo.servers.filter((s) => s.setup === 'aof');
      const node = servers[Math.floor(b * servers.length)];
      const downMs = scale(a, 200, 1500);
      await node.process.kill();
      const dead = sharedNow();
      await sleep(downMs);
      await node.process.launch(READY_TIMEOUT_MS);
      return record(node.setup, node.name, `kill -9, down ${downMs} ms, restarted on port ${node.process.port}`, dead);
    }
    case 'client-pause': {
      const ms = scale(a, 500, 2500);
      await topo.redisCommand(setup, (r) => r.call('CLIENT', 'PAUSE', String(ms), 'ALL'));
      await sleep(ms + 50);
      return record(setup, `redis-${setup}`, `CLIENT PAUSE ${ms} ALL`);
    }
    case 'stop-redis': {
      const ms = scale(a, 500, 2500);
      const redis = topo.setup(setup).redis;
      redis.pause();
      await sleep(ms);
      redis.resume();
      return record(setup, `redis-${setup}`, `SIGSTOP for ${ms} ms, then SIGCONT`);
    }
    case 'slow-link':
    case 'blackhole-link': {
      const proxied = topo.servers.filter((s) => s.proxy);
      const node = proxied[Math.floor(b * proxied.length)];
      const proxy = node.proxy!;
      if (kind === 'slow-link') {
        const delay = scale(a, 30, 400);
        const ms = scale(c, 2000, 5000);
        proxy.setDelay(delay);
        await sleep(ms);
        proxy.setDelay(0);
        return record('aof', `${node.name}<->redis-aof`, `${delay} ms each way for ${ms} ms, then healed`);
      }
      const ms = scale(a, 1000, 3500);
      proxy.blackhole();
      await sleep(ms);
      proxy.restore();
      return record('aof', `${node.name}<->redis-aof`, `blackholed for ${ms} ms, then healed`);
    }
    case 'lagging-failover':
    case 'failover':
      return failover(lane, kind === 'lagging-failover', a, b);
    case 'restore-snapshot':
      return restore(lane, a);
    case 'cut-past-log':
      return cutPastLog(lane, a);
    case 'kill-primary':
    case 'pause-primary':
      return shardFailover(lane, kind === 'pause-primary', a, c);
    case 'move-slot':
      return moveSlot(lane, b, c);
  }
}

/** Polls `cond` (its errors are a no) every 100 ms until it holds. */
async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = sharedNow() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (sharedNow() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Kills the replicated setup's primary (-9) while the contenders renew and write, and waits
 * until the Sentinels have promoted its replica; the killed Redis then comes back, empty,
 * as the new primary's replica. With `lagging`, the replica's link is cut first (it cannot
 * sync again: a wrong masterauth) `a`-scaled ms before the kill, so that it misses what the
 * primary takes meanwhile. From the cut (or the kill) until the killed Redis restarts, no
 * replica can hold a write: with one replica acknowledging, nothing sent in that window may
 * be acknowledged (recorded as a `no-replica` window).
 */
async function failover(lane: Lane, lagging: boolean, a: number, b: number): Promise<void> {
  const { topo } = lane;
  const setup = topo.setup('replicated');
  const nodes = setup.replicated!;
  const old = await nodes.primary();
  const next = nodes.nodes.find((n) => n !== old)!;
  const start = sharedNow();
  let noReplicaFrom: number | null = null;
  let cut = '';
  if (lagging) {
    await topo.redisOn(next.port, (r) => r.config('SET', 'masterauth', 'not-the-password'));
    await topo.redisOn(old.port, (r) => r.call('CLIENT', 'KILL', 'TYPE', 'replica'));
    noReplicaFrom = sharedNow();
    const ms = scale(a, 500, 1500);
    await Promise.all([sleep(ms), probe(lane)]);
    cut = `its replica's link cut ${ms} ms before, `;
  } else {
    await sleep(scale(a, 0, 500));
  }
  await old.kill();
  const dead = sharedNow();
  noReplicaFrom ??= dead;
  await until(async () => {
    if ((await nodes.primaryPort()) !== next.port) return false;
    return /^role:master/m.test(await topo.redisOn(next.port, (r) => r.info('replication')));
  }, 30_000, 'the Sentinels to promote the replica');
  const promoted = sharedNow();
  if (lagging) await topo.redisOn(next.port, (r) => r.config('SET', 'masterauth', ''));
  setup.redis = next;
  await Promise.all([sleep(scale(b, 0, 1000)), probe(lane)]);
  const restartAt = sharedNow();
  await old.restart();
  await topo.redisOn(old.port, fastSync);
  // What the Sentinels would do too, seconds later.
  await topo.redisOn(old.port, (r) => r.call('REPLICAOF', '127.0.0.1', String(next.port)));
  await until(async () => {
    const info = await topo.redisOn(next.port, (r) => r.info('replication'));
    return /^connected_slaves:1/m.test(info) && /state=online/.test(info);
  }, 30_000, 'the killed Redis back as a replica');
  const end = sharedNow();
  topo.push({ k: 'fault', kind: 'no-replica', setup: 'replicated', target: `redis :${next.port}`, start: noReplicaFrom, end: restartAt, detail: 'no replica could hold a write' });
  const kind = lagging ? 'lagging-failover' : 'failover';
  const detail = `${cut}kill -9; :${next.port} promoted ${Math.round(promoted - dead)} ms later; the killed one back as its replica ${Math.round(end - restartAt)} ms after its restart`;
  topo.push({ k: 'fault', kind, setup: 'replicated', target: `redis :${old.port}`, start, dead, end, detail });
  lane.log(`${kind} redis :${old.port}: ${detail}`);
}

/** A campaign sent once, without retries, to a server of `setup` (r1 of the replicated
 * setup) while no replica can hold it: it must not be granted (503). The component is one
 * no contender wants, and the lease short. */
async function probe(lane: Lane, setup: SetupName = 'replicated', serverName = 'r1'): Promise<void> {
  const { topo } = lane;
  const server = topo.serverNode(serverName);
  const url = `${server.process.url}/v1/clusters/${topo.setup(setup).info.clusterId}/leaders/${CHURN_COMPONENT}/campaign`;
  const sent = sharedNow();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ contenderId: `probe-${++lane.churns}`, ttlMs: 1000 }),
    signal: AbortSignal.timeout(5000),
  }).catch(() => null);
  topo.push({ k: 'probe', setup, server: server.name, what: 'campaign', sent, answered: sharedNow(), status: res?.status ?? null });
  await res?.body?.cancel();
}

/** The setup whose cluster `x` in [0, 1) picks, and the primary that serves it now. */
async function loadedShard(topo: Topology, x: number): Promise<{ setup: SetupName; primary: RedisProcess }> {
  const setups = [...topo.setups.values()];
  const s = setups[Math.floor(x * setups.length)];
  return { setup: s.name, primary: await topo.redisCluster!.primaryOf(hashTag(s.info)) };
}

/** The setups whose clusters `primary` serves now. */
async function setupsOn(topo: Topology, primary: RedisProcess): Promise<SetupName[]> {
  const on: SetupName[] = [];
  for (const s of topo.setups.values()) if ((await topo.redisCluster!.ownerOf(hashTag(s.info))).port === primary.port) on.push(s.name);
  return on;
}

/**
 * The primary of the shard serving the `c`-picked setup's cluster is killed (-9), or paused
 * (SIGSTOP) past cluster-node-timeout, while the contenders renew and write, until the
 * cluster has promoted its replica; `a`-scaled ms later the old primary is restarted (or
 * resumed) and rejoins as the new primary's replica. From the kill (or the pause) until the
 * restart (or the resume), the shard has no replica that can hold a write: with one replica
 * acknowledging, nothing sent to it in that window may be acknowledged (a `no-replica`
 * window of every setup whose cluster the shard serves, as in the Sentinel lane).
 */
async function shardFailover(lane: Lane, pause: boolean, a: number, c: number): Promise<void> {
  const { topo } = lane;
  const cluster = topo.redisCluster!;
  const { setup, primary: old } = await loadedShard(topo, c);
  const hit = await setupsOn(topo, old);
  const [next] = await cluster.replicasOf(old);
  if (!next) throw new Error(`the primary :${old.port} has no replica to promote`);
  const start = sharedNow();
  if (pause) old.pause();
  else await old.kill();
  const dead = sharedNow();
  await until(async () => /myself,master/.test(await topo.redisOn(next.port, (r) => r.call('CLUSTER', 'NODES') as Promise<string>)), 30_000, `the cluster to promote :${next.port}`);
  const promoted = sharedNow();
  for (const s of hit) topo.setup(s).redis = next;
  await Promise.all([sleep(scale(a, 0, 1000)), ...hit.map((s, i) => probe(lane, s, topo.setup(s).info.servers[i % 2]))]);
  const back = sharedNow();
  if (pause) old.resume();
  else {
    await old.restart();
    await topo.redisOn(old.port, fastSync);
  }
  // Back as the new primary's replica, in sync, and every node agreeing.
  await cluster.waitOk(60_000);
  const end = sharedNow();
  for (const s of hit) topo.push({ k: 'fault', kind: 'no-replica', setup: s, target: `redis :${next.port}`, start: dead, end: back, detail: 'no replica could hold a write' });
  const kind = pause ? 'pause-primary' : 'kill-primary';
  const what = pause ? 'SIGSTOP' : 'kill -9';
  const detail = `${what} (serving ${hit.join(', ')}); :${next.port} promoted ${Math.round(promoted - dead)} ms later; ${pause ? 'resumed' : 'restarted'} ${Math.round(back - promoted)} ms after that, back as its replica ${Math.round(end - back)} ms later`;
  topo.push({ k: 'fault', kind, setup, target: `redis :${old.port}`, start, dead, end, detail });
  lane.log(`${kind} redis :${old.port}: ${detail}`);
}

/** Moves the slot of the `c`-picked setup's cluster, with its keys, to another primary
 * (`b` picks which) while its contenders renew and write and its watchers watch. */
async function moveSlot(lane: Lane, b: number, c: number): Promise<void> {
  const { topo } = lane;
  const cluster = topo.redisCluster!;
  const { setup, primary: from } = await loadedShard(topo, c);
  const others = (await cluster.primaries()).filter((p) => p.port !== from.port);
  const to = others[Math.floor(b * others.length)];
  const slot = RedisClusterProcess.slotOf(hashTag(topo.setup(setup).info));
  const start = sharedNow();
  await cluster.moveSlot(slot, to);
  const moved = await setupsOn(topo, to);
  for (const s of moved) topo.setup(s).redis = to;
  const detail = `slot ${slot} moved with its keys from :${from.port} to :${to.port} (which now serves ${moved.join(', ')})`;
  topo.push({ k: 'fault', kind: 'move-slot', setup, target: `slot ${slot}`, start, end: sharedNow(), detail });
  lane.log(`move-slot ${setup}: ${detail}`);
}

/** Takes a snapshot of the restored setup's Redis, lets the run go on for `a`-scaled ms,
 * then kills Redis and restarts it from that snapshot: what changed in between is lost. */
async function restore(lane: Lane, a: number): Promise<void> {
  const { topo } = lane;
  const redis = topo.setup('restored').redis;
  const taken = sharedNow();
  const copy = await snapshot(redis);
  const ms = scale(a, 1500, 4000);
  await sleep(ms);
  const start = sharedNow();
  await redis.kill();
  const dead = sharedNow();
  await restoreSnapshot(redis, copy);
  const detail = `snapshot taken, ${ms} ms later kill -9 and restarted from it on port ${redis.port}`;
  topo.push({ k: 'fault', kind: 'restore-snapshot', setup: 'restored', target: 'redis-restored', start, dead, end: sharedNow(), taken, detail });
  lane.log(`restore-snapshot redis-restored: ${detail}`);
}

/**
 * Cuts c3's link to Redis: its proxy holds every byte, and Redis ends its connections (so
 * that what Redis publishes meanwhile never reaches it; the end reaches it when the link
 * heals). Meanwhile more changes than the change log holds go through c1 (the harness
 * leads and resigns CHURN_COMPONENT itself), then `a`-scaled ms later the link heals: c3
 * must resync from past the log, and its watchers get a snapshot.
 */
async function cutPastLog(lane: Lane, a: number): Promise<void> {
  const { topo } = lane;
  const node = topo.serverNode('c3');
  const start = sharedNow();
  node.proxy!.blackhole();
  await topo.redisCommand('cutoff', (r) => r.call('CLIENT', 'KILL', 'USER', CUT_USER.name));
  const changes = await churn(lane, SHORT_CHANGE_LOG + 5);
  const ms = scale(a, 500, 2000);
  await sleep(ms);
  node.proxy!.restore();
  const detail = `link cut while ${changes} changes went through c1 (the log keeps ${SHORT_CHANGE_LOG}), healed ${ms} ms later`;
  topo.push({ k: 'fault', kind: 'cut-past-log', setup: 'cutoff', target: node.name, start, end: sharedNow(), changes, detail });
  lane.log(`cut-past-log ${node.name}<->redis-cutoff: ${detail}`);
}

/** Pushes at least `atLeast` changes of CHURN_COMPONENT through c1: the lease the last churn
 * kept is resigned, then leases are granted and resigned, and the last one is kept (so that
 * a watcher that missed it all would end with the wrong leader). Answers the changes made. */
async function churn(lane: Lane, atLeast: number): Promise<number> {
  const { topo } = lane;
  const base = `${topo.serverNode('c1').process.url}/v1/clusters/${topo.setup('cutoff').info.clusterId}/leaders/${CHURN_COMPONENT}`;
  const call = async (op: 'campaign' | 'resign', body: object) => {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${base}/${op}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).catch(() => null);
      const json = res && ((await res.json()) as { granted?: boolean; leader?: { sessionId: string } });
      if (res?.status === 200 && (op === 'resign' || json?.granted)) return json!;
      if (attempt >= 10) throw new Error(`churn ${op} through c1: ${res?.status} ${JSON.stringify(json)}`);
      await sleep(200);
    }
  };
  let n = 0;
  if (lane.churned) {
    await call('resign', lane.churned);
    lane.churned = null;
    n++;
  }
  for (;;) {
    const contenderId = `churn-${++lane.churns}`;
    const granted = await call('campaign', { contenderId, ttlMs: 60_000 });
    n++;
    const held = { contenderId, sessionId: granted.leader!.sessionId };
    if (n >= atLeast) {
      lane.churned = held;
      return n;
    }
    await call('resign', held);
    n++;
  }
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/** How long to let things settle after the last fault: a few TTLs. */
export const QUIESCE_MS = 2 * MAX_TTL_MS + 1000;
