/** Flink's CompletedCheckpointStore and CheckpointIDCounter of each job, fenced by its job
 * manager: checkpoints in a sorted set scored by id, the counter in a string. */
import type { RedisClient } from './redisLink.js';
import { HaError } from './errors.js';
import { jobManager, type ClusterKeys } from './ids.js';
import { redisCall } from './redisCall.js';
import type { Fence, IdempotencyKey, StoreWriter } from './storeWriter.js';
import type { Floors } from './floors.js';
import type { Page, PageRequest } from './paging.js';

export interface Checkpoint {
  checkpointId: number;
  timestamp: number;
  externalPointer: string;
  metadata?: string;
  properties?: Record<string, string>;
}

/** Flink's JobStatus values. */
export const JOB_STATUSES = [
  'INITIALIZING',
  'CREATED',
  'RUNNING',
  'FAILING',
  'FAILED',
  'CANCELLING',
  'CANCELED',
  'FINISHED',
  'RESTARTING',
  'SUSPENDED',
  'RECONCILING',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** JobStatus.isGloballyTerminalState: only then are checkpoints and counter discarded. */
const GLOBALLY_TERMINAL = new Set<JobStatus>(['FINISHED', 'CANCELED', 'FAILED']);

export class RedisCheckpointStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly writer: StoreWriter,
    private readonly floors: Floors,
  ) {}

  /** addCheckpointAndSubsumeOldestOne: answers the checkpoints it subsumed, oldest first:
   * those of `subsume` (older ids Flink drops while it keeps an older checkpoint), then the
   * oldest beyond `maxRetained`. */
  async add(keys: ClusterKeys, jobId: string, cp: Checkpoint, maxRetained: number, fence: Fence, idem: IdempotencyKey, subsume: number[] = []) {
    const json = JSON.stringify(cp);
    const dropped = subsume.join(',');
    const r = await this.writer.write(
      'checkpoint_add',
      { keys, owner: jobManager(jobId), fence, idempotencyKey: idem, request: [jobId, json, String(maxRetained), dropped] },
      () => ({ keys: [keys.checkpoints(jobId)], args: [cp.checkpointId, json, maxRetained, dropped] }),
    );
    return { replayed: r.replayed, subsumed: r.value };
  }

  /** getAllCheckpoints, oldest first, a page at a time: `after` is the last checkpoint id
   * of the page before. */
  async all(keys: ClusterKeys, jobId: string, page: PageRequest): Promise<Page<Checkpoint>> {
    const from = page.after === undefined ? '-inf' : `(${page.after}`;
    const members = await redisCall(() =>
      this.redis.zrangebyscore(keys.checkpoints(jobId), from, '+inf', 'LIMIT', 0, page.limit + 1),
    );
    const items = members.slice(0, page.limit).map((m) => JSON.parse(m) as Checkpoint);
    return members.length > page.limit ? { items, next: String(items[items.length - 1].checkpointId) } : { items };
  }

  /** getLatestCheckpoint; CheckpointNotFound when the job has none. */
  async latest(keys: ClusterKeys, jobId: string): Promise<Checkpoint> {
    const [m] = await redisCall(() => this.redis.zrange(keys.checkpoints(jobId), '-1', '-1'));
    if (m === undefined) throw new HaError('CheckpointNotFound', 'the job has no completed checkpoint');
    return JSON.parse(m) as Checkpoint;
  }

  /** shutdown(jobStatus): discards every checkpoint when the status is globally terminal. */
  async shutdown(keys: ClusterKeys, jobId: string, status: JobStatus, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'checkpoint_shutdown',
      { keys, owner: jobManager(jobId), fence, idempotencyKey: idem, request: [jobId, status] },
      () => ({ keys: [keys.checkpoints(jobId)], args: [GLOBALLY_TERMINAL.has(status) ? '1' : '0'] }),
    );
    return { replayed: r.replayed, discarded: r.value };
  }

  /** CheckpointIDCounter.getAndIncrement: the value before; the first is 1. Never a value
   * this server answered before, even from a Redis gone back in time (its floors). */
  async getAndIncrement(keys: ClusterKeys, jobId: string, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'counter_increment',
      { keys, owner: jobManager(jobId), fence, idempotencyKey: idem, request: [jobId] },
      () => ({ keys: [keys.checkpointIdCounter(jobId)], args: [this.floors.of(keys.clusterId).counters[jobId] ?? 1] }),
    );
    this.floors.raiseCounter(keys.clusterId, jobId, r.value + 1);
    return { replayed: r.replayed, value: r.value };
  }

  /** CheckpointIDCounter.get: 1 before the first increment. */
  async getCount(keys: ClusterKeys, jobId: string): Promise<number> {
    const v = await redisCall(() => this.redis.get(keys.checkpointIdCounter(jobId)));
    return v === null ? 1 : Number(v);
  }

  /** CheckpointIDCounter.setCount; never backwards (CheckpointIdNotIncreasing). */
  async setCount(keys: ClusterKeys, jobId: string, value: number, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'counter_set',
      { keys, owner: jobManager(jobId), fence, idempotencyKey: idem, request: [jobId, String(value)] },
      () => ({ keys: [keys.checkpointIdCounter(jobId)], args: [value] }),
    );
    this.floors.raiseCounter(keys.clusterId, jobId, r.value);
    return { replayed: r.replayed, value: r.value };
  }

  /** CheckpointIDCounter.shutdown(jobStatus): removes the counter when the status is
   * globally terminal. */
  async shutdownCounter(keys: ClusterKeys, jobId: string, status: JobStatus, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'counter_shutdown',
      { keys, owner: jobManager(jobId), fence, idempotencyKey: idem, request: [jobId, status] },
      () => ({ keys: [keys.checkpointIdCounter(jobId)], args: [GLOBALLY_TERMINAL.has(status) ? '1' : '0'] }),
    );
    if (r.value) this.floors.forgetCounter(keys.clusterId, jobId);
    return { replayed: r.replayed, removed: r.value };
  }
}
