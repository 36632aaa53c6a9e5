/**
 * The processes of a chaos run and what the harness knows of them live. A run starts one
 * topology (`--topology`), made of setups, each a Redis (or a replicated one), leasehold
 * server replicas and their cluster:
 *
 *   single    two setups side by side:
 *             aof       Redis with AOF (`appendfsync always`); a1 direct, a2 and a3 through
 *                       link proxies (slow link, blackhole); contenders for dispatcher,
 *                       resourcemanager and one job's job manager.
 *             volatile  Redis without persistence (its kill loses the data); b1 and b2
 *                       direct; contenders for dispatcher and one job's job manager.
 *   sentinel  replicated: a primary, a replica and three Sentinels; r1 and r2 find the
 *             primary through the Sentinels and wait for one replica to hold every write
 *             (REDIS_MIN_REPLICAS_ACK=1).
 *   restore   restored: a Redis without persistence that faults restart from an older
 *             snapshot; s1 and s2 direct.
 *   logcut    cutoff: a Redis with AOF and a change log of CHANGE_LOG_SIZE entries; c1 and
 *             c2 direct, c3 through a link proxy and as a Redis user of its own, so that its
 *             link can be cut (its connections killed, and what Redis sends it lost).
 *   cluster   shard1, shard2, shard3: a Redis Cluster of three primaries, each with a
 *             replica, and a leasehold cluster on each shard at first (its id chosen so
 *             that its hash tag lands there; a fault may move it); k1 and k2 serve all three
 *             (REDIS_CLUSTER_NODES) and wait for one replica to hold every write
 *             (REDIS_MIN_REPLICAS_ACK=1), as the Sentinel lane's servers do.
 *
 * Each setup has two contender processes, each with a contender for every component of the
 * setup (as a Flink JobManager process hosts several), so every component has two
 * contenders; one watcher process per setup follows every replica of it. Everything
 * started here is stopped by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { LeaseholdClient } from '../src/client/index.js';
import { RedisProcess, stopAllRedis } from '../test/support/redis.js';
import { sharedNow, type HistoryRecord, type Holder, type SetupInfo, type SetupName, type TopologyName } from './history.js';
import { TcpProxy } from '../test/support/proxy.js';
import { RedisTopology, stopAllSentinels } from '../test/support/topology.js';
import { clusterIdOn, RedisClusterProcess } from '../test/support/redisCluster.js';
import { ServerProcess } from '../test/support/app.js';
import type { WorkerConfig } from './worker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Checkpoints each job keeps (the most a request may ask for). */
export const MAX_RETAINED = 1000;

/** The change log keeps every change of a run (the checker reads it back as the truth);
 * heartbeats often, so that a dead socket is noticed within the run. */
const SERVER_ENV = {
  LOG_LEVEL: 'warn',
  CHANGE_LOG_SIZE: '100000',
  WS_HEARTBEAT_MS: '2000',
};

/** The change log of the logcut topology: the smallest the server takes, so that a link cut
 * for a few seconds misses more changes than it holds. */
export const SHORT_CHANGE_LOG = 10;

/** The Redis user (and password) of the server whose link the logcut topology cuts:
 * `CLIENT KILL USER` then ends its connections and no other's. */
export const CUT_USER = { name: 'cutoff', password: 'cutoff-link' };

/** The component that the logcut topology's harness leads and resigns itself, to push many
 * changes through while a link is cut. */
export const CHURN_COMPONENT = 'rest';

/** A replica's full sync starts at once, rather than after Redis's default of five seconds
 * (which waits for more replicas to share the transfer: there is one). */
export const fastSync = (r: Redis) => r.config('SET', 'repl-diskless-sync-delay', '0');

/** The cluster topology's cluster-node-timeout: a primary paused longer is failed over. Above
 * the tests' 1 s, so that a busy two-core machine does not fail nodes over on its own. */
export const CLUSTER_NODE_TIMEOUT_MS = 1500;

/** TTL per component: 1–2 s. */
const TTL: Record<string, number> = { dispatcher: 1500, resourcemanager: 1000, jobmanager: 2000 };
export const MAX_TTL_MS = 2000;

/** With five replicas and a dozen other processes starting on two cores, a server's start
 * can take much longer than a test's. */
export const READY_TIMEOUT_MS = 90_000;

export function ttlOf(component: string): number {
  return TTL[component.split('/')[0]];
}

export interface ServerNode {
  name: string;
  setup: SetupName;
  process: ServerProcess;
  proxy: TcpProxy | null;
}

export interface Worker {
  proc: string;
  setup: SetupName;
  role: 'contender' | 'watcher';
  server: string;
  /** component → contenderId of its contenders. */
  contenders: Record<string, string>;
  child: ChildProcess;
  exited: Promise<void>;
  alive: boolean;
  /** SIGSTOPped by a fault. */
  stopped: boolean;
  /** Per component, its leadership as its records say: session and end of validity. */
  leading: Map<string, { session: string; until: number }>;
  idle: boolean;
}

export interface SetupRuntime {
  name: SetupName;
  info: SetupInfo;
  /** The Redis the harness talks to: a replicated setup's primary as of its last failover. */
  redis: RedisProcess;
  /** A replicated setup's Redis processes and Sentinels. */
  replicated: RedisTopology | null;
}

/** The Redis key hash tag of a setup's cluster: the slot it lives on. */
export const hashTag = (info: SetupInfo) => `{${info.clusterId}}`;

export class Topology {
  readonly records: HistoryRecord[] = [];
  readonly servers: ServerNode[] = [];
  readonly workers = new Map<string, Worker>();
  readonly setups = new Map<SetupName, SetupRuntime>();
  /** Per watcher and server: the leaders it knows (folded from its records). */
  readonly watched = new Map<string, Map<string, string | null>>();
  private readonly proxies: TcpProxy[] = [];
  private spawned = 0;
  private stopping = false;
  /** Lines that were not JSON (a record cut by kill -9). */
  badLines = 0;
  /** Each server's DATA_DIR (its floors file), removed by `stop()`. */
  private readonly dataDirs: string[] = [];
  /** The cluster topology's Redis Cluster. */
  redisCluster: RedisClusterProcess | null = null;
  /** Told of what the Sentinels announce, as a line for the run's log. */
  onSentinelEvent: (line: string) => void = () => {};
  private readonly subscribers: Redis[] = [];

  constructor(readonly name: TopologyName = 'single') {}

  /** Starts everything; `stop()` stops what it started, even while this runs. */
  async launch(): Promise<void> {
    const tag = randomBytes(4).toString('hex');
    const job = () => `jobmanager/${randomBytes(16).toString('hex')}`;
    if (this.name === 'single') {
      const [redisA, redisB] = await Promise.all([RedisProcess.start({ aof: true }), RedisProcess.start({ aof: false })]);
      this.setups.set('aof', {
        name: 'aof',
        redis: redisA,
        replicated: null,
        info: { clusterId: `chaos-aof-${tag}`, persistent: true, durability: 'aof', servers: ['a1', 'a2', 'a3'], components: ['dispatcher', 'resourcemanager', job()] },
      });
      this.setups.set('volatile', {
        name: 'volatile',
        redis: redisB,
        replicated: null,
        info: { clusterId: `chaos-vol-${tag}`, persistent: false, durability: 'none', servers: ['b1', 'b2'], components: ['dispatcher', job()] },
      });
      const pa2 = await this.proxy(redisA.port);
      const pa3 = await this.proxy(redisA.port);
      for (const [name, setup, proxy] of [['a1', 'aof', null], ['a2', 'aof', pa2], ['a3', 'aof', pa3], ['b1', 'volatile', null], ['b2', 'volatile', null]] as const) {
        await this.server(name, setup, proxy);
      }
    } else if (this.name === 'sentinel') {
      const replicated = await RedisTopology.start({ replicas: 1, sentinels: 3, downAfterMs: 1000, failoverTimeoutMs: 3000 });
      for (const node of replicated.nodes) await this.redisOn(node.port, fastSync);
      this.setups.set('replicated', {
        name: 'replicated',
        redis: replicated.nodes[0],
        replicated,
        info: { clusterId: `chaos-rep-${tag}`, persistent: true, durability: 'replicated', servers: ['r1', 'r2'], components: ['dispatcher', 'resourcemanager', job()] },
      });
      // Found through the Sentinels; every write waits for the replica (a fixed 1: with
      // auto, a primary whose replica is cut off would acknowledge alone).
      this.followSentinel('replicated', replicated.sentinels[0].port);
      const env = { ...replicated.env, REDIS_MIN_REPLICAS_ACK: '1' };
      for (const name of ['r1', 'r2']) await this.server(name, 'replicated', null, env);
    } else if (this.name === 'cluster') {
      const cluster = (this.redisCluster = await RedisClusterProcess.start({ nodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS }));
      for (const node of cluster.nodes) await this.redisOn(node.port, fastSync);
      const names = ['shard1', 'shard2', 'shard3'] as const;
      for (const [i, primary] of (await cluster.primaries()).entries()) {
        const clusterId = await clusterIdOn(cluster, primary, `chaos-sh${i + 1}-${tag}`);
        this.setups.set(names[i], {
          name: names[i],
          redis: primary,
          replicated: null,
          info: { clusterId, persistent: true, durability: 'replicated', servers: ['k1', 'k2'], components: ['dispatcher', job()] },
        });
      }
      // Each server serves every setup: its node names the first.
      const env = { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_MIN_REPLICAS_ACK: '1' };
      for (const name of ['k1', 'k2']) await this.server(name, 'shard1', null, env);
    } else if (this.name === 'restore') {
      const redis = await RedisProcess.start({ aof: false });
      this.setups.set('restored', {
        name: 'restored',
        redis,
        replicated: null,
        info: { clusterId: `chaos-rst-${tag}`, persistent: false, durability: 'restored', servers: ['s1', 's2'], components: ['dispatcher', job()] },
      });
      for (const name of ['s1', 's2']) await this.server(name, 'restored', null);
    } else {
      const redis = await RedisProcess.start({ aof: true });
      await this.redisOn(redis.port, (r) => r.call('ACL', 'SETUSER', CUT_USER.name, 'on', `>${CUT_USER.password}`, '~*', '&*', '+@all'));
      this.setups.set('cutoff', {
        name: 'cutoff',
        redis,
        replicated: null,
        info: { clusterId: `chaos-cut-${tag}`, persistent: true, durability: 'aof', changeLogSize: SHORT_CHANGE_LOG, servers: ['c1', 'c2', 'c3'], components: ['dispatcher', job()] },
      });
      const env = { CHANGE_LOG_SIZE: String(SHORT_CHANGE_LOG) };
      const proxy = await this.proxy(redis.port);
      await this.server('c1', 'cutoff', null, env);
      await this.server('c2', 'cutoff', null, env);
      await this.server('c3', 'cutoff', proxy, { ...env, REDIS_URL: `redis://${CUT_USER.name}:${CUT_USER.password}@127.0.0.1:${proxy.port}` });
    }
    // Every process starts at once: contenders and watchers retry until their server is up.
    for (const setup of this.setups.values()) {
      const servers = setup.info.servers;
      this.spawnWatcher(setup.name);
      for (let n = 0; n < 2; n++) this.spawnContenders(setup.name, servers[n % servers.length]);
    }
    await Promise.all(this.servers.map((s) => s.process.launch(READY_TIMEOUT_MS)));
  }

  /** Records what the Sentinel on `port` announces of the primary: its failovers, and its
   * views of nodes down and up, the harness's faults' and any other. */
  private followSentinel(setup: SetupName, port: number): void {
    const sub = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: null, retryStrategy: () => 200 });
    this.subscribers.push(sub);
    sub.on('error', () => {});
    sub.on('pmessage', (_pattern: string, event: string, detail: string) => {
      this.push({ k: 'sentinel', t: sharedNow(), setup, event, detail });
      this.onSentinelEvent(`sentinel: ${event} ${detail}`);
    });
    void sub.psubscribe('+switch-master', '+sdown', '-sdown', '+odown', '-odown', '+failover-state-*', '+convert-to-slave').catch(() => {});
  }

  private async proxy(port: number): Promise<TcpProxy> {
    const p = await TcpProxy.start(port);
    this.proxies.push(p);
    if (this.stopping) await p.close();
    return p;
  }

  /** A server of the setup, on a port of its own, with a DATA_DIR of its own (its floors
   * survive its own restarts, and are no other server's); not started yet. `env` overrides
   * how it finds Redis and the rest. */
  private async server(name: string, setup: SetupName, proxy: TcpProxy | null, env: Record<string, string> = {}): Promise<void> {
    const redisUrl = proxy ? `redis://127.0.0.1:${proxy.port}` : this.setups.get(setup)!.redis.url;
    const dataDir = mkdtempSync(join(tmpdir(), `leasehold-chaos-${name}-`));
    this.dataDirs.push(dataDir);
    // With REDIS_SENTINELS, the URL's host and port are not used.
    const proc = await ServerProcess.create({ ...SERVER_ENV, DATA_DIR: dataDir, REDIS_URL: redisUrl, ...env });
    this.servers.push({ name, setup, proxy, process: proc });
  }

  serverNode(name: string): ServerNode {
    return this.servers.find((s) => s.name === name)!;
  }

  setup(name: SetupName): SetupRuntime {
    return this.setups.get(name)!;
  }

  push(r: HistoryRecord): void {
    this.records.push(r);
  }

  /** A new contender process for every component of the setup; `contenderIds` (component
   * → id) default to new ones. */
  spawnContenders(setup: SetupName, server: string, contenderIds: Record<string, string> = {}): Worker {
    const proc = `${setup}:p${++this.spawned}`;
    const components = this.setup(setup).info.components;
    const ids = Object.fromEntries(components.map((c) => [c, contenderIds[c] ?? `${proc}-${c.split('/')[0]}-${randomBytes(3).toString('hex')}`]));
    const cfg: WorkerConfig = {
      mode: 'contender',
      proc,
      url: this.serverNode(server).process.url,
      clusterId: this.setup(setup).info.clusterId,
      contenders: components.map((component) => ({ component, contenderId: ids[component], ttlMs: ttlOf(component) })),
      maxRetained: MAX_RETAINED,
    };
    return this.spawnWorker(cfg, { setup, role: 'contender', server, contenders: ids });
  }

  private spawnWatcher(setup: SetupName): Worker {
    const proc = `${setup}:watcher`;
    const servers = this.setup(setup).info.servers.map((name) => ({ name, url: this.serverNode(name).process.url }));
    return this.spawnWorker({ mode: 'watcher', proc, clusterId: this.setup(setup).info.clusterId, servers }, { setup, role: 'watcher', server: '*', contenders: {} });
  }

  private spawnWorker(cfg: WorkerConfig, meta: Pick<Worker, 'setup' | 'role' | 'server' | 'contenders'>): Worker {
    if (this.stopping) throw new Error('stopping');
    const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/worker.ts', JSON.stringify(cfg)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const w: Worker = { proc: cfg.proc, ...meta, child, alive: true, stopped: false, leading: new Map(), idle: false, exited: Promise.resolve() };
    w.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        w.alive = false;
        this.push({ k: 'exit', t: sharedNow(), proc: w.proc, code, signal });
        resolve();
      }),
    );
    child.stdin!.on('error', () => {});
    child.stderr!.on('data', (d) => {
      if (!this.stopping) process.stderr.write(`[${cfg.proc}] ${d}`);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => this.ingest(w, line));
    this.workers.set(w.proc, w);
    this.push({ k: 'spawn', t: sharedNow(), proc: w.proc, setup: meta.setup, role: meta.role, server: meta.server, contenders: meta.contenders });
    return w;
  }

  private ingest(w: Worker, line: string): void {
    let r: HistoryRecord;
    try {
      r = JSON.parse(line);
    } catch {
      this.badLines++;
      return;
    }
    this.push(r);
    if (r.k === 'grant') w.leading.set(r.component, { session: r.session, until: r.until });
    else if (r.k === 'valid') {
      const l = w.leading.get(r.component);
      if (l?.session === r.session) l.until = Math.max(l.until, r.until);
    } else if (r.k === 'revoke') w.leading.delete(r.component);
    else if (r.k === 'idle') w.idle = true;
    else if (r.k === 'ws') this.fold(`${r.proc}@${r.server}`, r);
  }

  private fold(key: string, r: Extract<HistoryRecord, { k: 'ws' }>): void {
    let state = this.watched.get(key);
    if (!state) this.watched.set(key, (state = new Map()));
    if (r.type === 'snapshot') {
      state.clear();
      for (const [c, l] of Object.entries(r.leaders)) state.set(c, l?.s ?? null);
    } else {
      state.set(r.component, r.leader?.s ?? null);
    }
  }

  /** The live contender that believes it leads `component` now, if any. */
  leaderOf(setup: SetupName, component: string): Worker | null {
    const now = sharedNow();
    for (const w of this.workers.values()) {
      const l = w.leading.get(component);
      if (w.setup === setup && w.alive && !w.stopped && l && l.until > now) return w;
    }
    return null;
  }

  /** kill -9 a worker and wait for its exit. */
  async killWorker(w: Worker): Promise<void> {
    if (w.alive) w.child.kill('SIGKILL');
    await w.exited;
  }

  /** Every contender stops writing (keeping its leadership); resolves once all are idle. */
  async idleContenders(timeoutMs: number): Promise<boolean> {
    const live = [...this.workers.values()].filter((w) => w.role === 'contender' && w.alive);
    for (const w of live) w.child.stdin!.write('idle\n');
    const deadline = sharedNow() + timeoutMs;
    while (live.some((w) => w.alive && !w.idle)) {
      if (sharedNow() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  }

  /** The leaders a server answers for a setup's cluster, by component. */
  async leadersOf(server: ServerNode, setup: SetupName = server.setup): Promise<{ index: number; leaders: Record<string, Holder | null> }> {
    const cluster = this.client(server).cluster(this.setup(setup).info.clusterId);
    const state = await cluster.leaders();
    const leaders: Record<string, Holder | null> = {};
    for (const { component, leader } of state.leaders) {
      leaders[component] = leader && { c: leader.contenderId, s: leader.sessionId, t: leader.fencingToken, a: leader.address };
    }
    return { index: state.index, leaders };
  }

  client(server: ServerNode): LeaseholdClient {
    return new LeaseholdClient({ url: server.process.url, timeoutMs: 5000 });
  }

  /** A connection to a setup's Redis (its primary; on a Redis Cluster, the one that serves
   * its cluster's slot now) for the harness's own commands (never retried). */
  async redisCommand<T>(setup: SetupName, fn: (r: Redis) => Promise<T>): Promise<T> {
    const s = this.setup(setup);
    return this.redisOn(this.redisCluster ? (await this.redisCluster.primaryOf(hashTag(s.info))).port : s.redis.port, fn);
  }

  /** A connection to the Redis on `port` for one of the harness's own commands. */
  async redisOn<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
    const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    r.on('error', () => {});
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  }

  /** Heals every link and wakes every stopped process. */
  healAll(): void {
    for (const p of this.proxies) {
      p.setDelay(0);
      p.restore();
    }
    for (const s of this.setups.values()) for (const node of s.replicated?.nodes ?? [s.redis]) node.resume();
    for (const node of this.redisCluster?.nodes ?? []) node.resume();
    for (const w of this.workers.values()) {
      if (w.stopped && w.alive) w.child.kill('SIGCONT');
      w.stopped = false;
    }
  }

  /** Stops everything started; safe to call more than once, and from an exit handler
   * (every kill is sent synchronously before the first wait). */
  async stop(): Promise<void> {
    this.stopping = true;
    const waits: Array<Promise<unknown>> = [];
    for (const w of this.workers.values()) {
      if (w.alive) w.child.kill('SIGKILL');
      waits.push(w.exited);
    }
    for (const s of this.servers) waits.push(s.process.kill());
    waits.push(stopAllRedis(), stopAllSentinels());
    for (const p of this.proxies) waits.push(p.close());
    for (const sub of this.subscribers) sub.disconnect();
    await Promise.allSettled(waits);
    for (const dir of this.dataDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}
