/** Names of clusters, components and jobs, and the Redis keys they map to. */

export const CLUSTER_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
export const JOB_ID_PATTERN = '^[0-9a-fA-F]{32}$';
/** Blobs of no job live under this job id. */
export const NO_JOB = '_';
export const BLOB_KEY_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9._-]{1,200}$';
/** 1–128 printable ASCII characters. */
export const CONTENDER_ID_PATTERN = '^[\\x20-\\x7E]{1,128}$';

export const SINGLETON_COMPONENTS = ['resourcemanager', 'dispatcher', 'rest'] as const;
export type SingletonComponent = (typeof SINGLETON_COMPONENTS)[number];

/** A component path: a singleton, or `jobmanager/<job id in lower case>`. */
export type Component = string;

export function jobManager(jobId: string): Component {
  return `jobmanager/${jobId.toLowerCase()}`;
}

/** Singletons first, then job managers by job id: the order of every listing. */
export function compareComponents(a: Component, b: Component): number {
  const ia = SINGLETON_COMPONENTS.indexOf(a as SingletonComponent);
  const ib = SINGLETON_COMPONENTS.indexOf(b as SingletonComponent);
  if (ia !== ib) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Every key of a cluster shares one hash tag, so that every multi-key script also runs on
 * Redis Cluster.
 */
export class ClusterKeys {
  readonly prefix: string;
  readonly index: string;
  readonly log: string;
  readonly components: string;
  readonly channel: string;
  /** Set, with a TTL, while no lease may be granted after Redis lost data (the grace). */
  readonly grace: string;
  /** The leadership history (scripts/lib/history.lua): a stream of grants, their entries,
   * and each component's last entry. */
  readonly history: string;
  readonly historyEntries: string;
  readonly historyState: string;
  /** The three, in the order that every script writing the history declares them: last. */
  readonly historyKeys: readonly string[];

  constructor(readonly clusterId: string) {
    this.prefix = `lh:{${clusterId}}:`;
    this.index = this.prefix + 'index';
    this.log = this.prefix + 'log';
    this.components = this.prefix + 'components';
    this.channel = this.prefix + 'changes';
    this.grace = this.prefix + 'grace';
    this.history = this.prefix + 'history';
    this.historyEntries = this.prefix + 'history:entries';
    this.historyState = this.prefix + 'history:state';
    this.historyKeys = [this.history, this.historyEntries, this.historyState];
  }

  lease(component: Component): string {
    return this.prefix + 'lease:' + component;
  }

  leader(component: Component): string {
    return this.prefix + 'leader:' + component;
  }

  /** The cluster's leadership (scripts/lib/cluster_leadership.lua): its lease, its hash,
   * and component -> address of what is published under it. */
  get leadershipLease(): string {
    return this.prefix + 'leadership:lease';
  }

  get leadership(): string {
    return this.prefix + 'leadership';
  }

  get published(): string {
    return this.prefix + 'leadership:published';
  }

  // The stores (docs/design.md §5); a job id here is in lower case, or `_` for blobs of no job.
  jobResult(jobId: string): string {
    return this.prefix + 'jobresult:' + jobId;
  }

  /** Sorted sets of job ids (every score 0), paged by ZRANGE BYLEX: all, and the dirty ones. */
  get jobResults(): string {
    return this.prefix + 'jobresult-ids';
  }

  get dirtyJobResults(): string {
    return this.prefix + 'jobresult-ids:dirty';
  }

  plan(jobId: string): string {
    return this.prefix + 'plan:' + jobId;
  }

  planRequirements(jobId: string): string {
    return this.prefix + 'plan-rr:' + jobId;
  }

  /** Sorted set of the job ids with a plan (every score 0), paged by ZRANGE BYLEX. */
  get plans(): string {
    return this.prefix + 'plan-ids';
  }

  /** The sets the indexes above replace (docs/decisions.md), moved into them on first read. */
  get legacyIndexes(): Array<{ legacy: string; index: string }> {
    return [
      { legacy: this.prefix + 'jobresults', index: this.jobResults },
      { legacy: this.prefix + 'jobresults:dirty', index: this.dirtyJobResults },
      { legacy: this.prefix + 'plans', index: this.plans },
    ];
  }

  checkpoints(jobId: string): string {
    return this.prefix + 'checkpoints:' + jobId;
  }

  checkpointIdCounter(jobId: string): string {
    return this.prefix + 'cpid:' + jobId;
  }

  /** Blob key → metadata of every blob of a job. */
  blobs(jobId: string): string {
    return this.prefix + 'blobs:' + jobId;
  }

  /** A plan's header and chunks, staged (with a TTL) until plan_put makes them the plan. */
  planStaged(uploadId: string): string {
    return this.prefix + 'planstaged:' + uploadId;
  }

  /** The chunks of one upload; staged (with a TTL) until committed. */
  blobData(uploadId: string): string {
    return this.prefix + 'blobdata:' + uploadId;
  }

  /** What a cluster's deletion has deleted so far (cleanup_cluster.lua): lives only while
   * one runs, or waits for the retry of one that failed partway. */
  get cleanupTally(): string {
    return this.prefix + 'cleanup';
  }

  /** The remembered answer of a write made with this Idempotency-Key ('' for none). */
  idempotency(key: string): string {
    return this.prefix + 'idem:' + key;
  }

  /** The live idempotency records, scored by when each expires: counted for their quota. */
  get idempotencyIndex(): string {
    return this.prefix + 'idem-index';
  }

  /** What the cluster's blobs take, counted for their quotas (hash: blobs, blobBytes). */
  get usage(): string {
    return this.prefix + 'usage';
  }

  static clusterOfChannel(channel: string): string | null {
    const m = /^lh:\{(.+)\}:changes$/.exec(channel);
    return m ? m[1] : null;
  }
}

/** Where every server hears of the first write of a cluster that had no data (its
 * channel is the message; lib/leadership.lua, store_index): views of such clusters
 * subscribe to no channel of their own (issue 16: reads open no subscription). */
export const BORN_CHANNEL = 'lh:born';

/** The key the servers watch to notice that Redis lost its data. */
export const MARKER_KEY = 'leasehold:marker';
