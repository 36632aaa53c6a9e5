/** Apps, server processes and websocket clients for tests; everything started here is
 * stopped when the test (or file) ends. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import WebSocket from 'ws';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { App } from '../../src/http/types.js';
import { freePort, RedisProcess, type RedisProcessOptions } from './redis.js';
import { RedisClusterProcess } from './redisCluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** In-process apps share the test's event loop, which some tests block on purpose: they
 * shed no load unless a test asks for it. Their DATA_DIR (where a server keeps its floors)
 * is a folder of this test process, removed when it exits. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', REDIS_HEALTH_INTERVAL_MS: '200', SHED_EVENT_LOOP_DELAY_MS: '0', DATA_DIR: testDataDir(), ...env });
}

let dataDir: string | undefined;
function testDataDir(): string {
  if (!dataDir) {
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-test-data-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    dataDir = dir;
  }
  return dataDir;
}

/** A cluster id no other test uses, so tests may share a Redis. */
export function uniqueCluster(prefix = 't'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

export function randomJobId(): string {
  return randomBytes(16).toString('hex');
}

/** REDIS_URL when given (for tests that do not kill Redis), else a redis-server of our own;
 * with LEASEHOLD_TEST_REDIS=cluster, a Redis Cluster of our own (test/support/redisCluster.ts),
 * named by its first node's URL: startApp and ServerProcess given that URL connect to the
 * whole cluster (REDIS_CLUSTER_NODES) instead. */
export async function sharedRedisUrl(): Promise<string> {
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  if (process.env.LEASEHOLD_TEST_REDIS === 'cluster') {
    sharedCluster ??= RedisClusterProcess.start();
    return `redis://127.0.0.1:${(await sharedCluster).nodes[0].port}`;
  }
  shared ??= RedisProcess.start();
  return (await shared).url;
}
let shared: Promise<RedisProcess> | undefined;
let sharedCluster: Promise<RedisClusterProcess> | undefined;

/** A Redis for a file that wants no other file's keys about but never kills, pauses nor
 * reconfigures it: a redis-server of its own; with LEASEHOLD_TEST_REDIS=cluster, the file's
 * shared Redis Cluster (each test file, a process of its own, starts its own cluster). */
export async function ownRedisUrl(): Promise<string> {
  if (process.env.LEASEHOLD_TEST_REDIS === 'cluster' && !process.env.REDIS_URL) return sharedRedisUrl();
  return (await RedisProcess.start()).url;
}

/** A Redis of a test's own, which the test may kill, pause, restart, snapshot and restore
 * (test/support/topology.ts) or reconfigure: one redis-server, or with
 * LEASEHOLD_TEST_REDIS=cluster a Redis Cluster of three primaries and no replica, so that a
 * primary killed and restarted comes back as the same node with what it persisted, as one
 * redis-server does (a failover to a replica is test/redisCluster.test.ts's). A test acts on
 * `nodeOf(clusterId)`: the redis-server that holds that leasehold cluster's keys. */
export interface OwnRedis {
  /** For startApp, ServerProcess (REDIS_URL), appRedis and connectRedis: on a Redis
   * Cluster, its first node's URL, which they turn into REDIS_CLUSTER_NODES. */
  readonly url: string;
  /** Every redis-server of it (one, or the cluster's nodes). */
  readonly nodes: RedisProcess[];
  /** Whether it is a Redis Cluster. */
  readonly cluster: boolean;
  /** The redis-server that serves a leasehold cluster's keys (its hash tag's slot). */
  nodeOf(clusterId: string): Promise<RedisProcess>;
  stop(): Promise<void>;
}

export async function ownRedis(opts: RedisProcessOptions = {}): Promise<OwnRedis> {
  if (process.env.LEASEHOLD_TEST_REDIS === 'cluster') {
    const c = await RedisClusterProcess.start({ primaries: 3, replicasPerPrimary: 0, aof: opts.aof, args: opts.args });
    const url = `redis://127.0.0.1:${c.nodes[0].port}`;
    ownClusters.set(url, c);
    return {
      url,
      nodes: c.nodes,
      cluster: true,
      // Without replicas the slot map never changes (nodes.conf keeps it across a restart):
      // a node down is still the one to act on.
      nodeOf: (clusterId) => c.ownerOf(`{${clusterId}}`),
      stop: async () => {
        ownClusters.delete(url);
        await c.stop();
      },
    };
  }
  const r = await RedisProcess.start(opts);
  return { url: r.url, nodes: [r], cluster: false, nodeOf: async () => r, stop: () => r.stop() };
}
const ownClusters = new Map<string, RedisClusterProcess>();

/** A new cluster id whose keys `node` holds (on one redis-server, any): for a test that
 * kills or empties that node and reads other clusters that lose what it lost. */
export async function clusterOn(r: OwnRedis, node: RedisProcess, prefix = 't'): Promise<string> {
  for (;;) {
    const id = uniqueCluster(prefix);
    if ((await r.nodeOf(id)) === node) return id;
  }
}

/** On a Redis Cluster, a new cluster id whose keys another redis-server holds than the one
 * holding `clusterId`'s: for a test to show that what it did to one shard left the other
 * shards' clusters alone. Null on one redis-server. */
export async function clusterElsewhere(r: OwnRedis, clusterId: string, prefix = 'elsewhere'): Promise<string | null> {
  if (!r.cluster) return null;
  const node = await r.nodeOf(clusterId);
  for (;;) {
    const id = uniqueCluster(prefix);
    if ((await r.nodeOf(id)) !== node) return id;
  }
}

/** The Redis Cluster started here that `url` names (its first node), if any. */
async function clusterNamed(url: string | undefined): Promise<RedisClusterProcess | null> {
  if (url === undefined) return null;
  const own = ownClusters.get(url);
  if (own) return own;
  if (!sharedCluster) return null;
  const cluster = await sharedCluster;
  return url === `redis://127.0.0.1:${cluster.nodes[0].port}` ? cluster : null;
}

/** The environment that reaches the Redis Cluster `url` names, if it names one. */
export async function clusterEnv(url: string | undefined): Promise<Record<string, string> | null> {
  const cluster = await clusterNamed(url);
  return cluster ? { REDIS_CLUSTER_NODES: cluster.seeds } : null;
}

/** A test's own connection to the Redis at `url`: a Cluster client (MOVED and ASK followed)
 * when `url` names the shared Redis Cluster, else a plain one. Typed as Redis: the tests use
 * only commands on keys of one hash tag, which a Cluster client routes by slot; key scans go
 * through scanKeys (redis.ts), which asks every primary. */
export async function connectRedis(url: string): Promise<Redis> {
  const cluster = await clusterEnv(url);
  const c = cluster ? new Cluster(cluster.REDIS_CLUSTER_NODES.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) }))) : new Redis(url);
  return c as unknown as Redis;
}

/** The URL of the one redis-server that holds `key`: on the shared Redis Cluster, the
 * primary serving its slot now (for a test that watches one node, MONITOR say); else `url`. */
export async function nodeUrlOf(url: string, key: string): Promise<string> {
  const cluster = await clusterNamed(url);
  return cluster ? (await cluster.primaryOf(key)).url : url;
}

/** buildApp's `config` and `redis` for an app on `url` with `env`: on the shared Redis
 * Cluster when `url` names it (REDIS_CLUSTER_NODES), else on `url`. */
export async function appRedis(url: string | undefined, env: Record<string, string> = {}): Promise<{ config: Config; redis: string | undefined }> {
  const cluster = await clusterEnv(url);
  return { config: testConfig({ ...cluster, ...env }), redis: cluster ? undefined : url };
}

/** Whether `app` is ready on every shard: on a Redis Cluster /readyz answers 200 once any
 * shard is up, and the tests want them all (`redis` is `up` only then; on one Redis, whenever
 * it is up). */
export async function readyEverywhere(app: App): Promise<boolean> {
  const r = await app.inject('/readyz');
  return r.statusCode === 200 && (r.json() as { redis: string }).redis === 'up';
}

/** Whether the app at `base` is ready and answers a consistent read of `clusterId` (one
 * that asks Redis): on a Redis Cluster, /readyz learns that a shard's node was killed only
 * at its next health check (one Redis: at once, its connection closed), while that
 * cluster's requests already fail; a test waiting for a node restarted waits for this. */
export async function servesCluster(base: string, clusterId: string): Promise<boolean> {
  const ready = await get(base, '/readyz');
  return ready.status === 200 && ready.body.redis === 'up' && (await get(base, `/v1/clusters/${clusterId}/leaders?consistent=true`)).status === 200;
}

/** `call` again while it answers 503 RedisUnavailable (a client's retry), for up to
 * `timeoutMs`: on a Redis Cluster each of a server's connections finds a restarted node
 * again on its own (ioredis makes a node's connection anew at its next slot refresh, within
 * a second), so a request may still answer that just after /readyz turned up. */
export async function untilServed<T extends { status: number; body: any }>(call: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await call();
    if (r.status !== 503 || r.body?.error !== 'RedisUnavailable' || Date.now() > deadline) return r;
    await sleep(100);
  }
}

export interface Running {
  app: App;
  /** http://127.0.0.1:port */
  url: string;
  /** ws://127.0.0.1:port */
  wsUrl: string;
  close(): Promise<void>;
}

/** An app listening on a free port, closed after the test; with `redisUrl` undefined, on
 * the Redis of the configuration (`env`: Sentinel, say). */
export async function startApp(t: TestContext | null, redisUrl: string | undefined, env: Record<string, string> = {}): Promise<Running> {
  const app = await buildApp({ ...(await appRedis(redisUrl, env)), logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  await waitFor(() => readyEverywhere(app), 10_000);
  let closed = false;
  const running: Running = {
    app,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
  t?.after(() => running.close());
  return running;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function post(base: string, path: string, body: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

export async function get(base: string, path: string): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(base + path);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** Any request: `body` goes as JSON, `raw` as application/octet-stream; a JSON answer is
 * parsed, any other answered as text. */
export async function request(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; raw?: Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: RequestInit['body'];
  if (opts.raw) {
    headers['content-type'] = 'application/octet-stream';
    body = opts.raw as Uint8Array<ArrayBuffer>;
  } else if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  const isJson = text && (res.headers.get('content-type') ?? '').includes('json');
  return { status: res.status, headers: res.headers, body: isJson ? JSON.parse(text) : text };
}

/** A websocket client that keeps every message and can wait for the next ones. */
export class Watch {
  readonly messages: any[] = [];
  closeCode: number | null = null;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()));
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  /** Opens it, or rejects with the refused upgrade's `status` and `body` (text). An upgrade
   * shed by a loaded machine (503 Overloaded, retryable by contract) is tried again, as any
   * client would: the tests run on a shared 2-core machine. */
  static async open(t: TestContext | null, url: string, headers: Record<string, string> = {}): Promise<Watch> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await Watch.openOnce(t, url, headers);
      } catch (err) {
        const shed = (err as { status?: number; body?: string }).status === 503 && /"Overloaded"/.test((err as { body?: string }).body ?? '');
        if (!shed || attempt >= 20) throw err;
        await sleep(100 * Math.min(attempt, 5));
      }
    }
  }

  private static openOnce(t: TestContext | null, url: string, headers: Record<string, string>): Promise<Watch> {
    const ws = new WebSocket(url, { headers });
    const w = new Watch(ws);
    t?.after(() => ws.terminate());
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(w));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  /** Waits until `n` messages have arrived in all, and answers them. */
  async count(n: number, timeoutMs = 5000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < n) {
      if (this.closeCode !== null) throw new Error(`socket closed (${this.closeCode}) with ${this.messages.length}/${n} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`got ${this.messages.length}/${n} messages: ${JSON.stringify(this.messages)}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
    return this.messages.slice(0, n);
  }

  /** The first message (from the start) that matches, waiting for it. */
  async find(pred: (m: any) => boolean, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (let seen = 0; ; ) {
      for (; seen < this.messages.length; seen++) if (pred(this.messages[seen])) return this.messages[seen];
      if (Date.now() > deadline) throw new Error(`no matching message in ${JSON.stringify(this.messages)}`);
      await this.count(seen + 1, deadline - Date.now()).catch(() => {});
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** The node arguments of `npm start` in the tree `cwd`, so that tests and benchmarks run
 * the server as its users do (the compiled server, V8 flags included). Like `npm start`, it
 * first runs the tree's `prestart` (which builds dist/ when it is missing or older than
 * src/), once per tree in a process: a test never runs JavaScript older than its sources,
 * and bench:compare may be given a tree that was never built. A tree without a prestart (an
 * older one, whose npm start ran the TypeScript through tsx) runs as it is. */
export function serverArgs(cwd = ROOT): string[] {
  const { scripts } = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  if (scripts.prestart && !prestarted.has(cwd)) {
    try {
      execFileSync('npm', ['run', '--silent', 'prestart'], { cwd, stdio: 'pipe', encoding: 'utf8' });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      throw new Error(`npm run prestart failed in ${cwd}:\n${stdout ?? ''}${stderr ?? ''}`);
    }
    prestarted.add(cwd);
  }
  // `exec`: the shell npm runs the script in becomes node, so a signal to npm's child reaches it.
  const [node, ...args] = scripts.start.replace(/^exec /, '').split(' ');
  if (node !== 'node') throw new Error(`npm start is not a node command: ${scripts.start}`);
  return args;
}
const prestarted = new Set<string>();

/** A real server process (as `npm start` runs it), stopped after the test. */
export class ServerProcess {
  private child: ChildProcess | null = null;
  output = '';

  private constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
    /** The tree whose server it runs (bench:compare runs other trees). */
    private readonly cwd: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The server's process id, while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Its open-file limit (`ulimit -n`), if not the test's. */
  fileLimit?: number;

  static async start(t: TestContext | null, env: Record<string, string>, cwd = ROOT, fileLimit?: number): Promise<ServerProcess> {
    const s = await ServerProcess.create(env, cwd);
    s.fileLimit = fileLimit;
    t?.after(() => s.stop());
    await s.launch();
    return s;
  }

  /** One on a free port of its own, not started yet. */
  static async create(env: Record<string, string>, cwd = ROOT): Promise<ServerProcess> {
    return new ServerProcess(await freePort(), env, cwd);
  }

  /** Starts it (again, after a kill) on its port; resolves once /readyz answers 200. A
   * start that fails is killed: nobody could stop it otherwise. */
  async launch(readyTimeoutMs = 20_000): Promise<void> {
    const [cmd, args] = this.fileLimit
      ? ['sh', ['-c', `ulimit -n ${this.fileLimit} && exec "$0" "$@"`, process.execPath, ...serverArgs(this.cwd)]]
      : [process.execPath, serverArgs(this.cwd)];
    const child = spawn(cmd, args, {
      cwd: this.cwd,
      env: { ...process.env, LOG_LEVEL: 'warn', ...this.env, ...(await clusterEnv(this.env.REDIS_URL)), PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // The tail is enough to say why; a long chaos run would otherwise keep all of it.
    const keep = (d: Buffer) => (this.output = (this.output + d).slice(-20_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (this.child !== child) throw new Error(`server :${this.port} exited at start:\n${this.output}`);
      const ready = await fetch(`${this.url}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`server :${this.port} not ready after ${readyTimeoutMs} ms:\n${this.output}`);
      }
      await sleep(50);
    }
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** Sends a signal and waits for the process to exit; answers its exit code. */
  async signal(sig: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(sig);
    return exited;
  }

  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** After a test: SIGTERM first, so that a server running its own redis-server (no
   * REDIS_URL) stops it too; SIGKILL if it has not exited within 5 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = this.signal('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
