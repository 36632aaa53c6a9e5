/**
 * What a benchmark run starts and stops: one redis-server (no persistence), leasehold
 * server processes, the bare baseline server, load generators, and the replicated Redis
 * (primaries, replicas, Sentinels of test/support/topology.ts) of the replication
 * benchmarks, all on 127.0.0.1. Everything is stopped when the run ends, however it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ServerProcess } from '../test/support/app.js';
import { freePort, RedisProcess, stopAllRedis } from '../test/support/redis.js';
import { RedisTopology, stopAllSentinels, type TopologyOptions } from '../test/support/topology.js';
import type { LoadResult, LoadSpec } from './loadWorker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface BenchOptions {
  /** `--quick`: shorter runs and fewer samples, for a run under a minute. */
  quick: boolean;
  /** Sentinel's `down-after-milliseconds` in the failover through Sentinel; default 5000
   * (1000 with `--quick`). */
  downAfterMs?: number;
}

/** A replicated Redis for a benchmark (see test/support/topology.ts), whose replicas sync
 * at once: Redis's diskless sync otherwise waits repl-diskless-sync-delay (5 s by default)
 * for more replicas before it starts. */
export function replicatedRedis(opts: TopologyOptions): Promise<RedisTopology> {
  return RedisTopology.start({ ...opts, args: ['--repl-diskless-sync-delay', '0'] });
}

export async function stopReplicatedRedis(topology: RedisTopology): Promise<void> {
  await Promise.all([...topology.sentinels.map((s) => s.stop()), ...topology.nodes.map((n) => n.stop())]);
}

export class BenchEnv {
  private readonly servers = new Set<ServerProcess>();
  private readonly children = new Set<ChildProcess>();

  /** `--quick`: shorter runs and fewer samples, for a run under a minute. */
  readonly quick: boolean;
  readonly downAfterMs: number;

  private constructor(
    readonly redis: RedisProcess,
    opts: BenchOptions,
  ) {
    this.quick = opts.quick;
    this.downAfterMs = opts.downAfterMs ?? (opts.quick ? 1000 : 5000);
    process.once('exit', () => this.killAll());
  }

  static async start(opts: boolean | BenchOptions): Promise<BenchEnv> {
    return new BenchEnv(await RedisProcess.start({ aof: false }), typeof opts === 'boolean' ? { quick: opts } : opts);
  }

  /** A leasehold server process on this run's Redis; of the tree in `cwd`, if given. */
  async server(env: Record<string, string> = {}, cwd?: string): Promise<ServerProcess> {
    const s = await ServerProcess.start(null, { LOG_LEVEL: 'warn', REDIS_URL: this.redis.url, ...env }, cwd);
    this.servers.add(s);
    return s;
  }

  async stopServer(s: ServerProcess): Promise<void> {
    this.servers.delete(s);
    await s.signal('SIGTERM');
  }

  /** The bare Fastify baseline, answering a JSON body of `bodyBytes` bytes at `path` (a
   * path of a leasehold server): its URL for that path. */
  async bare(bodyBytes: number, path: string): Promise<{ url: string; stop: () => void }> {
    const port = await freePort();
    const child = await this.node('bench/bare.ts', [], { PORT: String(port), BODY_BYTES: String(bodyBytes) }, 'ready');
    return { url: `http://127.0.0.1:${port}${path}`, stop: () => this.kill(child) };
  }

  /** Runs autocannon in a process of its own and answers what it measured. */
  async load(spec: LoadSpec): Promise<LoadResult> {
    let out = '';
    // The spec goes by stdin: a thousand renew bodies exceed what an argument may hold.
    const child = this.spawnNode('bench/loadWorker.ts', [], {}, 'pipe');
    child.stdin!.end(JSON.stringify(spec));
    child.stdout!.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    this.children.delete(child);
    if (code !== 0) throw new Error(`load generator exited with ${code}`);
    return JSON.parse(out) as LoadResult;
  }

  /** A node script of this repository (through tsx), tracked so that it is stopped at the
   * end; with `readyLine`, answered once it printed that line. */
  async node(script: string, args: string[], env: Record<string, string>, readyLine?: string): Promise<ChildProcess> {
    const child = this.spawnNode(script, args, env);
    if (readyLine) {
      const lines = createInterface({ input: child.stdout! });
      await new Promise<void>((resolve, reject) => {
        lines.on('line', (l) => l === readyLine && resolve());
        child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
      });
    }
    return child;
  }

  kill(child: ChildProcess): void {
    this.children.delete(child);
    child.kill('SIGKILL');
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.servers].map((s) => s.kill()));
    this.killAll();
    await this.redis.stop();
    // Whatever a replication benchmark left running when it failed (each stops its own
    // otherwise): every Redis and Sentinel the harness started in this process.
    await stopAllSentinels();
    await stopAllRedis();
  }

  private spawnNode(script: string, args: string[], env: Record<string, string>, stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: [stdin, 'pipe', 'inherit'],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  private killAll(): void {
    for (const s of this.servers) void s.kill();
    for (const c of this.children) c.kill('SIGKILL');
  }
}
