/**
 * The HA services of a leasehold server, in the spirit of Flink's HighAvailabilityServices:
 * leader election and leader retrieval per component of any cluster, on Redis. Knows
 * nothing of HTTP.
 */
import { randomBytes } from 'node:crypto';
import type { Log } from './log.js';
import type { Change, Leader } from './changes.js';
import { RedisUnavailableError } from './errors.js';
import type { ClusterKeys, Component } from './ids.js';
import { ElectionService } from './election.js';
import { LeaseStore } from './leaseStore.js';
import { RedisLink, type ClockStepReport, type ClusterFilter, type DataLossReport, type RedisConfig, type ShardHealth } from './redisLink.js';
import { AcknowledgedLeases, type PrimaryLoss } from './acknowledgedLeases.js';
import { LeadershipService } from './leadership.js';
import { Scripts } from './scripts.js';
import { ViewRegistry } from './views.js';
import { StoreWriter, type Quotas } from './storeWriter.js';
import { RedisJobResultStore } from './jobResults.js';
import { RedisExecutionPlanStore } from './executionPlans.js';
import { RedisCheckpointStore } from './checkpoints.js';
import { RedisBlobStore } from './blobs.js';
import { Cleanup } from './cleanup.js';
import { Floors } from './floors.js';
import { FloorsWriteback } from './floorsWriteback.js';
import { LeaseEvents } from './events.js';
import { ClusterRegistry } from './clusterRegistry.js';
import { DEFAULT_HISTORY, LeadershipHistory, retentionArg, type HistoryRetention } from './history.js';

export interface HaOptions {
  redis: string | RedisConfig;
  commandTimeoutMs: number;
  healthIntervalMs: number;
  /** Replicas that must hold a grant, renewal or store write before it is acknowledged:
   * 'auto' for one whenever the primary has any. */
  replicaAck: { replicas: 'auto' | number; timeoutMs: number };
  changeLogSize: number;
  /** The leadership history's retention (scripts/lib/history.lua); by default 10000 entries
   * and 30 days. */
  history?: HistoryRetention;
  viewIdleMs: number;
  /** The most cluster views kept in memory (views.ts). */
  maxViews: number;
  /** How long a write's answer is kept for a retry with the same Idempotency-Key. */
  idempotencyTtlMs: number;
  /** What one cluster may hold. */
  quotas: Quotas;
  logger: Log;
  /** Told of every change this server sees (metrics). */
  onChange?: (change: Change) => void;
  /** Where this server keeps what it has answered across its restarts (docs/design.md §9);
   * null: in memory only. */
  floorsFile: string | null;
}

export interface HaHealth {
  redis: 'up' | 'down';
  /** Replicas connected to the primary, and how many must hold each write. */
  replicas: { connected: number; requiredForAck: number };
  /** Times the primary changed (a failover, or a restart). */
  primaryChanges: number;
  dataLoss: DataLossReport;
  /** Times Redis's clock stepped against this server's monotonic clock. */
  redisClockSteps: ClockStepReport;
  clustersWatched: number;
  /** On a Redis Cluster, each shard: its clusters answer 503 while it is down, the others'
   * do not. Absent on one Redis. */
  shards?: ShardHealth[];
  /** Why this server must not be counted as ready although Redis answers (a Redis that
   * may evict keys); empty when there is none. */
  problems: string[];
}

export class HaServices {
  readonly link: RedisLink;
  readonly views: ViewRegistry;
  readonly election: ElectionService;
  readonly leadership: LeadershipService;
  readonly jobResults: RedisJobResultStore;
  readonly executionPlans: RedisExecutionPlanStore;
  readonly checkpoints: RedisCheckpointStore;
  readonly blobs: RedisBlobStore;
  readonly cleanup: Cleanup;
  /** The leadership history of each cluster (history.ts). */
  readonly history: LeadershipHistory;
  readonly floors: Floors;
  readonly writeback: FloorsWriteback;
  /** The clusters this deployment holds, for the listing (clusterRegistry.ts). */
  readonly clusters: ClusterRegistry;
  /** Grants, refused renewals, resignations, expiries and revocations (events.ts). */
  readonly events = new LeaseEvents();
  /** Replicas that must hold a write of `key` (a key of a cluster); without one, the
   * fewest any shard asks for (/readyz). */
  private readonly requiredAcks: (key?: string) => number;
  private readonly leases: AcknowledgedLeases;
  private readonly store: LeaseStore;
  private readonly log: Log;

  constructor(opts: HaOptions) {
    this.floors = new Floors(opts.floorsFile, opts.logger);
    this.link = new RedisLink({
      redis: opts.redis,
      commandTimeoutMs: opts.commandTimeoutMs,
      healthIntervalMs: opts.healthIntervalMs,
      ackTimeoutMs: opts.replicaAck.timeoutMs,
      logger: opts.logger,
    });
    const link = this.link;
    const { replicas, timeoutMs } = opts.replicaAck;
    // auto: one replica whenever the Redis holding the key has any (on a Redis Cluster, the
    // shard that owns it: a shard without replicas costs the others' writes nothing).
    this.requiredAcks = replicas === 'auto' ? (key) => Math.min(1, key === undefined ? link.replicas : link.replicasFor(key)) : () => replicas;
    const scripts = new Scripts(link.cmd, { required: this.requiredAcks, connection: link.acked, timeoutMs });
    const logArg = retentionArg(opts.changeLogSize, opts.history ?? DEFAULT_HISTORY);
    const store = new LeaseStore(scripts, logArg, randomBytes(8).toString('hex'), opts.quotas.jobManagers);
    this.store = store;
    this.log = opts.logger;
    // The hash tag alone names the slot of every key of the cluster (ids.ts).
    this.leases = new AcknowledgedLeases((clusterId) => this.requiredAcks(`{${clusterId}}`));
    link.primaryLost = (loss, only) => this.startGrace(loss, only);
    this.views = new ViewRegistry({
      link: this.link,
      store,
      floors: this.floors,
      idleMs: opts.viewIdleMs,
      maxViews: opts.maxViews,
      onChange: opts.onChange ?? (() => {}),
      onRollback: (clusterId) => this.link.reportRollback(clusterId),
      events: this.events,
      onLost: (clusterId, component, leader) => void this.recordLost(clusterId, component, leader),
      logger: opts.logger,
    });
    this.writeback = new FloorsWriteback({
      link,
      scripts,
      floors: this.floors,
      logSize: opts.changeLogSize,
      log: opts.logger,
      done: () => this.views.resyncAll(),
      // Leaders believed there may be gone: the resync that follows tells (history.ts, lost).
      behind: (clusterId) => this.views.suspectLoss([clusterId]),
    });
    this.election = new ElectionService(this.link, store, this.views, this.floors, this.leases);
    this.leadership = new LeadershipService(store.leadership, this.election, this.floors);
    this.election.leadership = this.leadership;
    this.election.events = this.events;
    // The stores read and write over connections of their own (redisLink.ts, bulk), so
    // that bulk traffic never queues ahead of a renewal.
    const bulk = this.link.bulk;
    const storeScripts = new Scripts(bulk, { required: this.requiredAcks, connection: link.bulkAcked, timeoutMs });
    this.clusters = new ClusterRegistry(bulk, storeScripts, opts.logger, link);
    const writer = new StoreWriter(storeScripts, opts.idempotencyTtlMs, (id, component) => this.views.tokenFloor(id, component), opts.quotas);
    // An admin's unfenced write may give data to a cluster that has no index, whose
    // birth nobody publishes: listed before it is answered. So may a leadership with
    // nothing published (it records no change): listed when granted.
    writer.unfenced = (clusterId) => this.clusters.note(clusterId);
    this.events.on((e) => void (e.event === 'granted' && e.component === null && this.clusters.note(e.clusterId)));
    this.jobResults = new RedisJobResultStore(bulk, writer);
    this.executionPlans = new RedisExecutionPlanStore(bulk, writer);
    this.checkpoints = new RedisCheckpointStore(bulk, writer, this.floors);
    this.blobs = new RedisBlobStore(bulk, writer);
    this.cleanup = new Cleanup(this.link.cmd, scripts, this.views, this.blobs, logArg, this.floors, this.clusters);
    this.history = new LeadershipHistory(storeScripts, scripts, opts.changeLogSize, opts.history ?? DEFAULT_HISTORY);
  }

  /** The keys of a cluster, for the stores; fails fast while Redis is down. */
  keys(clusterId: string): ClusterKeys {
    if (!this.link.isHealthyFor(clusterId)) throw new RedisUnavailableError();
    return this.views.keys(clusterId);
  }

  health(): HaHealth {
    const policy = this.link.evictionPolicy;
    return {
      redis: this.link.isHealthy ? 'up' : 'down',
      replicas: { connected: this.link.replicas, requiredForAck: this.requiredAcks() },
      primaryChanges: this.link.primaryChanges,
      dataLoss: this.link.dataLossReport,
      redisClockSteps: this.link.clockStepReport,
      clustersWatched: this.views.size,
      ...(this.link.shardReport && { shards: this.link.shardReport }),
      problems: policy ? [`redis maxmemory-policy is ${policy}, which may evict leases and stored data; set it to noeviction`] : [],
    };
  }

  /** The Redis now serving may have lost leases this server acknowledged: every cluster
   * where one may still be running grants nothing until it has run out (docs/design.md §9);
   * on a Redis Cluster, only the clusters of the shard that lost them (`only`).
   * A failure leaves the link unhealthy, and the next health check tries again. */
  private async startGrace(loss: PrimaryLoss, only?: ClusterFilter): Promise<void> {
    const atRisk = this.leases.atRisk(loss, only);
    if (atRisk.length === 0) return;
    // The views resync once the link is up again: the leaders they believed that Redis lost
    // are recorded (history.ts, lost).
    this.views.suspectLoss(atRisk.map(([clusterId]) => clusterId));
    for (const [clusterId, ms] of atRisk) await this.store.startGrace(this.views.keys(clusterId), ms);
    const longest = Math.max(...atRisk.map(([, ms]) => ms));
    this.log.error(
      { loss, clusters: atRisk.slice(0, 20).map(([c]) => c), clusterCount: atRisk.length, graceMs: longest },
      loss === 'failover'
        ? 'the redis primary changed after this server acknowledged leases that no replica held: the new primary may lack them, so these clusters grant no lease until they have run out'
        : 'redis lost its data while leases this server acknowledged were running: these clusters grant no lease until they have run out',
    );
  }

  /** A leader this server acknowledged and Redis lost, into the history (once, whichever
   * server finds it first) and the events; best effort: a failure is logged. */
  private async recordLost(clusterId: string, component: Component, leader: Leader): Promise<void> {
    try {
      if (await this.history.lost(this.views.keys(clusterId), component, leader)) {
        this.events.of('lost', clusterId, component, leader.contenderId, leader.fencingToken);
      }
    } catch (err) {
      this.log.warn({ err, clusterId, component }, 'could not record a lost leader in the history');
    }
  }

  /** Releases connections and timers; deletes nothing. */
  async close(): Promise<void> {
    this.clusters.close();
    this.views.close();
    this.floors.close();
    await this.link.close();
  }
}

export { GracePeriodError, HaError, LeaseNotHeldError, LockDelayError, RedisOutOfMemoryError, RedisUnavailableError, type HaErrorCode } from './errors.js';
export type { Change, ChangeEvent, Leader } from './changes.js';
export type { LeaseEvent, LeaseEventKind, LeaseEvents } from './events.js';
export type { Leadership, Owner } from './leadership.js';
export type { ClusterView, ComponentState, LeaderState, Snapshot, WatchMessage } from './clusterView.js';
export * from './ids.js';
export { APPLICATION_STATUSES, type JobResult, type JobResultInput } from './jobResults.js';
export { JOB_STATUSES, type Checkpoint, type JobStatus } from './checkpoints.js';
export { BLOB_POSITION, type BlobMeta } from './blobs.js';
export { PAGE_MAX, type Page, type PageRequest } from './paging.js';
export { JOB_PARTS, type ClusterCleanupReport, type JobCleanupReport } from './cleanup.js';
export type { ClusterPageRequest, ClusterRegistry, ClusterSummary } from './clusterRegistry.js';
export type { HeldLease } from './replies.js';
export type { Fence, IdempotencyKey, Quotas } from './storeWriter.js';
export type { RedisConfig, ShardHealth } from './redisLink.js';
