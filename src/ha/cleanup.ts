/**
 * Global cleanup of a job, and cleanupAllData of a cluster (docs/design.md §6). Both end leases,
 * so their changes go into this server's view as the election's do.
 */
import type { Redis } from 'ioredis';
import { RedisUnavailableError } from './errors.js';
import { jobManager, type ClusterKeys } from './ids.js';
import { redisCall } from './redisCall.js';
import type { Scripts } from './scripts.js';
import { Code, decodeCleanupCluster, decodeCleanupJob, JOB_PARTS, staleFence, type JobPart } from './replies.js';
import { requireFence, type Fence } from './storeWriter.js';
import type { RedisBlobStore } from './blobs.js';
import type { ViewRegistry } from './views.js';
import type { LeadershipService } from './leadership.js';

export { JOB_PARTS, type JobPart };

export interface JobCleanupReport {
  jobId: string;
  /** `deleted`, `absent`, or `failed: <why>` for each part. */
  parts: Record<JobPart, string>;
  failed: boolean;
}

export interface ClusterCleanupReport {
  clusterId: string;
  deleted: {
    leaders: number;
    jobResults: number;
    executionPlans: number;
    checkpoints: number;
    checkpointIdCounters: number;
    blobs: number;
    keys: number;
  };
}

/** Kinds of store keys, by the segment after the cluster's prefix, for the report. */
const COUNTED: Record<string, keyof ClusterCleanupReport['deleted']> = {
  jobresult: 'jobResults',
  plan: 'executionPlans',
  checkpoints: 'checkpoints',
  cpid: 'checkpointIdCounters',
};
/** Leadership keys: ended first, by one script that tells watchers; the store passes skip them. */
const LEADERSHIP = new Set(['index', 'log', 'components', 'lease', 'leader', 'grace', 'leadership']);
const ATTEMPTS = 10;

export class Cleanup {
  constructor(
    private readonly redis: Redis,
    private readonly scripts: Scripts,
    private readonly views: ViewRegistry,
    private readonly blobs: RedisBlobStore,
    private readonly logSize: number,
    private readonly leadership: LeadershipService,
  ) {}

  /** Deletes all of a job's data but its job result, at once; fenced by the dispatcher.
   * A Redis outage fails every part (nothing is half done: it is one script). */
  async job(clusterId: string, jobId: string, fence: Fence): Promise<JobCleanupReport> {
    const token = requireFence(fence);
    const keys = this.views.keys(clusterId);
    const component = jobManager(jobId);
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const uploads = [...(await this.blobs.uploads(keys, jobId)).values()];
        const view = this.views.peek(clusterId);
        const r = await redisCall(() =>
          this.scripts.run(
            'cleanup_job',
            [
              keys.index,
              keys.log,
              keys.lease(component),
              keys.leader(component),
              keys.components,
              keys.lease('dispatcher'),
              keys.leader('dispatcher'),
              keys.plan(jobId),
              keys.planRequirements(jobId),
              keys.plans,
              keys.checkpoints(jobId),
              keys.checkpointIdCounter(jobId),
              keys.blobs(jobId),
              keys.leadershipLease,
              keys.leadership,
              keys.published,
              keys.usage,
              ...uploads.map((u) => keys.blobData(u)),
            ],
            [keys.channel, view?.index ?? 0, this.logSize, component, token, jobId, ...uploads],
          ),
        );
        const reply = decodeCleanupJob(r);
        if (reply.code === Code.Changed) continue;
        if (reply.code === Code.FenceStale) throw staleFence('dispatcher');
        view?.ingest(reply.changes);
        const parts = {} as Record<JobPart, string>;
        for (const p of JOB_PARTS) parts[p] = reply.deleted[p] ? 'deleted' : 'absent';
        return { jobId, parts, failed: false };
      }
      throw new RedisUnavailableError(new Error('the job kept changing during cleanup'));
    } catch (err) {
      if (!(err instanceof RedisUnavailableError)) throw err;
      const parts = {} as Record<JobPart, string>;
      for (const p of JOB_PARTS) parts[p] = `failed: ${err.message}`;
      return { jobId, parts, failed: true };
    }
  }

  /** cleanupAllData: deletes every key of the cluster (and no other's). One script first
   * ends every lease, telling watchers, and deletes the leadership keys: from then on no
   * fenced write can land. Then the stores' keys go, pass after pass, until a pass finds
   * none left (an upload staged meanwhile, or an admin's unfenced write). */
  async cluster(clusterId: string): Promise<ClusterCleanupReport> {
    const keys = this.views.keys(clusterId);
    const deleted = { leaders: 0, jobResults: 0, executionPlans: 0, checkpoints: 0, checkpointIdCounters: 0, blobs: 0, keys: 0 };
    // The cluster's leadership first, in its own script (its components pushed as revoked).
    await this.leadership.forget(clusterId, this.views.peek(clusterId)?.index ?? 0);
    await this.endLeadership(clusterId, keys, deleted);
    for (let pass = 0; pass < ATTEMPTS; pass++) {
      if ((await this.deleteStores(keys, deleted)) === 0) return { clusterId, deleted };
    }
    throw new RedisUnavailableError(new Error('store keys kept appearing during cleanup'));
  }

  private async endLeadership(clusterId: string, keys: ClusterKeys, deleted: ClusterCleanupReport['deleted']): Promise<void> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const components = await redisCall(() => this.redis.smembers(keys.components));
      const view = this.views.peek(clusterId);
      const r = await redisCall(() =>
        this.scripts.run(
          'cleanup_cluster',
          [keys.index, keys.log, keys.components, ...components.flatMap((c) => [keys.lease(c), keys.leader(c)])],
          [keys.channel, view?.index ?? 0, this.logSize, ...components],
        ),
      );
      const reply = decodeCleanupCluster(r);
      if (reply.code === Code.Changed) continue;
      view?.ingest(reply.changes);
      deleted.leaders += reply.leaders;
      deleted.keys += reply.keys;
      return;
    }
    throw new RedisUnavailableError(new Error('the components kept changing during cleanup'));
  }

  /** One pass over the cluster's keys, deleting the stores'; answers how many it found. */
  private async deleteStores(keys: ClusterKeys, deleted: ClusterCleanupReport['deleted']): Promise<number> {
    let found = 0;
    let cursor = '0';
    do {
      const [next, batch] = await redisCall(() => this.redis.scan(cursor, 'MATCH', `${keys.prefix}*`, 'COUNT', 1000));
      cursor = next;
      const stores = batch.filter((k) => !LEADERSHIP.has(kindOf(keys, k)));
      if (stores.length === 0) continue;
      found += stores.length;
      const blobHashes = stores.filter((k) => kindOf(keys, k) === 'blobs');
      if (blobHashes.length > 0) {
        const counts = await redisCall(() => Promise.all(blobHashes.map((k) => this.redis.hlen(k))));
        deleted.blobs += counts.reduce((a, b) => a + b, 0);
      }
      for (const k of stores) {
        const counted = COUNTED[kindOf(keys, k)];
        if (counted) deleted[counted]++;
      }
      deleted.keys += await redisCall(() => this.redis.unlink(...stores));
    } while (cursor !== '0');
    return found;
  }
}

/** `jobresult` for `lh:{c}:jobresult:<id>`, `index` for `lh:{c}:index`. */
function kindOf(keys: ClusterKeys, key: string): string {
  const rest = key.slice(keys.prefix.length);
  const colon = rest.indexOf(':');
  return colon === -1 ? rest : rest.slice(0, colon);
}
