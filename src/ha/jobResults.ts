/** Flink's JobResultStore: one Redis hash per job, and sorted sets (scores 0, so in byte
 * order) of all and of dirty job ids, read in pages. */
import type { ClusterKeys } from './ids.js';
import { redisCall, redisFailure } from './redisCall.js';
import type { RedisClient } from './redisLink.js';
import { HaError } from './errors.js';
import type { Fence, IdempotencyKey, StoreWriter } from './storeWriter.js';
import { lexPage, migrateIndexes, type Page, type PageRequest } from './paging.js';

export const APPLICATION_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELED', 'UNKNOWN'] as const;

export interface JobResultInput {
  applicationStatus: (typeof APPLICATION_STATUSES)[number];
  jobName?: string;
  startTime?: number;
  endTime?: number;
  netRuntimeMs?: number;
  accumulatorResults?: Record<string, unknown>;
  failureCause?: string;
}

export interface JobResult extends JobResultInput {
  jobId: string;
  state: 'dirty' | 'clean';
  /** ms since the epoch, by Redis's clock. */
  createdAt: number;
  cleanedAt: number | null;
}

const NUMBERS = ['startTime', 'endTime', 'netRuntimeMs'] as const;
/** Entries read per pipeline: an entry may hold megabytes (accumulator results). */
const READ_BATCH = 16;
/** A page ends early, with a next cursor, once its entries reach this many bytes. */
const PAGE_BYTES = 8 << 20;

export class RedisJobResultStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly writer: StoreWriter,
  ) {}

  /** createDirtyResult; JobResultExists when the job has any entry. */
  async createDirty(keys: ClusterKeys, jobId: string, input: JobResultInput, fence: Fence, idem: IdempotencyKey) {
    const fields: string[] = [];
    for (const [k, v] of Object.entries(input)) {
      if (v !== undefined) fields.push(k, k === 'accumulatorResults' ? JSON.stringify(v) : String(v));
    }
    const r = await this.writer.write(
      'jobresult_create',
      { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request: [jobId, JSON.stringify(input)] },
      () => ({ keys: [keys.jobResult(jobId), keys.jobResults, keys.dirtyJobResults], args: [jobId, ...fields] }),
    );
    return { replayed: r.replayed, entry: entryOf(jobId, r.value) };
  }

  /** markResultAsClean; a clean entry stays as it is; JobResultNotFound when there is none. */
  async markClean(keys: ClusterKeys, jobId: string, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'jobresult_clean',
      { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request: [jobId] },
      () => ({ keys: [keys.jobResult(jobId), keys.dirtyJobResults], args: [jobId] }),
    );
    return { replayed: r.replayed, entry: entryOf(jobId, r.value) };
  }

  async get(keys: ClusterKeys, jobId: string): Promise<JobResult> {
    const h = await redisCall(() => this.redis.hgetall(keys.jobResult(jobId)));
    if (!h.state) throw new HaError('JobResultNotFound', 'the job has no job result entry');
    return entryOf(jobId, Object.entries(h).flat());
  }

  /** A page of the entries, or of the dirty (getDirtyResults) or clean ones, by job id.
   * Entries are read a few at a time, and a page ends early when it holds PAGE_BYTES; a
   * page of `clean` ones may hold fewer than asked (the dirty ones are skipped). */
  async list(keys: ClusterKeys, state: 'dirty' | 'clean' | undefined, page: PageRequest): Promise<Page<JobResult>> {
    await migrateIndexes(this.redis, this.writer.scripts, keys);
    const ids = await lexPage(this.redis, state === 'dirty' ? keys.dirtyJobResults : keys.jobResults, page);
    const entries: JobResult[] = [];
    let bytes = 0;
    for (let at = 0; at < ids.items.length; at += READ_BATCH) {
      if (bytes >= PAGE_BYTES) return { items: entries, next: ids.items[at - 1] };
      const batch = ids.items.slice(at, at + READ_BATCH);
      const pipeline = this.redis.pipeline();
      for (const id of batch) pipeline.hgetall(keys.jobResult(id));
      const replies = (await redisCall(() => pipeline.exec())) ?? [];
      replies.forEach(([err, h], i) => {
        if (err) throw redisFailure(err);
        const fields = h as Record<string, string>;
        for (const v of Object.values(fields)) bytes += v.length;
        // An id whose entry went meanwhile (cleanup of the whole cluster) is skipped.
        if (fields.state && (!state || fields.state === state)) entries.push(entryOf(batch[i], Object.entries(fields).flat()));
      });
    }
    return { items: entries, next: ids.next };
  }
}

/** An entry from its hash's fields, as a flat list of names and values. */
function entryOf(jobId: string, flat: string[]): JobResult {
  const h: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) h[flat[i]] = flat[i + 1];
  const e: JobResult = {
    jobId,
    applicationStatus: h.applicationStatus as JobResult['applicationStatus'],
    state: h.state as JobResult['state'],
    createdAt: Number(h.createdAt),
    cleanedAt: h.cleanedAt ? Number(h.cleanedAt) : null,
  };
  if (h.jobName !== undefined) e.jobName = h.jobName;
  for (const k of NUMBERS) if (h[k] !== undefined) e[k] = Number(h[k]);
  if (h.accumulatorResults !== undefined) e.accumulatorResults = JSON.parse(h.accumulatorResults);
  if (h.failureCause !== undefined) e.failureCause = h.failureCause;
  return e;
}
