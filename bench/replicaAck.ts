/**
 * What replication before acknowledgement costs (docs/design.md §8, §9): a primary with one
 * replica, and two leasehold servers on it, one that waits for the replica to hold each
 * grant and renewal (`REDIS_MIN_REPLICAS_ACK=1`, WAIT) and one that does not (`0`). Both
 * run the same renew load and the same campaign load, round by round with fresh servers
 * and the order of the two alternated, so that the VM's drift falls on both alike; then
 * campaigns one at a time, for their latency. The replica is attached in both: the ratio
 * is the wait alone, not the replication stream, which the primary sends either way.
 */
import { randomBytes } from 'node:crypto';
import type { ServerProcess } from '../test/support/app.js';
import { replicatedRedis, stopReplicatedRedis, type BenchEnv } from './env.js';
import { baselineRow, CONNECTIONS, renewSpec, throughputRow } from './http.js';
import type { LoadResult, LoadSpec } from './loadWorker.js';
import { post } from './post.js';
import { ms, summarize, type Row } from './stats.js';

type Side = 'off' | 'on';
const ACK: Record<Side, string> = { off: '0', on: '1' };
/** §8: with one replica acknowledging, renew keeps at least half the rate without. */
const RENEW_BUDGET = 0.5;

export async function replicaAckBenches(env: BenchEnv): Promise<Row[]> {
  // An even count, so that each side runs first in as many rounds as the other.
  const roundCount = env.quick ? 1 : 6;
  const durationS = env.quick ? 1 : 4;
  const campaigns = env.quick ? 1_000 : 6_000;
  const leases = env.quick ? 200 : 1000;
  const topology = await replicatedRedis({ replicas: 1, sentinels: 0 });
  const primaryUrl = topology.nodes[0].url;
  const serve = (side: Side) => env.server({ REDIS_URL: primaryUrl, REDIS_MIN_REPLICAS_ACK: ACK[side] });
  try {
    let renewals: LoadSpec | null = null;
    const renew: Record<Side, LoadResult[]> = { off: [], on: [] };
    const campaign: Record<Side, LoadResult[]> = { off: [], on: [] };
    let one: Row[] = [];
    for (let r = 0; r < roundCount; r++) {
      const servers = await startPair(env, serve);
      try {
        if (r === 0) await checkAck(servers);
        // The leases live in Redis: every round's servers renew the same ones.
        renewals ??= await renewSpec(servers.off.url, leases);
        const order: Side[] = r % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
        const specs = {
          off: campaignSpecs(servers.off.url, campaigns),
          on: campaignSpecs(servers.on.url, campaigns),
        };
        // Not with --quick: each load is a process of its own, whose start-up costs a
        // one-round smoke run more than the campaign warm-up gives it.
        if (!env.quick) for (const side of order) await measured(env, specs[side].warmUp);
        // Each renew run warms its server up for a second first, in the same process.
        for (const side of order) renew[side].push(await measured(env, { ...renewals, url: servers[side].url, durationS, warmUpS: 1 }));
        for (const side of order) campaign[side].push(await measured(env, specs[side].run));
        if (r === roundCount - 1) one = await oneAtATime(servers, env.quick ? 50 : 300);
      } finally {
        await Promise.all([env.stopServer(servers.off), env.stopServer(servers.on)]);
      }
    }
    return [
      baselineRow(`renew, ${leases.toLocaleString('en-US')} leases, replica attached, no ack (baseline)`, renew.off),
      throughputRow(`renew, ${leases.toLocaleString('en-US')} leases, one replica acknowledging`, renew.on, renew.off, RENEW_BUDGET, 'no ack'),
      baselineRow(`campaign, ${campaigns.toLocaleString('en-US')} fresh components, no ack (baseline)`, campaign.off),
      throughputRow(`campaign, ${campaigns.toLocaleString('en-US')} fresh components, one replica acknowledging`, campaign.on, campaign.off, undefined, 'no ack'),
      ...one,
    ];
  } finally {
    await stopReplicatedRedis(topology);
  }
}

async function startPair(env: BenchEnv, serve: (side: Side) => Promise<ServerProcess>): Promise<Record<Side, ServerProcess>> {
  const [off, on] = await Promise.allSettled([serve('off'), serve('on')]);
  if (off.status === 'fulfilled' && on.status === 'fulfilled') return { off: off.value, on: on.value };
  for (const s of [off, on]) if (s.status === 'fulfilled') await env.stopServer(s.value);
  throw off.status === 'rejected' ? off.reason : (on as PromiseRejectedResult).reason;
}

/** Each server says it waits for as many replicas as it should, and the replica is there:
 * otherwise the two sides would measure the same thing. */
async function checkAck(servers: Record<Side, ServerProcess>): Promise<void> {
  for (const side of ['off', 'on'] as const) {
    const ready = (await (await fetch(`${servers[side].url}/readyz`)).json()) as { replicas?: { connected: number; requiredForAck: number } };
    const want = { connected: 1, requiredForAck: Number(ACK[side]) };
    if (ready.replicas?.connected !== want.connected || ready.replicas?.requiredForAck !== want.requiredForAck) {
      throw new Error(`server with REDIS_MIN_REPLICAS_ACK=${ACK[side]}: replicas ${JSON.stringify(ready.replicas)}, expected ${JSON.stringify(want)}`);
    }
  }
}

async function measured(env: BenchEnv, spec: LoadSpec): Promise<LoadResult> {
  const res = await env.load(spec);
  if (res.errors > 0 || res.non2xx > 0) throw new Error(`${spec.url}: ${res.errors} errors, ${res.non2xx} non-2xx`);
  return res;
}

/** Campaigns, each for a component nobody holds yet (a grant, the write that waits), in a
 * cluster of their own: a warm-up and the measured run, each sent exactly once. */
function campaignSpecs(url: string, amount: number): { warmUp: LoadSpec; run: LoadSpec } {
  const cluster = `bench-ack-${randomBytes(4).toString('hex')}`;
  const body = JSON.stringify({ contenderId: 'bench', ttlMs: 60_000 });
  const list = (n: number): LoadSpec => {
    // jobmanager/<32 hex digits>: a random prefix and a counter.
    const prefix = randomBytes(12).toString('hex');
    const requests = Array.from({ length: n }, (_, i) => ({
      path: `/v1/clusters/${cluster}/leaders/jobmanager/${prefix}${i.toString(16).padStart(8, '0')}/campaign`,
      body,
    }));
    return { url, connections: CONNECTIONS, durationS: 0, amount: n, method: 'POST', requests };
  };
  return { warmUp: list(Math.max(CONNECTIONS, Math.floor(amount / 10))), run: list(amount) };
}

/** `n` campaigns for fresh components on each side, one at a time, the sides taking turns
 * (after a few to warm up). */
async function oneAtATime(servers: Record<Side, ServerProcess>, n: number): Promise<Row[]> {
  const warmUp = 10;
  const cluster = `bench-ack-one-${randomBytes(4).toString('hex')}`;
  const samples: Record<Side, number[]> = { off: [], on: [] };
  for (let i = 0; i < n + warmUp; i++) {
    for (const side of i % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const path = `/v1/clusters/${cluster}/leaders/jobmanager/${randomBytes(16).toString('hex')}/campaign`;
      const t0 = performance.now();
      const r = await post(servers[side].url + path, { contenderId: 'bench', ttlMs: 60_000 });
      const took = performance.now() - t0;
      if (r.status !== 200 || !r.body.granted) throw new Error(`campaign (ack ${ACK[side]}) answered ${r.status}: ${JSON.stringify(r.body)}`);
      if (i >= warmUp) samples[side].push(took);
    }
  }
  const off = summarize(samples.off);
  const on = summarize(samples.on);
  return [
    { name: 'campaign one at a time, no ack (baseline)', figure: `p50 ${ms(off.p50)} (n=${off.n}, max ${ms(off.max)})`, p50Ms: off.p50, p99Ms: off.p99 },
    {
      name: 'campaign one at a time, one replica acknowledging',
      figure: `p50 ${ms(on.p50)} (n=${on.n}, max ${ms(on.max)})`,
      baseline: `p50 ${ms(off.p50)} no ack`,
      p50Ms: on.p50,
      p99Ms: on.p99,
    },
  ];
}
