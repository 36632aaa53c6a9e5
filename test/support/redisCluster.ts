/**
 * A real Redis Cluster for tests: primaries and their replicas as redis-server processes
 * (test/support/redis.ts: free ports, kill -9, pause, restart), joined by
 * `redis-cli --cluster create`, and the means to find the primary that owns a key's slot,
 * promote a replica (CLUSTER FAILOVER) and move slots (`redis-cli --cluster reshard`, or
 * one slot by SETSLOT and MIGRATE). Every process is stopped when the test file ends, even
 * when it fails: stopAllRedis() stops the nodes as it stops any other redis-server.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { keySlot as calculateSlot } from '../../src/ha/keySlot.js';
import type { Redis } from 'ioredis';
import { waitFor } from './app.js';
import { askNode, RedisProcess } from './redis.js';

const run = promisify(execFile);

/** A connection for one question; its errors (a node just killed) are the caller's to see
 * in the answer, not unhandled events. */
/** A node of a cluster may be paused: its questions give up after 2 s. */
const ask = <T>(port: number, f: (c: Redis) => Promise<T>): Promise<T> => askNode(port, f, 2000);

/** One line of CLUSTER NODES. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  primary: boolean;
  /** The primary's id, for a replica. */
  primaryId: string | null;
  failed: boolean;
  /** The slots it serves (a primary), as [first, last] ranges. */
  slots: Array<[number, number]>;
}

export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, addr, flags, primaryId, , , , , ...slots] = line.split(' ');
      return {
        id,
        port: Number(/:(\d+)@/.exec(addr)?.[1] ?? /:(\d+)$/.exec(addr)?.[1]),
        primary: flags.split(',').includes('master'),
        primaryId: primaryId === '-' ? null : primaryId,
        failed: /fail/.test(flags),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [a, b] = s.split('-').map(Number);
            return [a, b ?? a] as [number, number];
          }),
      };
    });
}

export interface RedisClusterOptions {
  primaries?: number;
  replicasPerPrimary?: number;
  /** cluster-node-timeout: how long a node is unanswered before it counts as failed. */
  nodeTimeoutMs?: number;
  aof?: boolean;
  /** More arguments of every node's redis-server. */
  args?: string[];
}

export class RedisClusterProcess {
  private constructor(readonly nodes: RedisProcess[]) {}

  /** Starts the nodes, joins them, and waits until every node answers `cluster_state:ok`. */
  static async start(opts: RedisClusterOptions = {}): Promise<RedisClusterProcess> {
    const count = (opts.primaries ?? 3) * (1 + (opts.replicasPerPrimary ?? 1));
    const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000)];
    // A replica may be promoted even when it lost touch with its primary long ago: the
    // tests decide what a failover loses, not Redis's caution.
    args.push('--cluster-replica-validity-factor', '0');
    // One shard down must not stop the others (by default Redis refuses every query while
    // any slot is unserved): the setting leasehold's deployments need too (docs/operations.md).
    args.push('--cluster-require-full-coverage', 'no');
    args.push(...(opts.args ?? []));
    const nodes = await Promise.all(Array.from({ length: count }, () => RedisProcess.start({ aof: opts.aof, args })));
    const cluster = new RedisClusterProcess(nodes);
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(opts.replicasPerPrimary ?? 1),
      '--cluster-yes',
    ]);
    await cluster.waitOk();
    return cluster;
  }

  /** REDIS_CLUSTER_NODES: every node, host:port, comma-separated. */
  get seeds(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  node(port: number): RedisProcess {
    const n = this.nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no node on port ${port}`);
    return n;
  }

  /** The cluster as a live node sees it (the first that answers). */
  async topology(): Promise<ClusterNodeInfo[]> {
    for (const n of this.nodes) {
      if (!n.child) continue;
      try {
        const text = await ask(n.port, (c) => c.call('CLUSTER', 'NODES') as Promise<string>);
        return parseClusterNodes(text);
      } catch {
        // a node paused or just killed: ask the next
      }
    }
    throw new Error('no node of the cluster answers');
  }

  /** Waits until every running node says `cluster_state:ok`, none is a primary without
   * slots, every replica is in sync, and all agree on who serves every slot and who
   * replicates it. */
  async waitOk(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        const views = [];
        for (const n of this.nodes) {
          if (!n.child) continue;
          const info = await ask(n.port, (c) => c.call('CLUSTER', 'INFO') as Promise<string>);
          if (!/^cluster_state:ok/m.test(info)) return false;
          // A primary that lost its slots to a failover turns into a replica soon after.
          const me = parseClusterNodes(await ask(n.port, (c) => c.call('CLUSTER', 'NODES') as Promise<string>)).find((x) => x.port === n.port);
          if (me?.primary && me.slots.length === 0) return false;
          // A replica counts once it holds its primary's data (WAIT counts on it).
          if (me && !me.primary && !/^master_link_status:up/m.test(await ask(n.port, (c) => c.info('replication')))) return false;
          views.push(await ask(n.port, (c) => c.call('CLUSTER', 'SLOTS')));
        }
        const first = JSON.stringify(sortSlots(views[0]));
        return views.every((v) => JSON.stringify(sortSlots(v)) === first);
      },
      timeoutMs,
      'cluster_state:ok on every node',
    );
  }

  static slotOf(key: string): number {
    return calculateSlot(key);
  }

  /** The primary that serves `key`'s slot now. */
  async primaryOf(key: string): Promise<RedisProcess> {
    const slot = calculateSlot(key);
    const owner = (await this.topology()).find((n) => n.primary && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!owner) throw new Error(`no primary serves slot ${slot}`);
    return this.node(owner.port);
  }

  /** The node that the cluster says serves `key`'s slot, even when it is down (killed or
   * paused: the others still name it until a replica takes over). */
  async ownerOf(key: string): Promise<RedisProcess> {
    const slot = calculateSlot(key);
    const owner = (await this.topology()).find((n) => n.primary && n.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!owner) throw new Error(`no node serves slot ${slot}`);
    return this.node(owner.port);
  }

  /** The primaries serving slots, in the order of their first slot. */
  async primaries(): Promise<RedisProcess[]> {
    const nodes = (await this.topology()).filter((n) => n.primary && !n.failed && n.slots.length > 0);
    nodes.sort((a, b) => a.slots[0][0] - b.slots[0][0]);
    return nodes.map((n) => this.node(n.port));
  }

  /** The replicas of a primary. */
  async replicasOf(primary: RedisProcess): Promise<RedisProcess[]> {
    const nodes = await this.topology();
    const id = nodes.find((n) => n.port === primary.port)?.id;
    return nodes.filter((n) => n.primaryId === id && !n.failed).map((n) => this.node(n.port));
  }

  /** A replica takes over from its primary (CLUSTER FAILOVER, FORCE when the primary is
   * down); resolves once the cluster agrees on it. */
  async promote(replica: RedisProcess, force = false): Promise<void> {
    // A manual failover waits for the replica to catch up: one still syncing (a primary
    // just demoted) would let it time out.
    if (!force) {
      await waitFor(
        async () => /^master_link_status:up/m.test(await ask(replica.port, (c) => c.info('replication'))),
        20_000,
        `node ${replica.port} in sync`,
      );
    }
    await ask(replica.port, (c) => (force ? c.call('CLUSTER', 'FAILOVER', 'FORCE') : c.call('CLUSTER', 'FAILOVER')));
    try {
      await this.waitPromoted(replica, 10_000);
    } catch (err) {
      // A manual failover whose handshake timed out is abandoned by Redis: force it.
      if (force) throw err;
      await ask(replica.port, (c) => c.call('CLUSTER', 'FAILOVER', 'FORCE'));
      await this.waitPromoted(replica);
    }
  }

  /** Until the node says it is a primary, and every node agrees. */
  private async waitPromoted(node: RedisProcess, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => /myself,master/.test(await ask(node.port, (c) => c.call('CLUSTER', 'NODES') as Promise<string>)),
      timeoutMs,
      `node ${node.port} promoted`,
    );
    await this.waitOk();
  }

  /** kill -9 of a primary; resolves once one of its replicas serves its slots. */
  async killPrimary(primary: RedisProcess): Promise<RedisProcess> {
    const [replica] = await this.replicasOf(primary);
    await primary.kill();
    await this.waitPromoted(replica);
    return replica;
  }

  /** Moves one slot, with its keys, to the primary `to` (SETSLOT IMPORTING/MIGRATING, then
   * MIGRATE in batches, then SETSLOT NODE on every primary), as redis-cli does. */
  async moveSlot(slot: number, to: RedisProcess): Promise<void> {
    const nodes = await this.topology();
    const target = nodes.find((n) => n.port === to.port)!;
    const source = nodes.find((n) => n.primary && n.slots.some(([a, b]) => slot >= a && slot <= b))!;
    if (source.id === target.id) return;
    await ask(target.port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id));
    await ask(source.port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id));
    await ask(source.port, async (c) => {
      for (;;) {
        const keys = (await c.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
        if (keys.length === 0) break;
        await c.call('MIGRATE', '127.0.0.1', target.port, '', 0, 5000, 'KEYS', ...keys);
      }
    });
    for (const n of nodes.filter((x) => x.primary && !x.failed && (x.slots.length > 0 || x.id === target.id))) {
      await ask(n.port, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id));
    }
    await this.waitOk();
  }

  /** `redis-cli --cluster reshard`: `count` slots from `from` to `to`. */
  async reshard(from: RedisProcess, to: RedisProcess, count: number): Promise<void> {
    const nodes = await this.topology();
    const id = (p: RedisProcess) => nodes.find((n) => n.port === p.port)!.id;
    await run('redis-cli', [
      '--cluster',
      'reshard',
      `127.0.0.1:${from.port}`,
      '--cluster-from',
      id(from),
      '--cluster-to',
      id(to),
      '--cluster-slots',
      String(count),
      '--cluster-yes',
      '--cluster-pipeline',
      '100',
    ]);
    await this.waitOk();
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

function sortSlots(slots: unknown): unknown {
  return (slots as Array<[number, number, ...Array<[string, number]>]>)
    .map(([a, b, primary, ...replicas]) => [a, b, primary[1], replicas.map((r) => r[1]).sort()])
    .sort((x, y) => (x[0] as number) - (y[0] as number));
}

/** A cluster id whose hash tag (`{id}`, ids.ts) lands on a slot that `primary` serves:
 * `prefix-0`, `prefix-1` … the first that does. */
export async function clusterIdOn(cluster: RedisClusterProcess, primary: RedisProcess, prefix: string): Promise<string> {
  const owner = (await cluster.topology()).find((n) => n.port === primary.port)!;
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const slot = calculateSlot(`{${id}}`);
    if (owner.slots.some(([a, b]) => slot >= a && slot <= b)) return id;
  }
}
