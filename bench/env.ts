/**
 * What a benchmark run starts and stops: one redis-server (no persistence), leasehold
 * server processes, the bare baseline server, and load generators, all on 127.0.0.1.
 * Everything is stopped when the run ends, however it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ServerProcess } from '../test/support/app.js';
import { freePort, RedisProcess } from '../test/support/redis.js';
import type { LoadResult, LoadSpec } from './loadWorker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export class BenchEnv {
  private readonly servers = new Set<ServerProcess>();
  private readonly children = new Set<ChildProcess>();

  private constructor(
    readonly redis: RedisProcess,
    /** `--quick`: shorter runs and fewer samples, for a run under a minute. */
    readonly quick: boolean,
  ) {
    process.once('exit', () => this.killAll());
  }

  static async start(quick: boolean): Promise<BenchEnv> {
    return new BenchEnv(await RedisProcess.start({ aof: false }), quick);
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
