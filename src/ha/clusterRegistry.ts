/**
 * The clusters a deployment holds, for the listing (GET /v1/clusters, issue 20): a sorted
 * set `lh:clusters` of cluster ids, every score 0, paged by ZRANGEBYLEX in id order.
 *
 * No script touches it: on Redis Cluster it lives on one shard and every cluster's keys on
 * the shard of that cluster's hash tag, and no script may touch two hash tags (issue 21).
 * So it is written by commands of its own, after the scripts, and kept right as follows
 * (docs/decisions.md, "The cluster listing"):
 * - a cluster is born with its first stored index, which publishes it on `lh:born`
 *   (lib/leadership.lua, store_index): every server hears it and adds it (ZADD, idempotent).
 *   A leadership with nothing published stores no index, and an admin's unfenced store
 *   write may give data to a cluster that has none: the server that granted the one adds
 *   the cluster at once (not waiting), the one that made the other before answering;
 * - its deletion (cleanup.ts) removes it last, then looks again: a cluster born anew
 *   meanwhile (it has data again) is added back;
 * - a repair adds every cluster that has a key (SCAN of every primary, in batches) and
 *   removes ids that have neither a key seen by the scan nor data (hasData), at start-up and
 *   whenever Redis may have lost data (data loss detected, a new primary): so a birth
 *   message lost, a server that crashed between a write and its ZADD, or a registry lost
 *   with a shard, hide a cluster until the next repair at most.
 * Listing reads and never writes: an unknown cluster is never added (issue 16).
 */
import type { Redis } from 'ioredis';
import { ClusterKeys, BORN_CHANNEL, CLUSTER_ID_PATTERN, SINGLETON_COMPONENTS, type SingletonComponent } from './ids.js';
import type { Log } from './log.js';
import { lexPage, PAGE_MAX, pageCut, type Page, type PageRequest } from './paging.js';
import { redisCall } from './redisCall.js';
import { decodeClusterSummary, type ClusterSummaryReply, type HeldLease } from './replies.js';
import type { Scripts } from './scripts.js';
import type { RedisLink } from './redisLink.js';

export const REGISTRY_KEY = 'lh:clusters';
/** Keys a SCAN step asks for, and ids per ZADD of the repair. */
const SCAN_COUNT = 1000;
const CLUSTER_ID = new RegExp(CLUSTER_ID_PATTERN);
const CLUSTER_OF_KEY = /^lh:\{([^}]*)\}:/;

export interface ClusterSummary {
  clusterId: string;
  /** The stored index; null when the cluster has none (it holds only data an admin wrote
   * unfenced: no lease was ever granted in it). */
  index: number | null;
  leaders: Record<SingletonComponent, HeldLease | null>;
  leadership: ClusterSummaryReply['leadership'];
  /** Job managers with a lease: members of the cluster's components that are no singleton
   * (as QUOTA_JOB_MANAGERS counts them: one that ran out unnoticed counts until the next
   * sync drops it). */
  jobManagers: number;
}

export interface ClusterPageRequest extends PageRequest {
  /** Only ids that begin with this. */
  prefix?: string;
  /** Only these ids (a token's clusters); null or undefined: all. */
  only?: ReadonlySet<string> | null;
}

export class ClusterRegistry {
  private repairing: Promise<void> | null = null;
  private repairAgain = false;
  private closed = false;

  constructor(
    /** Reads and writes of the registry and the listing: the bulk connection. */
    private readonly redis: Redis,
    private readonly scripts: Scripts,
    private readonly log: Log,
    link?: RedisLink,
  ) {
    if (!link) return;
    link.on('message', (channel, message) => {
      if (channel !== BORN_CHANNEL) return;
      const clusterId = ClusterKeys.clusterOfChannel(message);
      if (clusterId !== null) void this.note(clusterId);
    });
    // At start-up, and whenever Redis may have lost what it held.
    const repair = () => void this.repair();
    link.once('up', repair);
    link.on('dataLoss', repair);
    link.on('primaryChanged', repair);
  }

  /** Lists the cluster (idempotent). */
  async add(clusterId: string): Promise<void> {
    await redisCall(() => this.redis.zadd(REGISTRY_KEY, 0, clusterId));
  }

  /** Lists the cluster; a failure (a full Redis, say) is logged, not thrown: what made the
   * cluster's data is done, and the next repair lists it. */
  note(clusterId: string): Promise<void> {
    return this.add(clusterId).catch((err: unknown) => this.log.warn({ err, clusterId }, 'could not list a cluster; the next repair will'));
  }

  /** Unlists a deleted cluster, unless it was born anew meanwhile (it has data again: its
   * birth's ZADD may have come before this ZREM). */
  async remove(keys: ClusterKeys): Promise<void> {
    await redisCall(() => this.redis.zrem(REGISTRY_KEY, keys.clusterId));
    if (await this.hasData(keys)) await this.add(keys.clusterId);
  }

  /** Whether the cluster has one of the keys a cluster with data has: an index (any lease
   * ever granted), a leadership, the indexes of job results or plans, its blobs' usage.
   * One command: they share the cluster's hash tag. */
  private async hasData(keys: ClusterKeys): Promise<boolean> {
    const n = await redisCall(() => this.redis.exists(keys.index, keys.leadership, keys.jobResults, keys.plans, keys.usage));
    return n > 0;
  }

  /** A page of listed ids, in id order, after `after`, that begin with `prefix`, among
   * `only` when given. With `only`, the ids come from it (a token's few clusters) and the
   * registry is asked which it holds, rather than read in full. */
  async ids(req: ClusterPageRequest): Promise<Page<string>> {
    const limit = Math.min(req.limit, PAGE_MAX);
    const prefix = req.prefix ?? '';
    if (req.only) return this.idsAmong(req.only, prefix, limit, req.after);
    return lexPage(this.redis, REGISTRY_KEY, { limit, after: req.after }, prefix);
  }

  private async idsAmong(only: ReadonlySet<string>, prefix: string, limit: number, after: string | undefined): Promise<Page<string>> {
    const candidates = [...only].filter((id) => id.startsWith(prefix) && (after === undefined || id > after)).sort(byteOrder);
    const found: string[] = [];
    for (let i = 0; i < candidates.length && found.length <= limit; i += PAGE_MAX) {
      const batch = candidates.slice(i, i + PAGE_MAX);
      const scores = await redisCall(() => this.redis.zmscore(REGISTRY_KEY, ...batch));
      batch.forEach((id, j) => scores[j] !== null && found.push(id));
    }
    return pageCut(found, limit);
  }

  /** What the listing shows of each cluster: one read-only script per cluster, all sent
   * at once (pipelined: one round trip for the page). */
  async summaries(clusterIds: readonly string[]): Promise<ClusterSummary[]> {
    const singletons = SINGLETON_COMPONENTS;
    return Promise.all(
      clusterIds.map(async (clusterId) => {
        const keys = new ClusterKeys(clusterId);
        const r = decodeClusterSummary(
          await redisCall(() =>
            this.scripts.run(
              'cluster_summary',
              [
                keys.index,
                keys.log,
                keys.leadershipLease,
                keys.leadership,
                keys.published,
                keys.components,
                ...singletons.flatMap((c) => [keys.lease(c), keys.leader(c)]),
              ],
              ['', 0, 0, ...singletons],
            ),
          ),
        );
        const leaders = {} as ClusterSummary['leaders'];
        singletons.forEach((c, i) => (leaders[c] = r.singletons[i] ?? null));
        return { clusterId, index: r.index, leaders, leadership: r.leadership, jobManagers: r.jobManagers };
      }),
    );
  }

  /** Adds every cluster that has a key and removes listed ids that have neither a key nor
   * data; one at a time (a call while one runs makes it run once more after). A
   * failure is logged: the next trigger repairs. */
  repair(): Promise<void> {
    if (this.repairing) {
      this.repairAgain = true;
      return this.repairing;
    }
    this.repairing = (async () => {
      do {
        this.repairAgain = false;
        try {
          const r = await this.repairOnce();
          if (r.added > 0 || r.removed > 0) this.log.warn(r, 'the cluster listing was repaired: it lacked clusters that have data, or listed clusters that have none');
        } catch (err) {
          if (!this.closed) this.log.warn({ err }, 'could not repair the cluster listing; the next start-up or data loss tries again');
        }
      } while (this.repairAgain && !this.closed);
      this.repairing = null;
    })();
    return this.repairing;
  }

  /** Stops repairs from starting again (the server is closing). */
  close(): void {
    this.closed = true;
  }

  private async repairOnce(): Promise<{ added: number; removed: number }> {
    const seen = new Set<string>();
    let added = 0;
    for (const node of primariesOf(this.redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await redisCall(() => node.scan(cursor, 'MATCH', 'lh:{*', 'COUNT', SCAN_COUNT));
        cursor = next;
        const fresh: string[] = [];
        for (const key of keys) {
          const id = CLUSTER_OF_KEY.exec(key)?.[1];
          if (id !== undefined && !seen.has(id) && CLUSTER_ID.test(id)) {
            seen.add(id);
            fresh.push(id);
          }
        }
        if (fresh.length > 0) added += await redisCall(() => this.redis.zadd(REGISTRY_KEY, ...fresh.flatMap((id) => [0, id])));
      } while (cursor !== '0' && !this.closed);
    }
    let removed = 0;
    let after: string | undefined;
    do {
      const page = await lexPage(this.redis, REGISTRY_KEY, { limit: SCAN_COUNT, after });
      // Not seen by the scan: deleted, or born after the scan passed its keys, which its
      // data tells (an id with none is gone).
      const unseen = page.items.filter((id) => !seen.has(id));
      const live = await Promise.all(unseen.map((id) => this.hasData(new ClusterKeys(id))));
      const gone = unseen.filter((_, i) => !live[i]);
      if (gone.length > 0) removed += await redisCall(() => this.redis.zrem(REGISTRY_KEY, ...gone));
      after = page.next;
    } while (after !== undefined && !this.closed);
    return { added, removed };
  }
}

/** The primaries to scan: every master of a Redis Cluster, else the one Redis. */
function primariesOf(redis: Redis): Redis[] {
  const cluster = redis as unknown as { nodes?: (role: 'master') => Redis[]; isCluster?: boolean };
  return cluster.isCluster && cluster.nodes ? cluster.nodes('master') : [redis];
}

/** Redis orders ids by their bytes; cluster ids are ASCII, so code units order alike. */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
