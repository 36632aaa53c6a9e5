/** Flink's ExecutionPlanStore: each job's plan as bytes, its resource requirements as
 * JSON, and the sorted set of job ids with a plan.
 *
 * A plan is a Redis list: a header (size, SHA-256 and a version unique to the write), then
 * chunks of up to 1 MiB, so that neither a write nor a read sends Redis more than a chunk
 * in one command (a 32 MiB plan read whole filled Redis's output buffers). Like a blob, a
 * plan is staged chunk by chunk under a key with a TTL, then one fenced script renames it
 * into place, so a reader never sees half a plan; each chunk is read together with the
 * header (MULTI), so that a reader never mixes the chunks of two writes. A plan stored
 * before (one string) is still read, in ranges of a chunk; its next write makes it a list. */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { ReplyError } from 'ioredis';
import type { RedisClient } from './redisLink.js';
import { HaError } from './errors.js';
import type { ClusterKeys } from './ids.js';
import { lexPage, migrateIndexes, type Page, type PageRequest } from './paging.js';
import { redisCall, redisFailure } from './redisCall.js';
import type { Fence, IdempotencyKey, StoreWriter } from './storeWriter.js';

const CHUNK_BYTES = 1 << 20;

/** A staged plan whose server died before committing it vanishes after this. */
const STAGED_TTL_MS = 10 * 60_000;

/** What a plan's list starts with. */
interface Header {
  /** size in bytes */
  n: number;
  /** SHA-256, hex */
  h: string;
  /** unique to the write */
  v: string;
}

export interface PlanRead {
  size: number;
  body: Readable;
}

export class RedisExecutionPlanStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly writer: StoreWriter,
  ) {}

  /** putExecutionPlan: replaces any earlier plan of the job. Whatever fails, the staged
   * chunks are removed. */
  async put(keys: ClusterKeys, jobId: string, plan: Buffer, fence: Fence, idem: IdempotencyKey) {
    const digest = sha256(plan);
    const request = [jobId, digest];
    // A deposed leader is refused before its bytes go to Redis; the commit checks again. A
    // retry with a remembered Idempotency-Key goes on: its answer stands.
    if (!(await this.writer.remembers(keys, idem))) await this.writer.check(keys, 'dispatcher', fence);
    const staged = keys.planStaged(randomUUID());
    let committed = false;
    try {
      const header: Header = { n: plan.length, h: digest, v: randomUUID() };
      let length = 0;
      for (const part of [Buffer.from(JSON.stringify(header)), ...chunksOf(plan)]) {
        checked(await redisCall(() => this.redis.pipeline().rpush(staged, part).pexpire(staged, STAGED_TTL_MS).exec()));
        length++;
      }
      const r = await this.writer.write('plan_put', { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request }, () => ({
        keys: [keys.plan(jobId), keys.plans, staged],
        args: [jobId, length],
      }));
      committed = !r.replayed;
      return { replayed: r.replayed };
    } finally {
      if (!committed) this.redis.unlink(staged).catch(() => {});
    }
  }

  /** recoverExecutionPlan: its size and a stream of its bytes, read a chunk at a time. */
  async get(keys: ClusterKeys, jobId: string): Promise<PlanRead> {
    const key = keys.plan(jobId);
    const type = await redisCall(() => this.redis.type(key));
    if (type === 'string') {
      const size = await redisCall(() => this.redis.strlen(key));
      if (size > 0) return { size, body: Readable.from(this.legacyChunks(key, size), { objectMode: false, highWaterMark: 1 }) };
    } else if (type === 'list') {
      const replies = await redisCall(() => this.redis.multi().lindex(key, 0).llen(key).exec());
      const [[, json], [, length]] = checked(replies) as [[null, string | null], [null, number]];
      if (json !== null) {
        const header = JSON.parse(json) as Header;
        const chunks = Math.ceil(header.n / CHUNK_BYTES);
        if (length - 1 !== chunks) throw new HaError('ExecutionPlanNotFound', 'the execution plan was lost with part of Redis\'s data; put it again');
        return { size: header.n, body: Readable.from(this.chunks(key, json, chunks), { objectMode: false, highWaterMark: 1 }) };
      }
    }
    throw new HaError('ExecutionPlanNotFound', 'the job has no execution plan');
  }

  /** getJobIds, by job id, a page at a time. */
  async jobIds(keys: ClusterKeys, page: PageRequest): Promise<Page<string>> {
    await migrateIndexes(this.redis, this.writer.scripts, keys);
    const ids = await lexPage(this.redis, keys.plans, page);
    if (ids.items.length === 0) return ids;
    // An id whose plan went while it waited in an index kept the old way is skipped.
    const pipeline = this.redis.pipeline();
    for (const id of ids.items) pipeline.exists(keys.plan(id));
    const exists = checked(await redisCall(() => pipeline.exec()));
    return { items: ids.items.filter((_, i) => exists[i][1] === 1), next: ids.next };
  }

  /** The chunks of a plan, each read with the header, which must still be the one the read
   * started with; one chunk read ahead. */
  private async *chunks(key: string, header: string, count: number): AsyncGenerator<Buffer> {
    const chunk = (i: number) => {
      const p = redisCall(() => this.redis.multi().lindex(key, 0).lindexBuffer(key, i + 1).exec()).then((replies) => {
        const [[, h], [, data]] = checked(replies) as [[null, string | null], [null, Buffer | null]];
        if (h !== header || !data) throw replaced();
        return data;
      });
      p.catch(() => {});
      return p;
    };
    let next = chunk(0);
    for (let i = 0; i < count; i++) {
      const data = await next;
      if (i + 1 < count) next = chunk(i + 1);
      yield data;
    }
  }

  /** A plan stored as one string, in ranges of a chunk. */
  private async *legacyChunks(key: string, size: number): AsyncGenerator<Buffer> {
    for (let off = 0; off < size; off += CHUNK_BYTES) {
      const end = Math.min(off + CHUNK_BYTES, size);
      let data: Buffer;
      try {
        data = await redisCall(() => this.redis.getrangeBuffer(key, off, end - 1));
      } catch (err: unknown) {
        // The plan was put again meanwhile: it is a list now.
        if (err instanceof ReplyError && (err as Error).message.startsWith('WRONGTYPE')) throw replaced();
        throw err;
      }
      if (data.length !== end - off) throw replaced();
      yield data;
    }
  }

  /** putJobResourceRequirements; ExecutionPlanNotFound when the job has no plan. */
  async putRequirements(keys: ClusterKeys, jobId: string, requirements: unknown, fence: Fence, idem: IdempotencyKey) {
    const json = JSON.stringify(requirements);
    const r = await this.writer.write(
      'plan_requirements',
      { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request: [jobId, json] },
      () => ({ keys: [keys.plan(jobId), keys.planRequirements(jobId)], args: [json] }),
    );
    return { replayed: r.replayed };
  }

  async getRequirements(keys: ClusterKeys, jobId: string): Promise<unknown> {
    const [hasPlan, json] = await redisCall(() =>
      Promise.all([this.redis.exists(keys.plan(jobId)), this.redis.get(keys.planRequirements(jobId))]),
    );
    if (!hasPlan) throw new HaError('ExecutionPlanNotFound', 'the job has no execution plan');
    if (json === null) throw new HaError('ResourceRequirementsNotFound', 'the job has no resource requirements');
    return JSON.parse(json);
  }
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function replaced(): HaError {
  return new HaError('ExecutionPlanNotFound', 'the execution plan was replaced or deleted while being read');
}

/** A pipeline's or transaction's replies, its first error thrown as redisCall would. */
function checked(replies: Array<[Error | null, unknown]> | null): Array<[null, unknown]> {
  if (!replies) throw replaced();
  const failed = replies.find(([err]) => err);
  if (failed) throw redisFailure(failed[0]);
  return replies as Array<[null, unknown]>;
}

function chunksOf(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let off = 0; off < data.length; off += CHUNK_BYTES) chunks.push(data.subarray(off, off + CHUNK_BYTES));
  return chunks;
}
