/**
 * Clients of a cluster's stores. Each write carries the fencing token of the leadership
 * that owns the data, taken at the moment of the write (a write without a leadership
 * fails locally with `NotLeaderError`), and an `Idempotency-Key`, so that a write whose
 * answer was lost is retried with the same key: the server then answers the first
 * attempt's outcome instead of writing twice.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { NotFoundError, UnavailableError } from './errors.js';
import { seg, type Http, type RequestOptions } from './http.js';
import { backoffMs, sleep } from './timing.js';
import type {
  BlobInfo,
  BlobStored,
  Checkpoint,
  CheckpointAdded,
  JobCleanup,
  JobResult,
  JobResultEntry,
  JobStatus,
} from './types.js';

/** Where a write's token comes from: a leadership (anything with `fencingToken()`, like
 * `LeaderElection`), a token, or `override` (an admin's unfenced write). A store client
 * without one can read; its writes are refused (`FencingTokenRequired`). */
export type Fence = { fencingToken(): number } | number | 'override';

/** Attempts of a write whose outcome was unknown (503, timeout, network error). */
const WRITE_ATTEMPTS = 3;

/** Entries a list method collects at most unless told otherwise: beyond, it throws and
 * the caller should iterate (the `each…` methods) instead of holding everything. */
export const LIST_MAX_DEFAULT = 100_000;
/** Entries asked for per page (the server's maximum). */
const PAGE_LIMIT = 1000;

export interface ListOptions {
  /** Throw (RangeError) rather than collect more than this many entries (default 100,000). */
  max?: number;
}

/** Every entry of a paginated list (`path`, answering its entries in `field`), page after
 * page (following `nextCursor`). */
export async function* paged<T>(http: Http, path: string, field: string, query: Record<string, string> = {}): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const params = new URLSearchParams({ ...query, limit: String(PAGE_LIMIT), ...(cursor ? { cursor } : {}) });
    const page = await http.request<Record<string, unknown> & { nextCursor?: string }>(`${path}?${params}`);
    yield* page[field] as T[];
    cursor = page.nextCursor;
  } while (cursor);
}

/** Every entry of a paginated list, up to `max` (beyond: RangeError); with `keyOf`, an
 * entry listed twice (a scan may) is kept once, the later one. */
export async function collect<T>(entries: AsyncIterable<T>, what: string, options: ListOptions, keyOf?: (e: T) => string): Promise<T[]> {
  const max = options.max ?? LIST_MAX_DEFAULT;
  const all = new Map<unknown, T>();
  for await (const e of entries) {
    const key = keyOf ? keyOf(e) : all.size;
    if (!all.has(key) && all.size >= max) throw new RangeError(`more than ${max} ${what}: iterate over them, or pass a larger max`);
    all.set(key, e);
  }
  return [...all.values()];
}

/** A blob transfer may take long; its timeout covers the whole transfer. */
const TRANSFER_TIMEOUT_MS = 3_600_000;

class Store {
  protected readonly base: string;

  constructor(
    protected readonly http: Http,
    clusterId: string,
    private readonly fence: Fence | undefined,
  ) {
    this.base = `/v1/clusters/${seg(clusterId)}`;
  }

  protected read<T>(path: string): Promise<T> {
    return this.http.request<T>(this.base + path);
  }

  /** Every entry of a paginated list of the cluster, page after page. */
  protected paged<T>(path: string, field: string, query: Record<string, string> = {}): AsyncGenerator<T> {
    return paged<T>(this.http, this.base + path, field, query);
  }

  protected collect<T>(entries: AsyncIterable<T>, what: string, options: ListOptions, keyOf?: (e: T) => string): Promise<T[]> {
    return collect(entries, what, options, keyOf);
  }

  /** A read that answers null for 404. */
  protected async find<T>(path: string, options: RequestOptions = {}): Promise<T | null> {
    try {
      return await this.http.request<T>(this.base + path, options);
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  /** A fenced write, retried with the same token and key while its outcome is unknown
   * (a streamed body cannot be sent twice, so it is not retried). */
  protected async write<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const token = typeof this.fence === 'object' ? this.fence.fencingToken() : this.fence;
    const headers: Record<string, string> = { 'idempotency-key': randomUUID() };
    if (token !== undefined) headers['x-fencing-token'] = String(token);
    const attempts = body instanceof Readable ? 1 : WRITE_ATTEMPTS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.http.request<T>(this.base + path, { method, body, headers, timeoutMs });
      } catch (err) {
        if (!(err instanceof UnavailableError) || attempt + 1 >= attempts) throw err;
        await sleep(backoffMs(attempt, 200, 2000));
      }
    }
  }
}

/** Flink's `JobResultStore`, fenced by the dispatcher. */
export class JobResultStore extends Store {
  /** createDirtyResult: `ConflictError` (`JobResultExists`) if the job has any entry. */
  createDirty(jobId: string, result: JobResult): Promise<JobResultEntry> {
    return this.write('PUT', `/job-results/${seg(jobId)}`, result);
  }

  /** markResultAsClean: `NotFoundError` without an entry. */
  markClean(jobId: string): Promise<JobResultEntry> {
    return this.write('POST', `/job-results/${seg(jobId)}/clean`);
  }

  get(jobId: string): Promise<JobResultEntry | null> {
    return this.find(`/job-results/${seg(jobId)}`);
  }

  /** The entries (all, dirty or clean) by job id, every page of them, up to `max`. */
  list(state?: 'dirty' | 'clean', options: ListOptions = {}): Promise<JobResultEntry[]> {
    return this.collect(this.each(state), 'job results', options);
  }

  /** The entries by job id, fetched a page at a time as the caller iterates. */
  each(state?: 'dirty' | 'clean'): AsyncGenerator<JobResultEntry> {
    return this.paged('/job-results', 'jobResults', state ? { state } : {});
  }
}

/** Flink's `ExecutionPlanStore`, fenced by the dispatcher. */
export class ExecutionPlanStore extends Store {
  put(jobId: string, plan: Uint8Array): Promise<{ jobId: string; size: number }> {
    return this.write('PUT', `/execution-plans/${seg(jobId)}`, plan);
  }

  async get(jobId: string): Promise<Buffer | null> {
    const res = await this.find<Response>(`/execution-plans/${seg(jobId)}`, { raw: true });
    return res && Buffer.from(await res.arrayBuffer());
  }

  /** The job ids with a plan, by job id, every page of them, up to `max`. */
  jobIds(options: ListOptions = {}): Promise<string[]> {
    return this.collect(this.eachJobId(), 'job ids', options);
  }

  /** The job ids with a plan, fetched a page at a time as the caller iterates. */
  eachJobId(): AsyncGenerator<string> {
    return this.paged('/execution-plans', 'jobIds');
  }

  async putResourceRequirements(jobId: string, requirements: Record<string, unknown>): Promise<void> {
    await this.write('PUT', `/execution-plans/${seg(jobId)}/resource-requirements`, requirements);
  }

  async getResourceRequirements(jobId: string): Promise<Record<string, unknown> | null> {
    const res = await this.find<{ resourceRequirements: Record<string, unknown> }>(`/execution-plans/${seg(jobId)}/resource-requirements`);
    return res && res.resourceRequirements;
  }
}

/** Flink's `CompletedCheckpointStore` of one job, fenced by its job manager. */
export class CheckpointStore extends Store {
  constructor(http: Http, clusterId: string, fence: Fence | undefined, private readonly jobId: string) {
    super(http, clusterId, fence);
  }

  private get path(): string {
    return `/jobs/${seg(this.jobId)}/checkpoints`;
  }

  /** addCheckpointAndSubsumeOldestOne: `ConflictError` (`CheckpointIdNotIncreasing`) for
   * an id not above the latest. */
  add(checkpoint: Checkpoint & { maxRetained?: number; subsume?: number[] }): Promise<CheckpointAdded> {
    return this.write('POST', this.path, checkpoint);
  }

  /** The checkpoints, oldest first, every page of them, up to `max`. */
  list(options: ListOptions = {}): Promise<Checkpoint[]> {
    return this.collect(this.each(), 'checkpoints', options);
  }

  /** The checkpoints, oldest first, fetched a page at a time as the caller iterates. */
  each(): AsyncGenerator<Checkpoint> {
    return this.paged(this.path, 'checkpoints');
  }

  latest(): Promise<Checkpoint | null> {
    return this.find(`${this.path}/latest`);
  }

  /** Discards every checkpoint only for a globally terminal status. */
  shutdown(jobStatus: JobStatus): Promise<{ jobStatus: string; discarded: number[] }> {
    return this.write('POST', `${this.path}/shutdown`, { jobStatus });
  }
}

/** Flink's `CheckpointIDCounter` of one job, fenced by its job manager. */
export class CheckpointIdCounter extends Store {
  constructor(http: Http, clusterId: string, fence: Fence | undefined, private readonly jobId: string) {
    super(http, clusterId, fence);
  }

  private get path(): string {
    return `/jobs/${seg(this.jobId)}/checkpoint-id-counter`;
  }

  /** The value before the increment; the first is 1. */
  async getAndIncrement(): Promise<number> {
    return (await this.write<{ value: number }>('POST', `${this.path}/increment`)).value;
  }

  async current(): Promise<number> {
    return (await this.read<{ value: number }>(this.path)).value;
  }

  /** setCount: never lowers it (`ConflictError`). */
  async set(value: number): Promise<void> {
    await this.write('PUT', this.path, { value });
  }

  shutdown(jobStatus: JobStatus): Promise<{ jobStatus: string; removed: boolean }> {
    return this.write('POST', `${this.path}/shutdown`, { jobStatus });
  }
}

/** Flink's `BlobStore`, fenced by the dispatcher; job id `_` for blobs of no job. */
export class BlobStore extends Store {
  /** Stores bytes or a stream (a stream is sent once, never retried). */
  put(jobId: string, blobKey: string, data: Uint8Array | Readable): Promise<BlobStored> {
    return this.write('PUT', `/blobs/${seg(jobId)}/${seg(blobKey)}`, data, TRANSFER_TIMEOUT_MS);
  }

  /** The blob as a stream, or null. */
  async get(jobId: string, blobKey: string): Promise<Readable | null> {
    const res = await this.find<Response>(`/blobs/${seg(jobId)}/${seg(blobKey)}`, { raw: true, timeoutMs: TRANSFER_TIMEOUT_MS });
    return res && Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  }

  /** The job's blobs, every page of them, up to `max`, by key (the server pages by scan,
   * so this sorts them, and drops the repeats a scan may give). */
  async list(jobId: string, options: ListOptions = {}): Promise<BlobInfo[]> {
    const blobs = await this.collect(this.each(jobId), 'blobs', options, (b) => b.blobKey);
    return blobs.sort((a, b) => (a.blobKey < b.blobKey ? -1 : a.blobKey > b.blobKey ? 1 : 0));
  }

  /** The job's blobs, fetched a page at a time as the caller iterates; in scan order, and
   * a blob may come twice (when Redis resized the hash meanwhile). */
  each(jobId: string): AsyncGenerator<BlobInfo> {
    return this.paged(`/blobs/${seg(jobId)}`, 'blobs');
  }

  async delete(jobId: string, blobKey: string): Promise<boolean> {
    return (await this.write<{ deleted: boolean }>('DELETE', `/blobs/${seg(jobId)}/${seg(blobKey)}`)).deleted;
  }

  async deleteAll(jobId: string): Promise<number> {
    return (await this.write<{ deleted: number }>('DELETE', `/blobs/${seg(jobId)}`)).deleted;
  }
}

/** Global cleanup of a job (all but its result), fenced by the dispatcher. */
export class JobCleaner extends Store {
  cleanupJob(jobId: string): Promise<JobCleanup> {
    return this.write('DELETE', `/jobs/${seg(jobId)}`);
  }
}
