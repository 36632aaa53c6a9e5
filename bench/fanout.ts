/**
 * Websocket fan-out and the memory of idle subscribers.
 *
 * Fan-out: one server process; its subscribers live in separate processes
 * (bench/subscribers.ts), so that receiving does not share the server's event loop. The
 * bench alternately grants and resigns the resource manager's lease over HTTP, stamping the
 * time just before it sends the request, and takes for each change the time until the last
 * subscriber of all received it. Design §8: 5,000 websocket subscribers all receive a change
 * within 150 ms. Changes are measured as they come, including those that meet the server's
 * websocket heartbeat (which pings a sixteenth of the sockets at a time).
 *
 * Memory: a fresh server process; its RSS (`process_resident_memory_bytes` of /metrics)
 * before, and after 10,000 job-manager leases and 5,000 idle websocket subscribers.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { BenchEnv } from './env.js';
import { closeConnections, post } from './post.js';
import { mib, ms, summarize, type Row } from './stats.js';
import type { Report } from './subscribers.js';
import { sleep } from '../test/support/app.js';

/** Subscriber processes per fan-out. */
const PROCESSES = 4;
/** Changes made before the measured ones, to warm up every path. */
const WARMUP = 5;
/** How long the bench waits for every process to report a change. */
const CHANGE_TIMEOUT_MS = 10_000;
const FANOUT_BUDGET_MS = 150;

const now = () => performance.timeOrigin + performance.now();
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

export async function fanoutBenches(env: BenchEnv): Promise<Row[]> {
  const changes = env.quick ? 10 : 100;
  const rows: Row[] = [];
  try {
    const server = await env.server();
    try {
      rows.push(await fanout(env, server.url, 1000, changes));
      rows.push(await fanout(env, server.url, 5000, changes));
    } finally {
      await server.kill();
    }
    rows.push(await memory(env, 5000, 10_000));
    return rows;
  } finally {
    closeConnections();
  }
}

// ---- subscriber processes

/** The subscriber processes of one benchmark, and what they report. */
class Subscribers {
  private readonly reports: Array<Map<number, Report>>;
  private readonly waiters = new Set<() => void>();
  private exited: string | null = null;

  private constructor(
    private readonly env: BenchEnv,
    private readonly children: ChildProcess[],
  ) {
    this.reports = children.map(() => new Map());
  }

  /** `count` subscribers of `wsUrl(i)` for process `i`, spread over `PROCESSES` processes;
   * answered once all of them are connected and have their snapshot. */
  static async start(env: BenchEnv, count: number, wsUrl: (i: number) => string): Promise<Subscribers> {
    const shares = Array.from({ length: PROCESSES }, (_, i) => Math.floor(count / PROCESSES) + (i < count % PROCESSES ? 1 : 0));
    const children = await Promise.all(shares.map((n, i) => env.node('bench/subscribers.ts', [wsUrl(i), String(n)], {})));
    const subs = new Subscribers(env, children);
    try {
      await Promise.all(children.map((c, i) => subs.follow(c, i)));
    } catch (err) {
      subs.stop();
      throw err;
    }
    return subs;
  }

  /** Reads one process's lines; settles once it printed `ready`. */
  private follow(child: ChildProcess, i: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let ready = false;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') {
          ready = true;
          resolve();
        } else if (line.startsWith('{')) {
          const r = JSON.parse(line) as Report;
          this.reports[i].set(r.index, r);
          this.waiters.forEach((w) => w());
        }
      });
      child.once('exit', (code) => {
        this.exited = `a subscriber process exited (${code})`;
        this.waiters.forEach((w) => w());
        if (!ready) reject(new Error(this.exited));
      });
    });
  }

  /** The reports of the next change from every process: the first change with an index
   * above `after`, once every process reported it; null for a process that did not report it
   * within the time allowed. */
  async next(after: number): Promise<{ index: number; reports: Array<Report | null> } | null> {
    const deadline = Date.now() + CHANGE_TIMEOUT_MS;
    for (;;) {
      if (this.exited) throw new Error(this.exited);
      const index = Math.min(...this.reports.flatMap((r) => [...r.keys()].filter((i) => i > after)));
      if (Number.isFinite(index)) {
        const got = this.reports.map((r) => r.get(index) ?? null);
        if (got.every((r) => r !== null) || Date.now() >= deadline) return { index, reports: got };
      } else if (Date.now() >= deadline) return null;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        this.waiters.add(done);
      });
    }
  }

  stop(): void {
    for (const c of this.children) this.env.kill(c);
  }
}

// ---- fan-out

async function fanout(env: BenchEnv, url: string, size: number, changes: number): Promise<Row> {
  const name = `fan-out to ${size.toLocaleString('en-US')}`;
  const cluster = `fanout-${hex(6)}`;
  const wsUrl = `${url.replace(/^http/, 'ws')}/v1/clusters/${cluster}/watch?components=resourcemanager`;
  const subs = await Subscribers.start(env, size, () => wsUrl);
  const samples: number[] = [];
  /** Per change, the median subscriber's receipt latency (informative). */
  const medians: number[] = [];
  let missed = 0;
  try {
    const watching = await watchers(url);
    if (watching < size) throw new Error(`${name}: the server counts ${watching} watchers`);
    const base = `/v1/clusters/${cluster}/leaders/resourcemanager`;
    let session: string | null = null;
    let seen = 0;
    for (let i = 0; i < WARMUP + changes; i++) {
      await sleep(50);
      const sent = now();
      if (session === null) {
        const r = await post(url + `${base}/campaign`, { contenderId: 'bench', ttlMs: 300_000 });
        if (r.status !== 200 || !r.body.granted) throw new Error(`campaign: ${r.status} ${JSON.stringify(r.body)}`);
        session = r.body.leader.sessionId as string;
      } else {
        const r = await post(url + `${base}/resign`, { contenderId: 'bench', sessionId: session });
        if (r.status !== 200 || !r.body.released) throw new Error(`resign: ${r.status} ${JSON.stringify(r.body)}`);
        session = null;
      }
      const got = await subs.next(seen);
      if (got) seen = got.index;
      const reports = got?.reports.every((r) => r !== null) ? (got.reports as Report[]) : null;
      const complete = reports !== null && reports.every((r) => r.n === r.of) && reports.reduce((a, r) => a + r.n, 0) >= size;
      if (i >= WARMUP) {
        if (!complete) missed++;
        else {
          samples.push(Math.max(...reports.map((r) => r.last)) - sent);
          medians.push(weightedMedian(reports) - sent);
        }
      }
    }
  } finally {
    subs.stop();
  }
  const s = summarize(samples.length ? samples : [Infinity]);
  const m = summarize(medians.length ? medians : [Infinity]);
  const row: Row = {
    name,
    figure:
      `all received: p99 ${ms(s.p99)} (max ${ms(s.max)}, n=${s.n}); median subscriber p50 ${ms(m.p50)}` +
      (missed ? `; ${missed} change(s) not received by all` : ''),
    p50Ms: s.p50,
    p99Ms: s.p99,
  };
  if (size === 5000) {
    row.budget = `p99 ≤ ${FANOUT_BUDGET_MS} ms`;
    row.pass = missed === 0 && s.p99 <= FANOUT_BUDGET_MS;
  }
  return row;
}

/** The median receipt time over all processes, approximated by the reports' medians
 * weighted by their sizes. */
function weightedMedian(reports: Report[]): number {
  const sorted = [...reports].sort((a, b) => a.p50 - b.p50);
  const total = sorted.reduce((a, r) => a + r.n, 0);
  let acc = 0;
  for (const r of sorted) {
    acc += r.n;
    if (acc * 2 >= total) return r.p50;
  }
  return sorted[sorted.length - 1].p50;
}

// ---- memory

async function memory(env: BenchEnv, subscribers: number, leases: number): Promise<Row> {
  const server = await env.server();
  try {
    return await memoryOf(env, server.url, subscribers, leases);
  } finally {
    await server.kill();
  }
}

async function memoryOf(env: BenchEnv, url: string, subscribers: number, leases: number): Promise<Row> {
  await sleep(500);
  const before = await metric(url, 'process_resident_memory_bytes');
  const heapBefore = await metric(url, 'nodejs_heap_size_used_bytes');
  const clusters = Array.from({ length: PROCESSES }, () => `mem-${hex(6)}`);
  // Idle subscribers, watching the singletons of those clusters (as task managers do)…
  const starting = Subscribers.start(
    env,
    subscribers,
    (i) => `${url.replace(/^http/, 'ws')}/v1/clusters/${clusters[i]}/watch?components=resourcemanager,dispatcher`,
  );
  // …while job managers take leases over those clusters, at a bounded concurrency.
  let next = 0;
  const campaigning = Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < leases) {
        const i = next++;
        const path = `/v1/clusters/${clusters[i % clusters.length]}/leaders/jobmanager/${hex(16)}/campaign`;
        const address = `akka.tcp://flink@10.0.${(i >> 8) & 255}.${i & 255}:6123/user/rpc/jobmanager_${i}`;
        const r = await post(url + path, { contenderId: `jm-${i}`, ttlMs: 300_000, address });
        if (r.status !== 200 || !r.body.granted) throw new Error(`campaign: ${r.status} ${JSON.stringify(r.body)}`);
      }
    }),
  );
  const [subs, campaigned] = await Promise.allSettled([starting, campaigning]);
  try {
    if (subs.status === 'rejected') throw subs.reason;
    if (campaigned.status === 'rejected') throw campaigned.reason;
    const watching = await watchers(url);
    if (watching < subscribers) throw new Error(`memory: the server counts ${watching} watchers`);
    await sleep(1000);
    const after = await metric(url, 'process_resident_memory_bytes');
    const heap = await metric(url, 'nodejs_heap_size_used_bytes');
    return {
      name: `memory: ${subscribers.toLocaleString('en-US')} idle subscribers + ${leases.toLocaleString('en-US')} leases`,
      figure: `RSS ${mib(after)} (+${mib(after - before)} over ${mib(before)} fresh); heap used ${mib(heap)} (+${mib(heap - heapBefore)})`,
    };
  } finally {
    if (subs.status === 'fulfilled') subs.value.stop();
  }
}

// ---- metrics

async function metric(url: string, name: string): Promise<number> {
  const text = (await (await fetch(`${url}/metrics`)).text()) as string;
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

const watchers = (url: string) => metric(url, 'leasehold_websocket_watchers');
