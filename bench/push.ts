/**
 * Push benchmarks (docs/design.md §8): how soon watchers learn of a grant or resign, of an expiry,
 * and of the new leader after a leader crashed. Two server processes (replicas A and B) on
 * the run's Redis; websocket watchers on both, in this process; timestamps on the clock
 * every process shares (performance.timeOrigin + performance.now()).
 *
 * A sample is the time until *every* watcher of a kind has the change (the budget says
 * "reaches every watcher"), not one watcher's time.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { BenchEnv } from './env.js';
import { post } from './post.js';
import { ms, summarize, type Row } from './stats.js';

const now = () => performance.timeOrigin + performance.now();
const sleep = (t: number) => new Promise<void>((r) => setTimeout(r, t));
const jobId = () => randomBytes(16).toString('hex');

const WATCHERS_PER_REPLICA = 10;
const PUSH_BUDGET_MS = 50;
const EXPIRY_BUDGET_MS = 250;
const EXPIRY_TTL_MS = 1000;


type Replica = 0 | 1;

interface Expectation {
  pred: (m: any) => boolean;
  /** Receipt time per watcher index. */
  times: Map<number, number>;
  done: (times: Map<number, number>) => void;
}

/** Websocket watchers of a whole cluster, on both replicas, and the changes they are expected to see. */
export class Watchers {
  private readonly sockets: WebSocket[] = [];
  readonly replicaOf: Replica[] = [];
  private readonly pending = new Set<Expectation>();

  static async open(urls: [string, string], clusterId: string, perReplica: number): Promise<Watchers> {
    const w = new Watchers();
    const opened: Promise<void>[] = [];
    for (let i = 0; i < perReplica; i++) {
      for (const r of [0, 1] as const) opened.push(w.add(`${urls[r].replace(/^http/, 'ws')}/v1/clusters/${clusterId}/watch`, r));
    }
    await Promise.all(opened);
    return w;
  }

  private add(url: string, replica: Replica): Promise<void> {
    const idx = this.sockets.length;
    const ws = new WebSocket(url);
    this.sockets.push(ws);
    this.replicaOf.push(replica);
    ws.on('message', (data) => {
      const t = now();
      if (this.pending.size === 0) return;
      const m = JSON.parse(data.toString());
      if (m.type !== 'change') return;
      for (const e of this.pending) {
        if (e.times.has(idx) || !e.pred(m)) continue;
        e.times.set(idx, t);
        if (e.times.size === this.sockets.length) {
          this.pending.delete(e);
          e.done(e.times);
        }
      }
    });
    ws.on('close', (code) => {
      if (!this.closing) console.error(`push bench: watcher ${idx} closed (${code})`);
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        // The snapshot is the sign that the watch is registered on the server.
        ws.once('message', () => resolve());
      });
      ws.once('error', reject);
    });
  }

  /** Resolves with each watcher's receipt time of the first change matching `pred`, once all have it.
   * Call it before the write. */
  expect(pred: (m: any) => boolean, timeoutMs: number, what: string): Promise<Map<number, number>> {
    return new Promise((resolve, reject) => {
      const e: Expectation = {
        pred,
        times: new Map(),
        done: (times) => {
          clearTimeout(timer);
          resolve(times);
        },
      };
      const timer = setTimeout(() => {
        this.pending.delete(e);
        reject(new Error(`push bench: only ${e.times.size}/${this.sockets.length} watchers saw ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.add(e);
    });
  }

  /** The latest receipt among the watchers of `replica` (all when undefined). */
  latest(times: Map<number, number>, replica?: Replica): number {
    let t = -Infinity;
    for (const [idx, at] of times) if (replica === undefined || this.replicaOf[idx] === replica) t = Math.max(t, at);
    return t;
  }

  private closing = false;
  close(): void {
    this.closing = true;
    for (const ws of this.sockets) ws.terminate();
  }
}

function leaderUrl(base: string, clusterId: string, component: string, op: string): string {
  return `${base}/v1/clusters/${clusterId}/leaders/${component}/${op}`;
}

export async function pushBenches(env: BenchEnv): Promise<Row[]> {
  const [a, b] = await Promise.all([env.server(), env.server()]);
  const urls: [string, string] = [a.url, b.url];
  const clusterId = `bench-push-${randomBytes(4).toString('hex')}`;
  const watchers = await Watchers.open(urls, clusterId, WATCHERS_PER_REPLICA);
  try {
    return [
      ...(await grantResign(env, urls, clusterId, watchers)),
      await expiry(env, urls, clusterId, watchers),
      ...(await failover(env, urls, clusterId, watchers)),
    ];
  } finally {
    watchers.close();
    await Promise.allSettled([env.stopServer(a), env.stopServer(b)]);
  }
}

/** Grant and resign cycles, the write sent to A and B in turn, on varying components. */
async function grantResign(env: BenchEnv, urls: [string, string], clusterId: string, w: Watchers): Promise<Row[]> {
  const cycles = env.quick ? 25 : 100; // two events each: 50 / 200 samples per kind
  const warmup = 5;
  const components = ['resourcemanager', 'dispatcher', 'rest', ...Array.from({ length: 5 }, () => `jobmanager/${jobId()}`)];
  const same: number[] = [];
  const other: number[] = [];
  for (let i = 0; i < warmup + cycles; i++) {
    const record = i >= warmup;
    const writer = (i % 2) as Replica;
    const base = urls[writer];
    const component = components[i % components.length];
    const contenderId = `push-${i}`;

    const granted = w.expect((m) => m.event === 'granted' && m.component === component && m.leader?.contenderId === contenderId, 5000, `the grant of ${component}`);
    const t0 = now();
    const c = await post(leaderUrl(base, clusterId, component, 'campaign'), { contenderId, ttlMs: 60_000 });
    if (c.status !== 200 || !c.body.granted) throw new Error(`push bench: campaign answered ${c.status} ${JSON.stringify(c.body)}`);
    const gt = await granted;
    if (record) {
      same.push(w.latest(gt, writer) - t0);
      other.push(w.latest(gt, (1 - writer) as Replica) - t0);
    }
    await sleep(5 + Math.random() * 15);

    const revoked = w.expect((m) => m.event === 'revoked' && m.component === component, 5000, `the resign of ${component}`);
    const t1 = now();
    const r = await post(leaderUrl(base, clusterId, component, 'resign'), { contenderId, sessionId: c.body.leader.sessionId });
    if (r.status !== 200) throw new Error(`push bench: resign answered ${r.status} ${JSON.stringify(r.body)}`);
    const rt = await revoked;
    if (record) {
      same.push(w.latest(rt, writer) - t1);
      other.push(w.latest(rt, (1 - writer) as Replica) - t1);
    }
    await sleep(5 + Math.random() * 15);
  }
  const row = (name: string, samples: number[]): Row => {
    const s = summarize(samples);
    return {
      name,
      figure: `p99 ${ms(s.p99)} (n=${s.n}, max ${ms(s.max)})`,
      p50Ms: s.p50,
      p99Ms: s.p99,
      budget: `p99 ≤ ${PUSH_BUDGET_MS} ms`,
      pass: s.p99 <= PUSH_BUDGET_MS,
    };
  };
  return [
    row(`push: grant/resign → all ${WATCHERS_PER_REPLICA} watchers, same replica`, same),
    row(`push: grant/resign → all ${WATCHERS_PER_REPLICA} watchers, other replica`, other),
  ];
}

/** Leases of 1 s never renewed, taken at staggered times through A and B in turn: from the
 * moment the lease ends (counted from just before its campaign was sent, so a little
 * early) to the moment every watcher on both replicas has its `expired`. */
async function expiry(env: BenchEnv, urls: [string, string], clusterId: string, w: Watchers): Promise<Row> {
  const n = env.quick ? 30 : 100;
  const samples: number[] = [];
  const done: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const component = `jobmanager/${jobId()}`;
    const contenderId = `expiry-${i}`;
    const expired = w.expect((m) => m.event === 'expired' && m.component === component, EXPIRY_TTL_MS + 5000, `the expiry of ${component}`);
    const t0 = now();
    const c = await post(leaderUrl(urls[i % 2], clusterId, component, 'campaign'), { contenderId, ttlMs: EXPIRY_TTL_MS });
    if (c.status !== 200 || !c.body.granted) throw new Error(`push bench: campaign answered ${c.status} ${JSON.stringify(c.body)}`);
    done.push(expired.then((times) => void samples.push(w.latest(times) - (t0 + EXPIRY_TTL_MS))));
    await sleep(15 + Math.random() * 20);
  }
  await Promise.all(done);
  const s = summarize(samples);
  return {
    name: `expiry (ttl 1 s) → all ${2 * WATCHERS_PER_REPLICA} watchers, both replicas`,
    figure: `p99 ${ms(s.p99)} (n=${s.n}, max ${ms(s.max)})`,
    p50Ms: s.p50,
    p99Ms: s.p99,
    budget: `p99 ≤ ${EXPIRY_BUDGET_MS} ms`,
    pass: s.p99 <= EXPIRY_BUDGET_MS,
  };
}

/** kill -9 of a leading contender process (renewing through A); a standby contender
 * process (watching and campaigning through B) takes over; from the kill to the moment
 * every watcher on both replicas has the standby's grant. */
async function failover(env: BenchEnv, urls: [string, string], clusterId: string, w: Watchers): Promise<Row[]> {
  const plans = env.quick ? [{ ttl: 2000, runs: 1 }] : [{ ttl: 2000, runs: 3 }, { ttl: 10_000, runs: 3 }];
  const rows: Row[] = [];
  for (const { ttl, runs } of plans) {
    const samples: number[] = [];
    for (let run = 0; run < runs; run++) {
      const component = `jobmanager/${jobId()}`;
      const leaderId = `leader-${ttl}-${run}`;
      const standbyId = `standby-${ttl}-${run}`;
      const leader = await env.node('bench/contender.ts', [urls[0], clusterId, component, String(ttl), leaderId], {}, 'leading');
      const standby = await env.node('bench/contender.ts', [urls[1], clusterId, component, String(ttl), standbyId], {}, 'standby');
      try {
        // Kill at a random point of the renewal cycle, after at least one renewal.
        await sleep(ttl / 3 + Math.random() * (ttl / 3) + 50);
        const taken = w.expect((m) => m.event === 'granted' && m.component === component && m.leader?.contenderId === standbyId, ttl + 10_000, `the standby's grant of ${component}`);
        const t0 = now();
        env.kill(leader);
        samples.push(w.latest(await taken) - t0);
      } finally {
        env.kill(leader);
        env.kill(standby);
      }
    }
    const max = Math.max(...samples);
    const budget = ttl + 1000;
    rows.push({
      name: `failover: kill -9 → all ${2 * WATCHERS_PER_REPLICA} watchers know, ttl ${ttl / 1000} s`,
      figure: `max ${(max / 1000).toFixed(2)} s (n=${samples.length}${samples.length > 1 ? `: ${samples.map((x) => (x / 1000).toFixed(2)).join(', ')} s` : ''})`,
      budget: `≤ ${(budget / 1000).toFixed(1)} s`,
      pass: max <= budget,
    });
  }
  return rows;
}
