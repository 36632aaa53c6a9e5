/**
 * HTTP throughput: leader GET and renew against the bare Fastify baseline (docs/design.md §8),
 * GET of all leaders with 100 job managers, and a campaign storm; with redis-benchmark
 * figures for the same Redis operations beside them.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { scriptSource } from '../src/ha/scripts.js';
import { ClusterKeys } from '../src/ha/ids.js';
import { post } from '../test/support/app.js';
import type { BenchEnv } from './env.js';
import type { LoadResult, LoadSpec } from './loadWorker.js';
import { rate, summarize, type Row } from './stats.js';

export const CONNECTIONS = 50;
const jobManager = () => `jobmanager/${randomBytes(16).toString('hex')}`;

/** One round's processes: what each load runs against, and how to stop them. */
export interface Round {
  specs: LoadSpec[];
  /** The server processes of each spec, when their CPU time per request is wanted
   * (`cpuUs` in its results). */
  pids?: Array<number[] | undefined>;
  stop(): Promise<void>;
}

/**
 * `count` rounds: each starts fresh processes (`start`), warms them up, runs every load
 * once, back to back, and stops them. Back to back, because this VM's speed drifts over
 * tens of seconds; fresh processes, because V8 compiles each process's hot code its own
 * way, and processes of the same bare route keep different rates through a whole run
 * (bench/RESULTS.md): with one process a side the ratio was partly a draw of which two ran.
 */
export async function rounds(env: BenchEnv, count: number, durationS: number, start: (round: number) => Promise<Round>): Promise<LoadResult[][]> {
  const runs: LoadResult[][] = [];
  for (let r = 0; r < count; r++) {
    const round = await start(r);
    try {
      for (const s of round.specs) await env.load({ ...s, durationS: 1 });
      for (const [i, s] of round.specs.entries()) {
        const pids = round.pids?.[i];
        const before = pids && cpuMs(pids);
        const res = await env.load({ ...s, durationS });
        if (res.errors > 0 || res.non2xx > 0) throw new Error(`${s.url}: ${res.errors} errors, ${res.non2xx} non-2xx`);
        if (pids) res.cpuUs = ((cpuMs(pids) - before!) * 1000) / res.total;
        (runs[i] ??= []).push(res);
      }
    } finally {
      await round.stop();
    }
  }
  return runs;
}

/** CPU time (user + system) the processes used so far, in ms, from /proc. */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1000) / CLK_TCK;
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim() || 100);

export async function httpBenches(env: BenchEnv): Promise<Row[]> {
  // Seven rounds, since each draws new processes and a round's ratio spreads widely.
  const durationS = env.quick ? 2 : 4;
  const setup = await env.server();
  const read = await leaderRead(setup.url);
  const renewals = await renewSpec(setup.url, env.quick ? 200 : 1000);
  const all = await allLeaders(setup.url);
  await env.stopServer(setup);

  // Every round's server serves the same clusters (they live in Redis).
  const [bareGet, leaderGet, renewLoad, bareAllGet, allGet] = await rounds(env, env.quick ? 1 : 7, durationS, async () => {
    const [bare, bareAll, server] = await Promise.all([env.bare(read.bytes, read.path), env.bare(all.bytes, all.path), env.server()]);
    return {
      specs: [
        { url: bare.url, connections: CONNECTIONS, durationS },
        { url: server.url + read.path, connections: CONNECTIONS, durationS },
        { ...renewals, url: server.url },
        { url: bareAll.url, connections: CONNECTIONS, durationS },
        { url: server.url + all.path, connections: CONNECTIONS, durationS },
      ],
      stop: async () => {
        bare.stop();
        bareAll.stop();
        await env.stopServer(server);
      },
    };
  });
  const server = await env.server();
  const rows = [
    baselineRow('bare Fastify route (baseline)', bareGet),
    throughputRow('leader GET', leaderGet, bareGet, 0.8),
    throughputRow(`renew, ${env.quick ? 200 : '1,000'} distinct leases`, renewLoad, bareGet, 0.5),
    throughputRow('GET all leaders, 100 job managers', allGet, bareAllGet),
    await campaignStorm(server.url, env.quick ? 5 : 20),
    ...(await redisBaselines(env, read.clusterId)),
  ];
  await env.stopServer(server);
  return rows;
}

/** A dispatcher leader to read: its cluster, its path on any server of this run's Redis,
 * and the size of its answer (the bare route answers as many bytes). */
export async function leaderRead(serverUrl: string) {
  const clusterId = `bench-${randomBytes(3).toString('hex')}`;
  await post(serverUrl, `/v1/clusters/${clusterId}/leaders/dispatcher/campaign`, {
    contenderId: 'dispatcher-1',
    ttlMs: 300_000,
    address: 'akka.tcp://flink@10.0.0.1:6123/user/rpc/dispatcher_1',
  });
  const path = `/v1/clusters/${clusterId}/leaders/dispatcher`;
  return { clusterId, path, bytes: await answerBytes(serverUrl + path) };
}

/** A cluster with 100 job managers, whose leaders are read all at once. */
async function allLeaders(serverUrl: string) {
  const clusterId = `bench-all-${randomBytes(3).toString('hex')}`;
  await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      post(serverUrl, `/v1/clusters/${clusterId}/leaders/${jobManager()}/campaign`, { contenderId: `jm-${i}`, ttlMs: 300_000 }),
    ),
  );
  const path = `/v1/clusters/${clusterId}/leaders`;
  return { path, bytes: await answerBytes(serverUrl + path) };
}

const answerBytes = async (url: string) => Buffer.byteLength(await (await fetch(url)).text());

/** The run of median rate. */
export function median(runs: LoadResult[]): LoadResult {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)];
}

export function baselineRow(name: string, runs: LoadResult[]): Row {
  const m = median(runs);
  return { name, figure: `${rate(m.rps)} (median of ${runs.length})`, p50Ms: m.p50Ms, p99Ms: m.p99Ms };
}

/** The ratio is the median, over rounds, of each run against the baseline's run of the
 * same round (of an even count, the mean of the middle two); the figures are medians.
 * `against` names the baseline in the table. */
export function throughputRow(name: string, runs: LoadResult[], base: LoadResult[], budget?: number, against = 'bare'): Row {
  const ratios = runs.map((r, i) => r.rps / base[i].rps).sort((a, b) => a - b);
  const mid = Math.floor(ratios.length / 2);
  const ratio = ratios.length % 2 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
  const m = median(runs);
  return {
    name,
    figure: `${rate(m.rps)}${runs.length > 1 ? ` (ratios ${ratios.map((x) => x.toFixed(2)).join(', ')})` : ''}`,
    baseline: `${rate(median(base).rps)} ${against}`,
    ratio,
    p50Ms: m.p50Ms,
    p99Ms: m.p99Ms,
    ...(budget === undefined ? {} : { budget: `≥ ${budget.toFixed(2)}× ${against}`, pass: ratio >= budget }),
  };
}

/** Renewals cycling through `n` leases of job managers, each held by its contender, in one
 * cluster id or spread over `clusters` (on a Redis Cluster, over its shards). */
export async function renewSpec(base: string, n: number, clusters = 1): Promise<LoadSpec> {
  const tag = `bench-renew-${randomBytes(3).toString('hex')}`;
  const requests: Array<{ path: string; body: string }> = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
        const c = clusters === 1 ? tag : `${tag}-${(i + k) % clusters}`;
        const component = jobManager();
        const r = await post(base, `/v1/clusters/${c}/leaders/${component}/campaign`, { contenderId: `jm-${i + k}`, ttlMs: 300_000 });
        const body = JSON.stringify({ contenderId: `jm-${i + k}`, sessionId: r.body.leader.sessionId, ttlMs: 300_000 });
        return { path: `/v1/clusters/${c}/leaders/${component}/renew`, body };
      }),
    );
    requests.push(...batch);
  }
  return { url: base, connections: CONNECTIONS, durationS: 1, method: 'POST', requests };
}

/** 100 contenders campaign at once for a fresh component, `rounds` times: exactly one
 * may win each round, and all must name the same leader. */
async function campaignStorm(base: string, rounds: number): Promise<Row> {
  const c = `bench-storm-${randomBytes(3).toString('hex')}`;
  const latencies: number[] = [];
  let fair = true;
  for (let r = 0; r < rounds; r++) {
    const component = jobManager();
    const answers = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const t0 = performance.now();
        const res = await post(base, `/v1/clusters/${c}/leaders/${component}/campaign`, { contenderId: `c-${i}` });
        latencies.push(performance.now() - t0);
        return res.body;
      }),
    );
    const winners = answers.filter((a) => a.granted).length;
    const sessions = new Set(answers.map((a) => a.leader?.sessionId));
    fair &&= winners === 1 && sessions.size === 1;
  }
  const s = summarize(latencies);
  return {
    name: 'campaign storm, 100 contenders',
    figure: `${rounds} rounds, ${fair ? 'one winner each' : 'NOT one winner each'}`,
    p50Ms: s.p50,
    p99Ms: s.p99,
    budget: 'exactly one winner',
    pass: fair,
  };
}

/** redis-benchmark on the same Redis for the operations behind campaign and renew. */
async function redisBaselines(env: BenchEnv, clusterId: string): Promise<Row[]> {
  const redis = new Redis(env.redis.url);
  try {
    const k = new ClusterKeys(clusterId);
    const h = await redis.hgetall(k.leader('dispatcher'));
    const sha = (await redis.script('LOAD', scriptSource('renew'))) as string;
    const n = env.quick ? 20_000 : 100_000;
    const renew = await redisBenchmark(env.redis.port, n, [
      'EVALSHA', sha, '7', k.index, k.log, k.lease('dispatcher'), k.leader('dispatcher'), ...k.historyKeys,
      k.channel, '0', '1000', 'bench', 'dispatcher', h.cid, h.sid, '300000', '300000', `a${h.addr ?? ''}`,
    ]);
    const setNx = await redisBenchmark(env.redis.port, n, ['SET', `lh:{${clusterId}}:bench:__rand_int__`, 'x', 'NX', 'PX', '10000']);
    return [
      { name: 'Redis: renew script, EVALSHA (redis-benchmark)', figure: rate(renew) },
      { name: 'Redis: SET NX PX (redis-benchmark)', figure: rate(setNx) },
    ];
  } finally {
    redis.disconnect();
  }
}

async function redisBenchmark(port: number, n: number, command: string[]): Promise<number> {
  const { stdout } = await promisify(execFile)('redis-benchmark', [
    '-h', '127.0.0.1', '-p', String(port), '-c', String(CONNECTIONS), '-n', String(n), '-r', '1000000', '--csv', ...command,
  ]);
  // "test","rps",…  then  "<command>","12345.67",…
  const line = stdout.trim().split('\n').at(-1)!;
  return Number(line.split('","')[1]);
}
