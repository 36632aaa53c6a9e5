/**
 * Real redis-server processes for tests: each on a free port with its own data folder,
 * AOF on or off, and the means to kill (-9), pause (SIGSTOP), resume and restart it.
 * Every process started here is stopped when the test file ends, even when it fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';

/** A test's own connection to the redis-server (or Sentinel) on `port`, for a question or
 * two: no retries, and its errors (a node just killed) are the caller's to see in the
 * answer, not unhandled events; `commandTimeoutMs` for a node that may be paused. */
export function nodeConnection(port: number, commandTimeoutMs?: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null, commandTimeout: commandTimeoutMs });
  c.on('error', () => {});
  return c;
}

/** `f` over a nodeConnection of its own, closed after. */
export async function askNode<T>(port: number, f: (c: Redis) => Promise<T>, commandTimeoutMs?: number): Promise<T> {
  const c = nodeConnection(port, commandTimeoutMs);
  try {
    return await f(c);
  } finally {
    c.disconnect();
  }
}

const running = new Set<RedisProcess>();
process.on('exit', () => {
  for (const r of running) r.child?.kill('SIGKILL');
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.write('PING\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface RedisProcessOptions {
  /** Append-only file on (durable) or no persistence at all. */
  aof?: boolean;
  /** More arguments of redis-server (TLS, say). */
  args?: string[];
}

export class RedisProcess {
  child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), 'leasehold-redis-'));

  private constructor(
    readonly port: number,
    readonly aof: boolean,
    private readonly extraArgs: string[],
  ) {}

  static async start(opts: RedisProcessOptions = {}): Promise<RedisProcess> {
    const r = new RedisProcess(await freePort(), opts.aof ?? false, opts.args ?? []);
    running.add(r);
    await r.launch();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', ''];
    args.push('--appendonly', this.aof ? 'yes' : 'no', '--appendfsync', 'always', ...this.extraArgs);
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    const child = this.child;
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    await waitForPort(this.port, 10_000);
  }

  /** kill -9: whatever was not persisted is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts it again on the same port and folder (with AOF it reloads its data). */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  async stop(): Promise<void> {
    this.resume();
    await this.kill();
    running.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Stops every redis-server this file started. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

/** Every key matching `pattern`, by SCAN (never KEYS), sorted, each once: SCAN may return a
 * key twice while the keyspace is rehashed. On a Redis Cluster client, SCAN on every primary. */
export async function scanKeys(redis: Pick<Redis, 'scan'>, pattern: string): Promise<string[]> {
  if (redis instanceof Cluster) {
    const perNode = await Promise.all(redis.nodes('master').map((n) => scanKeys(n, pattern)));
    return [...new Set(perNode.flat())].sort();
  }
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    batch.forEach((k) => found.add(k));
    cursor = next;
  } while (cursor !== '0');
  return [...found].sort();
}
