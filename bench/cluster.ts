/**
 * Redis Cluster (issue 21): what three primaries give against one Redis, measured in the
 * same run. A cluster of three primaries without replicas (test/support/redisCluster.ts)
 * and the run's single Redis, neither persisting nor replicating, each behind fresh
 * leasehold servers every round, the two sides taking turns to go first (rounds(), as
 * http.ts does), so that the machine's drift falls on both alike:
 * - renewals over leases spread across many cluster ids, so across the three shards;
 * - push: grant and resign through one server, to watchers on it and on a second server
 *   (the change crosses Redis's pub/sub), the two sides alternating cycle by cycle;
 * - how evenly 10,000 cluster ids spread over the shards: the slots of their hash tags
 *   (src/ha/keySlot.ts) against the slot ranges `redis-cli --cluster create` gave.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { RedisClusterProcess } from '../test/support/redisCluster.js';
import { keySlot } from '../src/ha/keySlot.js';
import type { ServerProcess } from '../test/support/app.js';
import type { BenchEnv } from './env.js';
import { baselineRow, renewSpec, rounds, throughputRow } from './http.js';
import type { LoadResult, LoadSpec } from './loadWorker.js';
import { post } from './post.js';
import { Watchers } from './push.js';
import { ms, summarize, type Row } from './stats.js';

type Side = 'single' | 'cluster';
const SIDES: Side[] = ['single', 'cluster'];
const IDS = 10_000;
/** Cluster ids the renewals cycle through: enough that every shard holds a share. */
const RENEW_CLUSTERS = 30;
const WATCHERS_PER_SERVER = 5;

export async function clusterBenches(env: BenchEnv): Promise<Row[]> {
  const roundCount = env.quick ? 1 : 4;
  const durationS = env.quick ? 1 : 3;
  const leases = env.quick ? 200 : 1000;
  const cycles = env.quick ? 25 : 100;
  const cluster = await RedisClusterProcess.start({ replicasPerPrimary: 0, aof: false });
  const serve = (side: Side) => env.server(side === 'cluster' ? { REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.seeds } : {});
  try {
    const spread = await spreadRow(cluster);
    // The leases live in Redis: created once per side, renewed by every round's servers.
    const specs: Partial<Record<Side, LoadSpec>> = {};
    const runs = await rounds(env, roundCount, durationS, async (r) => {
      const servers = await Promise.all(SIDES.map(serve));
      for (const [i, side] of SIDES.entries()) specs[side] = specs[side] ? { ...specs[side]!, url: servers[i].url } : await renewSpec(servers[i].url, leases, RENEW_CLUSTERS);
      const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
      return { specs: order.map((side) => specs[side]!), stop: () => Promise.all(servers.map((s) => env.stopServer(s))).then(() => {}) };
    });
    // rounds() lists the runs by position: undo the alternation.
    const renew: Record<Side, LoadResult[]> = { single: [], cluster: [] };
    for (let r = 0; r < roundCount; r++) {
      const [first, second] = r % 2 === 0 ? SIDES : [...SIDES].reverse();
      renew[first].push(runs[0][r]);
      renew[second].push(runs[1][r]);
    }
    const push = await pushLatency(env, serve, cycles);
    const name = `renew, ${leases.toLocaleString('en-US')} leases over ${RENEW_CLUSTERS} cluster ids`;
    return [
      baselineRow(`${name}, one Redis (baseline)`, renew.single),
      throughputRow(`${name}, Redis Cluster of 3 primaries`, renew.cluster, renew.single, undefined, 'one Redis'),
      ...push,
      spread,
    ];
  } finally {
    await cluster.stop();
  }
}

/** Grant and resign cycles through server A of each side, to watchers on A and B of that
 * side; a sample is the time until every watcher has the change. Both sides in every
 * cycle, the first alternating. */
async function pushLatency(env: BenchEnv, serve: (side: Side) => Promise<ServerProcess>, cycles: number): Promise<Row[]> {
  const warmUp = 5;
  const servers = await Promise.all(SIDES.flatMap((side) => [serve(side), serve(side)]));
  const clusterId = `bench-cluster-push-${randomBytes(4).toString('hex')}`;
  const watchers: Watchers[] = [];
  try {
    // A watch opened as soon as /readyz answers 200 was once refused (503) under load, on
    // which side is not known: wait until one opens on each server.
    await Promise.all(servers.map((s) => watchable(`${s.url}/v1/clusters/${clusterId}/watch`)));
    for (const [i] of SIDES.entries()) watchers.push(await Watchers.open([servers[2 * i].url, servers[2 * i + 1].url], clusterId, WATCHERS_PER_SERVER));
    const samples: Record<Side, number[]> = { single: [], cluster: [] };
    const now = () => performance.timeOrigin + performance.now();
    for (let c = 0; c < warmUp + cycles; c++) {
      const component = `jobmanager/${randomBytes(16).toString('hex')}`;
      for (const i of c % 2 === 0 ? [0, 1] : [1, 0]) {
        const w = watchers[i];
        const base = `${servers[2 * i].url}/v1/clusters/${clusterId}/leaders/${component}`;
        const granted = w.expect((m) => m.event === 'granted' && m.component === component, 5000, `the grant of ${component}`);
        const t0 = now();
        const g = await post(`${base}/campaign`, { contenderId: 'push', ttlMs: 60_000 });
        if (g.status !== 200 || !g.body.granted) throw new Error(`cluster bench: campaign answered ${g.status} ${JSON.stringify(g.body)}`);
        const gt = w.latest(await granted) - t0;
        const revoked = w.expect((m) => m.event === 'revoked' && m.component === component, 5000, `the resign of ${component}`);
        const t1 = now();
        const r = await post(`${base}/resign`, { contenderId: 'push', sessionId: g.body.leader.sessionId });
        if (r.status !== 200) throw new Error(`cluster bench: resign answered ${r.status} ${JSON.stringify(r.body)}`);
        const rt = w.latest(await revoked) - t1;
        if (c >= warmUp) samples[SIDES[i]].push(gt, rt);
      }
    }
    const single = summarize(samples.single);
    const onCluster = summarize(samples.cluster);
    const name = (side: string) => `push: grant/resign → all ${2 * WATCHERS_PER_SERVER} watchers on 2 servers, ${side}`;
    return [
      { name: name('one Redis (baseline)'), figure: `p99 ${ms(single.p99)} (n=${single.n}, max ${ms(single.max)})`, p50Ms: single.p50, p99Ms: single.p99 },
      {
        name: name('Redis Cluster of 3 primaries'),
        figure: `p99 ${ms(onCluster.p99)} (n=${onCluster.n}, max ${ms(onCluster.max)}; p50 ${(onCluster.p50 / single.p50).toFixed(2)}×, p99 ${(onCluster.p99 / single.p99).toFixed(2)}× one Redis)`,
        baseline: `p99 ${ms(single.p99)} one Redis`,
        p50Ms: onCluster.p50,
        p99Ms: onCluster.p99,
      },
    ];
  } finally {
    for (const w of watchers) w.close();
    await Promise.allSettled(servers.map((s) => env.stopServer(s)));
  }
}

async function watchable(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ws = new WebSocket(url.replace(/^http/, 'ws'));
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('message', () => resolve(true));
      ws.once('error', () => resolve(false));
    });
    ws.terminate();
    if (opened) return;
    if (Date.now() > deadline) throw new Error(`cluster bench: no watch opens at ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** How many of IDS cluster ids (`flink-<n>`, as operators number them, and random ones)
 * each primary serves, by the slot of the id's hash tag. */
async function spreadRow(cluster: RedisClusterProcess): Promise<Row> {
  const primaries = (await cluster.topology()).filter((n) => n.primary && n.slots.length > 0).sort((a, b) => a.slots[0][0] - b.slots[0][0]);
  const shardOf = (slot: number) => primaries.findIndex((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
  const describe = (ids: string[]) => {
    const counts = primaries.map(() => 0);
    for (const id of ids) counts[shardOf(keySlot(`{${id}}`))]++;
    const mean = ids.length / counts.length;
    const stddev = Math.sqrt(counts.reduce((s, c) => s + (c - mean) ** 2, 0) / counts.length);
    return `${counts.map((c) => c.toLocaleString('en-US')).join(' / ')} (min ${Math.min(...counts)}, max ${Math.max(...counts)}, stddev ${stddev.toFixed(1)})`;
  };
  const numbered = Array.from({ length: IDS }, (_, i) => `flink-${i}`);
  const random = Array.from({ length: IDS }, () => randomBytes(8).toString('hex'));
  return {
    name: `${IDS.toLocaleString('en-US')} cluster ids over ${primaries.length} shards`,
    figure: `flink-<n>: ${describe(numbered)}; random: ${describe(random)}`,
    baseline: `${Math.round(IDS / primaries.length).toLocaleString('en-US')} each`,
  };
}
