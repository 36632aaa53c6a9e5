/**
 * Replicated Redis for tests, as real processes: a primary, replicas and Sentinels that
 * watch them, and the means to make a replica lag, fail the primary over, and restore a
 * Redis from an older snapshot. Every process started here is stopped when the test file
 * ends (stopAllRedis, and stopAllSentinels for the Sentinels), even when it fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor, type OwnRedis } from './app.js';
import { askNode, freePort, nodeConnection, RedisProcess, scanKeys } from './redis.js';

/** A connection for one question; its errors (a node just killed) are the caller's to see
 * in the answer, not unhandled events. */
const sentinels = new Set<SentinelProcess>();
process.on('exit', () => {
  for (const s of sentinels) s.child?.kill('SIGKILL');
});

export class SentinelProcess {
  child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'leasehold-sentinel-'));

  private constructor(readonly port: number) {}

  /** A Sentinel that monitors `name` at `primaryPort` with `quorum`; it marks the primary
   * down after `downAfterMs` without an answer. */
  static async start(name: string, primaryPort: number, opts: { quorum: number; downAfterMs: number; failoverTimeoutMs: number }) {
    const s = new SentinelProcess(await freePort());
    sentinels.add(s);
    const conf = join(s.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${s.port}`,
        'bind 127.0.0.1',
        `dir ${s.dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} ${opts.quorum}`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs}`,
        `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs}`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    s.child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await waitFor(async () => {
      const c = nodeConnection(s.port);
      try {
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    }, 10_000, `sentinel on ${s.port}`);
    return s;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    this.child = null;
    sentinels.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function stopAllSentinels(): Promise<void> {
  await Promise.all([...sentinels].map((s) => s.stop()));
}

export interface TopologyOptions {
  replicas?: number;
  sentinels?: number;
  /** Append-only files on the data nodes. */
  aof?: boolean;
  /** More redis-server arguments for every data node (a benchmark's sync settings, say). */
  args?: string[];
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

/** A primary, its replicas and the Sentinels that fail it over, found by `name`. */
export class RedisTopology {
  readonly name = 'leasehold';

  private constructor(
    readonly nodes: RedisProcess[],
    readonly sentinels: SentinelProcess[],
  ) {}

  static async start(opts: TopologyOptions = {}): Promise<RedisTopology> {
    const aof = opts.aof ?? false;
    const args = opts.args ?? [];
    const primary = await RedisProcess.start({ aof, args });
    const replicas: RedisProcess[] = [];
    for (let i = 0; i < (opts.replicas ?? 1); i++) {
      replicas.push(await RedisProcess.start({ aof, args: [...args, '--replicaof', '127.0.0.1', String(primary.port)] }));
    }
    const admin = nodeConnection(primary.port);
    try {
      await waitFor(async () => {
        const info = await admin.info('replication');
        return Number(/^connected_slaves:(\d+)/m.exec(info)?.[1]) === replicas.length && !/state=(wait_bgsave|send_bulk)/.test(info);
      }, 15_000, 'replicas in sync');
    } finally {
      admin.disconnect();
    }
    const count = opts.sentinels ?? 3;
    const s: SentinelProcess[] = [];
    for (let i = 0; i < count; i++) {
      s.push(
        await SentinelProcess.start('leasehold', primary.port, {
          quorum: Math.floor(count / 2) + 1,
          downAfterMs: opts.downAfterMs ?? 1000,
          failoverTimeoutMs: opts.failoverTimeoutMs ?? 3000,
        }),
      );
    }
    const topology = new RedisTopology([primary, ...replicas], s);
    // Every Sentinel must know the replicas (and the others) before a failover can pick one.
    await waitFor(async () => (await topology.sentinelView()).every((v) => v.replicas === replicas.length && v.sentinels === count - 1), 20_000, 'sentinels ready');
    return topology;
  }

  /** What each Sentinel knows: replicas and other Sentinels of the primary. */
  private async sentinelView(): Promise<Array<{ replicas: number; sentinels: number }>> {
    return Promise.all(
      this.sentinels.map(async (s) => {
        const c = nodeConnection(s.port);
        try {
          const master = (await c.call('SENTINEL', 'MASTER', this.name)) as string[];
          const field = (k: string) => Number(master[master.indexOf(k) + 1]);
          return { replicas: field('num-slaves'), sentinels: field('num-other-sentinels') };
        } finally {
          c.disconnect();
        }
      }),
    );
  }

  /** The settings that find this topology's primary through its Sentinels. */
  get env(): Record<string, string> {
    return { REDIS_SENTINELS: this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(','), REDIS_SENTINEL_NAME: this.name };
  }

  /** The port of the primary as the Sentinels name it. */
  async primaryPort(): Promise<number> {
    const c = nodeConnection(this.sentinels[0].port);
    try {
      const [, port] = (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)) as [string, string];
      return Number(port);
    } finally {
      c.disconnect();
    }
  }

  async primary(): Promise<RedisProcess> {
    const port = await this.primaryPort();
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no node on port ${port}`);
    return node;
  }

  /** Kills the primary (-9) and waits until the Sentinels name another one that answers as
   * a primary; answers the new primary. */
  async failover(timeoutMs = 30_000): Promise<RedisProcess> {
    const old = await this.primary();
    await old.kill();
    let next: RedisProcess | undefined;
    await waitFor(async () => {
      const port = await this.primaryPort();
      if (port === old.port) return false;
      next = this.nodes.find((n) => n.port === port);
      const c = nodeConnection(next!.port);
      try {
        return /^role:master/m.test(await c.info('replication'));
      } finally {
        c.disconnect();
      }
    }, timeoutMs, 'a failover');
    return next!;
  }
}

/** Cuts `replica`'s link to `primary` for good (a wrong masterauth keeps it from syncing
 * again once its link is closed): writes from now on exist on the primary alone, as with a
 * replica that lags. Answers a function that lets it sync again. */
export async function cutReplicaLink(primary: RedisProcess, replica: RedisProcess): Promise<() => Promise<void>> {
  const onReplica = nodeConnection(replica.port);
  const onPrimary = nodeConnection(primary.port);
  try {
    await onReplica.config('SET', 'masterauth', 'not-the-password');
    await onPrimary.call('CLIENT', 'KILL', 'TYPE', 'replica');
  } finally {
    onReplica.disconnect();
    onPrimary.disconnect();
  }
  return async () => {
    const c = nodeConnection(replica.port);
    try {
      await c.config('SET', 'masterauth', '');
    } finally {
      c.disconnect();
    }
  };
}

/** A copy of `node`'s data as of now (an RDB snapshot), to restore later. */
export async function snapshot(node: RedisProcess): Promise<string> {
  await askNode(node.port, (c) => c.save());
  const copy = join(node.dir, `backup-${Date.now()}.rdb`);
  copyFileSync(join(node.dir, 'dump.rdb'), copy);
  return copy;
}

/** Kills `node` and starts it again from the snapshot `copy` (a restored backup): every
 * write after the snapshot is gone. The node must run without AOF, so that it loads the RDB. */
export async function restoreSnapshot(node: RedisProcess, copy: string): Promise<void> {
  if (node.aof) throw new Error('restoreSnapshot needs a node without AOF');
  await node.kill();
  copyFileSync(copy, join(node.dir, 'dump.rdb'));
  await node.restart();
}

/** Puts the snapshot `copy` back in place while `node` keeps running (DEBUG RELOAD NOSAVE;
 * the node needs `--enable-debug-command local`): every write after the snapshot is gone,
 * yet no connection closes, so that a server learns of it only at its next health check,
 * as behind a proxy that switched to a lagging replica. */
export async function reloadSnapshot(node: RedisProcess, copy: string): Promise<void> {
  copyFileSync(copy, join(node.dir, 'dump.rdb'));
  await askNode(node.port, (c) => c.call('DEBUG', 'RELOAD', 'NOSAVE'));
}

/** `f` on each redis-server of `redis` (one, or every node of a cluster), over a
 * connection of its own: for commands that are a node's, not a key's (ACL, DBSIZE, PUBSUB). */
export function onEveryNode<T>(redis: OwnRedis, f: (c: Redis) => Promise<T>): Promise<T[]> {
  return Promise.all(redis.nodes.map((n) => askNode(n.port, f)));
}

/** Keys in every redis-server of `redis` (DBSIZE summed: one node's, or every primary's). */
export async function keyCount(redis: OwnRedis): Promise<number> {
  const sizes = await onEveryNode(redis, (c) => c.dbsize());
  return sizes.reduce((a, b) => a + b, 0);
}

/** The pub/sub channels with a subscriber in every redis-server of `redis`: plain ones
 * (PUBSUB CHANNELS) and sharded ones (PUBSUB SHARDCHANNELS, a Redis Cluster's). */
export async function channelCount(redis: OwnRedis): Promise<number> {
  const counts = await onEveryNode(
    redis,
    async (c) => ((await c.call('PUBSUB', 'CHANNELS')) as string[]).length + ((await c.call('PUBSUB', 'SHARDCHANNELS')) as string[]).length,
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** The health checks servers have made on `node` so far: the sum of their beats, the keys
 * `leasehold:beat:…` each server counts up at every check (src/ha/redisLink.ts). A rollback
 * to a snapshot is found by the beat only once a check has counted past the snapshot's. */
export async function healthChecks(node: RedisProcess): Promise<number> {
  return askNode(node.port, async (c) => {
    // One GET each: on a cluster node, MGET refuses keys of different slots.
    const beats = await Promise.all((await scanKeys(c, 'leasehold:beat:*')).map((k) => c.get(k)));
    return beats.reduce((sum, beat) => sum + Number(beat ?? 0), 0);
  });
}
