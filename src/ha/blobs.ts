/**
 * Flink's BlobStore. A blob is a Redis list of chunks of up to 1 MiB, so that it streams
 * in and out without ever being whole in memory (and may exceed Redis's 512 MB strings).
 * An upload is staged under its own upload id with a TTL; one fenced script makes it
 * visible by pointing the job's metadata hash at it. A reader follows the metadata to the
 * upload it names, so that it never mixes the chunks of two uploads.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { RedisClient } from './redisLink.js';
import { HaError } from './errors.js';
import { BLOB_KEY_PATTERN, type ClusterKeys } from './ids.js';
import { redisCall, redisFailure } from './redisCall.js';
import { quotaError } from './replies.js';
import type { Fence, IdempotencyKey, StoreWriter } from './storeWriter.js';
import { PAGE_MAX, type Page, type PageRequest } from './paging.js';

const CHUNK_BYTES = 1 << 20;
/** A staged upload that stops receiving chunks (its server died) vanishes after this. */
const STAGED_TTL_MS = 10 * 60_000;

export interface BlobMeta {
  blobKey: string;
  size: number;
  sha256: string;
  /** ms since the epoch, by Redis's clock. */
  createdAt: number;
}

/** What the metadata hash holds for a blob: upload id, size, SHA-256, created at. */
interface Stored {
  u: string;
  n: number;
  h: string;
  t: number;
}

export interface PutOptions {
  fence: Fence;
  idempotencyKey: IdempotencyKey;
  maxBytes: number;
  /** The SHA-256 (hex) the bytes must have, if the client sent one. */
  expectedSha256?: string;
}

export class RedisBlobStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly writer: StoreWriter,
  ) {}

  /** put: streams `body` into a staged upload, then makes it the blob, replacing any
   * earlier one. Whatever fails, the staged chunks are removed. */
  async put(keys: ClusterKeys, jobId: string, blobKey: string, body: AsyncIterable<Buffer>, opts: PutOptions) {
    // Refuse a deposed leader before taking its bytes; the commit checks again. A retry with
    // a remembered Idempotency-Key goes on: its answer stands even after the lease moved on.
    if (!(await this.writer.remembers(keys, opts.idempotencyKey))) await this.writer.check(keys, 'dispatcher', opts.fence);
    const uploadId = randomUUID();
    const staged = keys.blobData(uploadId);
    const hash = createHash('sha256');
    // One buffer, reused: a chunk is sent and acknowledged before it is filled again.
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let fill = 0;
    let size = 0;
    let chunks = 0;
    const flush = async () => {
      if (fill === 0) return;
      const replies = await redisCall(() =>
        this.redis.pipeline().rpush(staged, chunk.subarray(0, fill)).pexpire(staged, STAGED_TTL_MS).exec(),
      );
      const failed = replies?.find(([err]) => err);
      if (failed) throw redisFailure(failed[0]);
      fill = 0;
      chunks++;
    };
    let committed = false;
    try {
      for await (const data of body) {
        size += data.length;
        if (size > opts.maxBytes) throw new HaError('PayloadTooLarge', `a blob may have at most ${opts.maxBytes} bytes`);
        // Beyond the whole quota it could never commit: refused now rather than staged whole.
        if (size > this.writer.quotas.blobBytes) throw quotaError('blobBytes', this.writer.quotas.blobBytes);
        hash.update(data);
        for (let off = 0; off < data.length; ) {
          const n = data.copy(chunk, fill, off);
          fill += n;
          off += n;
          if (fill === CHUNK_BYTES) await flush();
        }
      }
      await flush();
      const sha256 = hash.digest('hex');
      if (opts.expectedSha256 !== undefined && opts.expectedSha256.toLowerCase() !== sha256) {
        throw new HaError('ContentSha256Mismatch', `the body's SHA-256 is ${sha256}, not X-Content-SHA256`);
      }
      const r = await this.writer.write(
        'blob_commit',
        { keys, owner: 'dispatcher', fence: opts.fence, idempotencyKey: opts.idempotencyKey, request: [jobId, blobKey, sha256] },
        async () => {
          const old = (await this.stored(keys, jobId, blobKey))?.u ?? '';
          return { keys: [keys.blobs(jobId), staged, keys.blobData(old)], args: [blobKey, uploadId, size, sha256, old, chunks] };
        },
      );
      committed = !r.replayed;
      return { replayed: r.replayed, size, sha256 };
    } finally {
      if (!committed) this.redis.unlink(staged).catch(() => {});
    }
  }

  /** get: the blob's metadata and a stream of its bytes, read one chunk ahead. */
  async get(keys: ClusterKeys, jobId: string, blobKey: string): Promise<{ meta: BlobMeta; body: Readable }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const s = await this.stored(keys, jobId, blobKey);
      if (!s) break;
      const meta = metaOf(blobKey, s);
      if (s.n === 0) return { meta, body: Readable.from([]) };
      const chunks = await redisCall(() => this.redis.llen(keys.blobData(s.u)));
      // None: the blob was replaced between the two reads; read the new one.
      if (chunks === 0) continue;
      // Fewer than it was committed with: Redis lost some (a restored backup, a failover).
      // Answer that now rather than promise bytes that cannot be sent.
      const committed = Math.ceil(s.n / CHUNK_BYTES);
      if (chunks !== committed) {
        throw new HaError('BlobDataLost', `the bytes of blob ${blobKey} were lost with Redis's data (${chunks} of ${committed} chunks left); upload it again`);
      }
      return { meta, body: Readable.from(this.chunks(keys.blobData(s.u), chunks), { objectMode: false, highWaterMark: 1 }) };
    }
    throw new HaError('BlobNotFound', `no blob ${blobKey}`);
  }

  /** A page of the job's blobs, read by HSCAN: `after` is `<scan cursor>/<count>/<last
   * blob key>`. A scan batch is sorted by key and the page continues inside it after the
   * last key, with the COUNT that read it (so the same batch, whatever limit the next page
   * asks), so that a batch larger than the page (a small hash comes whole) is still answered
   * in pages; the order is by key within a batch only. Like HSCAN, a blob present for the
   * whole paging is listed at least once, one added or deleted meanwhile may be or not. */
  async list(keys: ClusterKeys, jobId: string, page: PageRequest): Promise<Page<BlobMeta>> {
    const [scan, count, afterKey] = page.after === undefined ? ['0', '0', ''] : page.after.split('/');
    const batchCount = count === '0' ? page.limit : Math.min(Number(count), PAGE_MAX);
    const [next, flat] = await redisCall(() => this.redis.hscan(keys.blobs(jobId), scan, 'COUNT', batchCount));
    const batch: BlobMeta[] = [];
    for (let i = 0; i < flat.length; i += 2) if (flat[i] > afterKey) batch.push(metaOf(flat[i], JSON.parse(flat[i + 1]) as Stored));
    batch.sort((a, b) => (a.blobKey < b.blobKey ? -1 : 1));
    if (batch.length > page.limit) {
      const items = batch.slice(0, page.limit);
      return { items, next: `${scan}/${batchCount}/${items[items.length - 1].blobKey}` };
    }
    return next === '0' ? { items: batch } : { items: batch, next: `${next}/0/` };
  }

  /** delete: true when there was such a blob. */
  async delete(keys: ClusterKeys, jobId: string, blobKey: string, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'blob_delete',
      { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request: [jobId, blobKey] },
      async () => {
        const u = (await this.stored(keys, jobId, blobKey))?.u ?? '';
        return { keys: [keys.blobs(jobId), keys.blobData(u)], args: ['0', blobKey, u] };
      },
    );
    return { replayed: r.replayed, deleted: r.value === 1 };
  }

  /** deleteAll(jobId): answers how many blobs it deleted. */
  async deleteAll(keys: ClusterKeys, jobId: string, fence: Fence, idem: IdempotencyKey) {
    const r = await this.writer.write(
      'blob_delete',
      { keys, owner: 'dispatcher', fence, idempotencyKey: idem, request: [jobId] },
      async () => {
        const uploads = await this.uploads(keys, jobId);
        return {
          keys: [keys.blobs(jobId), ...[...uploads.values()].map((u) => keys.blobData(u))],
          args: ['1', ...[...uploads].flat()],
        };
      },
    );
    return { replayed: r.replayed, deleted: r.value };
  }

  /** Blob key → upload id of each blob of a job. */
  async uploads(keys: ClusterKeys, jobId: string): Promise<Map<string, string>> {
    const all = await redisCall(() => this.redis.hgetall(keys.blobs(jobId)));
    return new Map(Object.entries(all).map(([k, v]) => [k, (JSON.parse(v) as Stored).u]));
  }

  private async stored(keys: ClusterKeys, jobId: string, blobKey: string): Promise<Stored | null> {
    const json = await redisCall(() => this.redis.hget(keys.blobs(jobId), blobKey));
    return json === null ? null : (JSON.parse(json) as Stored);
  }

  private async *chunks(key: string, count: number): AsyncGenerator<Buffer> {
    let next = this.chunk(key, 0);
    for (let i = 0; i < count; i++) {
      const data = await next;
      if (i + 1 < count) next = this.chunk(key, i + 1);
      yield data;
    }
  }

  /** One chunk; a reader that stops early must not leave its prefetch rejected unhandled. */
  private chunk(key: string, i: number): Promise<Buffer> {
    const p = redisCall(() => this.redis.lindexBuffer(key, i)).then((data) => {
      if (!data) throw new HaError('BlobNotFound', 'the blob was replaced or deleted while being read');
      return data;
    });
    p.catch(() => {});
    return p;
  }
}

function metaOf(blobKey: string, s: Stored): BlobMeta {
  return { blobKey, size: s.n, sha256: s.h, createdAt: s.t };
}

/** A blob list position as list() makes it (the HTTP layer checks cursors with it). */
export const BLOB_POSITION = new RegExp(`^[0-9]{1,20}/(?:0|[1-9][0-9]{0,3})/(?:${BLOB_KEY_PATTERN.slice(1, -1)})?$`);
