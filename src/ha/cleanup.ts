/**
 * Global cleanup of a job, and cleanupAllData of a cluster (docs/design.md §6). Both end leases,
 * so their changes go into this server's view as the election's do.
 */
import { connectionFor, type RedisClient } from './redisLink.js';
import { RedisUnavailableError } from './errors.js';
import { jobManager, type ClusterKeys } from './ids.js';
import { redisCall } from './redisCall.js';
import type { Scripts } from './scripts.js';
import { Code, decodeCleanupCluster, decodeCleanupJob, JOB_PARTS, staleFence, type JobPart } from './replies.js';
import { requireFence, type Fence } from './storeWriter.js';
import type { RedisBlobStore } from './blobs.js';
import type { ViewRegistry } from './views.js';
import type { Floors } from './floors.js';
import type { ClusterRegistry } from './clusterRegistry.js';

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
/** Leadership keys (and the deletion's tally): ended by cleanup_cluster.lua, which tells
 * watchers; the store passes skip them. */
const LEADERSHIP = new Set(['index', 'log', 'components', 'lease', 'leader', 'grace', 'leadership', 'cleanup', 'history']);
const ATTEMPTS = 10;
/** The most components one cleanup_cluster.lua step ends (issue 16: bounded scripts). */
export const CLEANUP_BATCH = 500;
/** How long a deletion holds the cluster's grace (no grant), renewed by every step. */
const HOLD_MS = 30_000;
/** How long the tally of a deletion that failed partway waits for its retry. */
const TALLY_MS = 600_000;
type Phase = 'begin' | 'batch' | 'finish';

export class Cleanup {
  constructor(
    private readonly redis: RedisClient,
    private readonly scripts: Scripts,
    private readonly views: ViewRegistry,
    private readonly blobs: RedisBlobStore,
    private readonly logSize: number | string,
    /** What this server answered: a deleted job or cluster takes its floors with it. */
    private readonly floors: Floors,
    /** The listing: a deleted cluster leaves it last. */
    private readonly registry?: ClusterRegistry,
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
              ...keys.historyKeys,
            ],
            [keys.channel, view?.index ?? 0, this.logSize, component, token, jobId, ...uploads],
          ),
        );
        const reply = decodeCleanupJob(r);
        if (reply.code === Code.Changed) continue;
        if (reply.code === Code.FenceStale) throw staleFence('dispatcher');
        view?.ingest(reply.changes);
        // The job is done: neither its job manager's token nor its counter needs a floor.
        this.floors.noteChanges(clusterId, reply.changes);
        this.floors.forgetCounter(clusterId, jobId);
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

  /** cleanupAllData: deletes every key of the cluster (and no other's), in bounded steps
   * (cleanup_cluster.lua). The first ends the leadership and holds the cluster's grace, so
   * that no lease is granted meanwhile; then batches end every lease, telling watchers:
   * from then on no fenced write can land. Then the stores' keys go, pass after pass,
   * until a pass finds none left (an upload staged meanwhile, or an admin's unfenced
   * write); last, the index, the log and the grace. Every step adds what it deleted to the
   * cluster's tally, answered by the last: a retry of a deletion that failed partway
   * reports what both deleted. One whose answer was lost after it finished reports zeros:
   * nothing was left (docs/decisions.md, Cleanup). */
  async cluster(clusterId: string): Promise<ClusterCleanupReport> {
    const keys = this.views.keys(clusterId);
    await this.step(clusterId, keys, 'begin', []);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      await this.endLeases(clusterId, keys);
      let pass = 0;
      while ((await this.deleteStores(keys)) > 0) {
        if (++pass >= ATTEMPTS) throw new RedisUnavailableError(new Error('store keys kept appearing during cleanup'));
      }
      const reply = await this.step(clusterId, keys, 'finish', []);
      if (reply.code === Code.Changed) continue;
      const deleted = { leaders: 0, jobResults: 0, executionPlans: 0, checkpoints: 0, checkpointIdCounters: 0, blobs: 0, keys: 0 };
      for (const k of Object.keys(deleted) as Array<keyof typeof deleted>) deleted[k] = reply.tally[k] ?? 0;
      this.floors.forget(clusterId);
      await this.registry?.remove(keys);
      return { clusterId, deleted };
    }
    throw new RedisUnavailableError(new Error('the components kept changing during cleanup'));
  }

  /** Ends every lease of the cluster, CLEANUP_BATCH components a step. */
  private async endLeases(clusterId: string, keys: ClusterKeys): Promise<void> {
    let cursor = '0';
    do {
      const [next, members] = await redisCall(() => this.redis.sscan(keys.components, cursor, 'COUNT', CLEANUP_BATCH));
      cursor = next;
      for (let i = 0; i < members.length; i += CLEANUP_BATCH) await this.step(clusterId, keys, 'batch', members.slice(i, i + CLEANUP_BATCH));
    } while (cursor !== '0');
  }

  private async step(clusterId: string, keys: ClusterKeys, phase: Phase, components: string[]) {
    const view = this.views.peek(clusterId);
    const r = await redisCall(() =>
      this.scripts.run(
        'cleanup_cluster',
        [
          keys.index,
          keys.log,
          keys.components,
          keys.grace,
          keys.leadershipLease,
          keys.leadership,
          keys.published,
          keys.cleanupTally,
          ...components.flatMap((c) => [keys.lease(c), keys.leader(c)]),
          ...keys.historyKeys,
        ],
        [keys.channel, view?.index ?? 0, this.logSize, phase, HOLD_MS, TALLY_MS, ...components],
      ),
    );
    const reply = decodeCleanupCluster(r, phase);
    if (reply.code === Code.Done) view?.ingest(reply.changes);
    return reply;
  }

  /** One pass over the cluster's keys, deleting the stores' (their counts go into the
   * tally); answers how many it found. */
  private async deleteStores(keys: ClusterKeys): Promise<number> {
    let found = 0;
    let cursor = '0';
    // On a Redis Cluster, SCAN reads one node: the one serving the cluster's keys.
    const node = connectionFor(this.redis, keys.index);
    do {
      const [next, batch] = await redisCall(() => node.scan(cursor, 'MATCH', `${keys.prefix}*`, 'COUNT', 1000));
      cursor = next;
      const stores = batch.filter((k) => !LEADERSHIP.has(kindOf(keys, k)));
      if (stores.length === 0) continue;
      found += stores.length;
      const tally = new Map<string, number>();
      const add = (field: string, n: number) => tally.set(field, (tally.get(field) ?? 0) + n);
      const blobHashes = stores.filter((k) => kindOf(keys, k) === 'blobs');
      if (blobHashes.length > 0) {
        const counts = await redisCall(() => Promise.all(blobHashes.map((k) => this.redis.hlen(k))));
        add('blobs', counts.reduce((a, b) => a + b, 0));
      }
      for (const k of stores) {
        const counted = COUNTED[kindOf(keys, k)];
        if (counted) add(counted, 1);
      }
      // What was deleted and its count go in one pipeline, so that a retry counts each once
      // (short of a failure between the two commands).
      const pipeline = this.redis.pipeline().unlink(...stores);
      for (const [field, n] of tally) pipeline.hincrby(keys.cleanupTally, field, n);
      const replies = await redisCall(() => pipeline.hincrby(keys.cleanupTally, 'keys', stores.length).pexpire(keys.cleanupTally, TALLY_MS).exec());
      const failed = replies?.find(([err]) => err);
      if (failed) throw new RedisUnavailableError(failed[0]!);
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
