/**
 * The blob store over HTTP (docs/design.md §5, openapi.yaml): byte-exact round trips,
 * listing, replace, delete and deleteAll, the `_` job, key validation, X-Content-SHA256,
 * BLOB_MAX_BYTES, interrupted uploads, and a 200 MiB blob streamed in and out of a real
 * server process with its memory flat. Redis is inspected directly to prove that a refused
 * or broken upload leaves neither a blob nor a staged `blobdata:*` key behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Redis } from 'ioredis';
import { connectRedis, ownRedis, ownRedisUrl, post, randomJobId, ServerProcess, sleep, startApp, uniqueCluster, waitFor } from './support/app.js';
import { scanKeys, stopAllRedis } from './support/redis.js';

const MiB = 1024 * 1024;
const OCTETS = 'application/octet-stream';

let redisUrl: string;
let client: Redis;
before(async () => {
  redisUrl = await ownRedisUrl();
  client = await connectRedis(redisUrl);
});
after(async () => {
  client?.disconnect();
  await stopAllRedis();
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: Buffer;
  body: any;
}

interface RequestOptions {
  headers?: Record<string, string>;
  /** A whole body, or a stream of chunks written with back-pressure (chunked unless Content-Length is given). */
  body?: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;
  /** Consumes the answer's bytes as they come instead of collecting them. */
  onData?: (chunk: Buffer) => void;
}

/**
 * One request through node:http, with the path sent exactly as given (fetch would resolve
 * `.` and `..`). An early answer (413 while the body is still going out) is kept: the rest
 * of the body is then dropped.
 */
function request(base: string, method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: hostname, port, method, path, headers: opts.headers });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => (opts.onData ? opts.onData(c) : chunks.push(c)));
      res.on('error', reject);
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const isJson = String(res.headers['content-type'] ?? '').includes('json') && bytes.length > 0;
        resolve({ status: res.statusCode!, headers: res.headers, bytes, body: isJson ? JSON.parse(bytes.toString()) : null });
      });
    });
    void (async () => {
      for await (const chunk of Buffer.isBuffer(opts.body) ? pieces(opts.body) : (opts.body ?? [])) {
        if (answered || req.destroyed) {
          req.destroy();
          return;
        }
        if (!req.write(chunk)) await drained(req);
      }
      req.end();
    })().catch((err) => {
      req.destroy();
      if (!answered) reject(err);
    });
  });
}

function* pieces(b: Buffer, size = 64 * 1024): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

/** Until the request can take more, or is gone. */
function drained(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const blobsPath = (cluster: string, jobId: string) => `/v1/clusters/${cluster}/blobs/${jobId}`;

/** Deterministic pseudo-random bytes (AES-256-CTR keystream of a seed), produced chunk by chunk. */
function* seeded(seed: string, total: number, chunkSize = 64 * 1024): Generator<Buffer> {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkSize);
  for (let left = total; left > 0; left -= chunkSize) yield cipher.update(zeros.subarray(0, Math.min(chunkSize, left)));
}

/** A test's view of one cluster: its dispatcher token and blob requests carrying it. */
class Blobs {
  private constructor(
    readonly base: string,
    readonly cluster: string,
    readonly token: string,
  ) {}

  static async open(base: string, cluster = uniqueCluster('blob')): Promise<Blobs> {
    const r = await post(base, `/v1/clusters/${cluster}/leaders/dispatcher/campaign`, { contenderId: 'dispatcher-1', ttlMs: 120_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.granted, true, JSON.stringify(r.body));
    return new Blobs(base, cluster, String(r.body.leader.fencingToken));
  }

  put(jobId: string, key: string, body: RequestOptions['body'], headers: Record<string, string> = {}): Promise<Reply> {
    const length: Record<string, string> = Buffer.isBuffer(body) ? { 'content-length': String(body.length) } : {};
    return request(this.base, 'PUT', `${blobsPath(this.cluster, jobId)}/${key}`, {
      headers: { 'content-type': OCTETS, 'x-fencing-token': this.token, ...length, ...headers },
      body,
    });
  }

  /** PUT that must answer 201 with the spec's body. */
  async store(jobId: string, key: string, bytes: Buffer): Promise<void> {
    const r = await this.put(jobId, key, bytes);
    assert.equal(r.status, 201, `PUT ${jobId}/${key}: ${r.bytes}`);
    assert.deepEqual(r.body, { jobId, blobKey: key, size: bytes.length, sha256: sha256(bytes) });
  }

  get(jobId: string, key?: string, opts: RequestOptions = {}): Promise<Reply> {
    return request(this.base, 'GET', key === undefined ? blobsPath(this.cluster, jobId) : `${blobsPath(this.cluster, jobId)}/${key}`, opts);
  }

  /** GET that must answer exactly these bytes with Content-Length and X-Content-SHA256. */
  async expect(jobId: string, key: string, bytes: Buffer): Promise<void> {
    const r = await this.get(jobId, key);
    assert.equal(r.status, 200, `GET ${jobId}/${key}: ${r.bytes}`);
    assert.equal(r.headers['content-length'], String(bytes.length), `Content-Length of ${key}`);
    assert.equal(r.headers['x-content-sha256'], sha256(bytes), `X-Content-SHA256 of ${key}`);
    assert.ok(r.bytes.equals(bytes), `bytes of ${key} (${r.bytes.length} vs ${bytes.length})`);
  }

  async expectMissing(jobId: string, key: string): Promise<void> {
    const r = await this.get(jobId, key);
    assert.equal(r.status, 404, `GET ${jobId}/${key}: ${r.bytes}`);
    assertError(r, 404, 'BlobNotFound');
  }

  /** The keys listed by GET /blobs/{jobId}, checking the list's shape. */
  async list(jobId: string): Promise<string[]> {
    const r = await this.get(jobId);
    assert.equal(r.status, 200, `GET blobs/${jobId}: ${r.bytes}`);
    assert.equal(r.body.jobId, jobId);
    for (const b of r.body.blobs) {
      assert.deepEqual(Object.keys(b).sort(), ['blobKey', 'createdAt', 'sha256', 'size']);
      assert.ok(!Number.isNaN(Date.parse(b.createdAt)), `createdAt ${b.createdAt}`);
    }
    return r.body.blobs.map((b: { blobKey: string }) => b.blobKey);
  }

  async delete(jobId: string, key?: string): Promise<any> {
    const path = key === undefined ? blobsPath(this.cluster, jobId) : `${blobsPath(this.cluster, jobId)}/${key}`;
    const r = await request(this.base, 'DELETE', path, { headers: { 'x-fencing-token': this.token } });
    assert.equal(r.status, 200, `DELETE ${path}: ${r.bytes}`);
    return r.body;
  }

  /** Every Redis key of the blob store of this cluster (`blobs:*` and `blobdata:*`), sorted. */
  async redisKeys(): Promise<string[]> {
    return scanKeys(client, `lh:{${this.cluster}}:blob*`);
  }

  async stagedKeys(): Promise<string[]> {
    return scanKeys(client, `lh:{${this.cluster}}:blobdata:*`);
  }

  /** Waits (a refused upload may be cleaned up just after its answer) until Redis holds exactly `keys`. */
  async expectRedisKeys(keys: string[], what: string): Promise<void> {
    await waitFor(async () => JSON.stringify(await this.redisKeys()) === JSON.stringify(keys), 5000, what).catch(async (err) => {
      assert.deepEqual(await this.redisKeys(), keys, `${what}: ${(err as Error).message}`);
    });
  }
}

function assertError(r: Reply, status: number, error?: string): void {
  assert.equal(r.status, status, `status (body ${r.bytes})`);
  assert.deepEqual(Object.keys(r.body ?? {}).sort(), ['error', 'message', 'statusCode'], `error shape of ${r.bytes}`);
  assert.equal(r.body.statusCode, status);
  if (error) assert.equal(r.body.error, error);
}

async function rss(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^process_resident_memory_bytes (\S+)$/m.exec(text);
  assert.ok(m, 'process_resident_memory_bytes in /metrics');
  return Number(m[1]);
}

/** Runs `work` while sampling the server's RSS every ~50 ms; answers its result and the peak RSS. */
async function sampled<T>(base: string, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = await rss(base);
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await rss(base));
      await sleep(50);
    }
  })();
  try {
    return { result: await work(), peak };
  } finally {
    running = false;
    await sampler;
    peak = Math.max(peak, await rss(base));
  }
}

test('blobs round-trip byte-exact at 0 B, 1 B, 1 MiB ± 1 and 5 MiB, with Content-Length and X-Content-SHA256', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const stored = new Map([0, 1, MiB - 1, MiB + 1, 5 * MiB].map((size) => [`size-${size}`, randomBytes(size)]));
  for (const [key, bytes] of stored) {
    await blobs.store(job, key, bytes);
    await blobs.expect(job, key, bytes);
  }
  for (const [key, bytes] of stored) await blobs.expect(job, key, bytes);
});

test('GET /blobs/{jobId} lists blobs sorted by key; a PUT replaces; DELETE removes one, then answers deleted: false', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  assert.deepEqual(await blobs.list(job), [], 'a job without blobs lists none');

  for (const key of ['zeta', 'Alpha', 'm.1', 'a_b-c']) await blobs.store(job, key, Buffer.from(key));
  assert.deepEqual(await blobs.list(job), ['Alpha', 'a_b-c', 'm.1', 'zeta']);

  const replacement = randomBytes(3000);
  await blobs.store(job, 'm.1', replacement);
  await blobs.expect(job, 'm.1', replacement);
  const listed = (await blobs.get(job)).body.blobs;
  assert.equal(listed.length, 4, 'a replace adds no entry');
  const entry = listed.find((b: any) => b.blobKey === 'm.1');
  assert.deepEqual([entry.size, entry.sha256], [3000, sha256(replacement)], 'the listing shows the replacement');
  await waitFor(async () => (await blobs.stagedKeys()).length === 4, 5000, 'one blobdata list per blob: the replaced one is gone');

  assert.deepEqual(await blobs.delete(job, 'zeta'), { deleted: true });
  await blobs.expectMissing(job, 'zeta');
  assert.deepEqual(await blobs.delete(job, 'zeta'), { deleted: false });
  assert.deepEqual(await blobs.list(job), ['Alpha', 'a_b-c', 'm.1']);
  await blobs.expect(job, 'Alpha', Buffer.from('Alpha'));
});

test('an upper-case job id is answered in lower case and names the same blobs', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const r = await blobs.put(job.toUpperCase(), 'k', Buffer.from('x'));
  assert.equal(r.status, 201, String(r.bytes));
  assert.equal(r.body.jobId, job);
  await blobs.expect(job, 'k', Buffer.from('x'));
});

test('a blob that is not there is 404 BlobNotFound, in a job with blobs and in one without', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  await blobs.store(job, 'present', Buffer.from('p'));
  await blobs.expectMissing(job, 'absent');
  await blobs.expectMissing(randomJobId(), 'present');
  await blobs.expectMissing('_', 'present');
});

test('DELETE /blobs/{jobId} removes every blob of that job only (the `_` job too) and leaves no chunks in Redis', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const [jobA, jobB] = [randomJobId(), randomJobId()];
  const big = randomBytes(2 * MiB + 5);
  for (const key of ['one', 'two', 'three']) await blobs.store(jobA, key, key === 'two' ? big : Buffer.from(key));
  await blobs.store(jobB, 'one', Buffer.from('b1'));
  await blobs.store('_', 'shared', Buffer.from('no job'));
  await blobs.store('_', 'big', big);
  assert.deepEqual(await blobs.list('_'), ['big', 'shared']);

  assert.deepEqual(await blobs.delete(jobA), { deleted: 3 });
  assert.deepEqual(await blobs.list(jobA), []);
  await blobs.expectMissing(jobA, 'two');
  await blobs.expect(jobB, 'one', Buffer.from('b1'));
  await blobs.expect('_', 'big', big);
  assert.deepEqual(await blobs.delete(jobA), { deleted: 0 }, 'deleteAll again: nothing left');

  assert.deepEqual(await blobs.delete('_'), { deleted: 2 });
  assert.deepEqual(await blobs.list('_'), []);
  await blobs.expectMissing('_', 'shared');
  await blobs.expect(jobB, 'one', Buffer.from('b1'));

  assert.deepEqual(await blobs.delete(jobB, 'one'), { deleted: true });
  await blobs.expectRedisKeys([], 'no blob hash and no chunk of a deleted blob stays in Redis');
});

test('invalid blob keys are a 4xx JSON error and nothing is written', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const refused: Array<[string, number[]]> = [
    ['.', [400]],
    ['..', [400, 404]], // `/blobs/{job}/..` may resolve to no route
    ['a/b', [400, 404]], // two segments: no route
    ['a%2Fb', [400, 404]],
    ['%2e%2e', [400]],
    ['%2E', [400]],
    ['x'.repeat(201), [400]],
    ['a%20b', [400]],
    ['a%00b', [400]],
    ['caf%C3%A9', [400]],
    ['a:b', [400]],
  ];
  const wrong: string[] = [];
  for (const [key, statuses] of refused) {
    const r = await blobs.put(job, key, Buffer.from('must not be stored'));
    const shaped = JSON.stringify(Object.keys(r.body ?? {}).sort()) === '["error","message","statusCode"]';
    if (!statuses.includes(r.status) || !shaped) wrong.push(`PUT key ${JSON.stringify(key)}: ${r.status} ${r.bytes}`);
  }
  assert.deepEqual(wrong, [], 'each invalid key answers 400 (or 404 without a route) as {error, message, statusCode}');
  await blobs.expectRedisKeys([], 'no blob key written for an invalid blob key');
});

test('keys up to 200 characters, and dots other than `.` and `..`, are valid blob keys', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const keys = ['k'.repeat(101), 'k'.repeat(200), '...', '.hidden', 'a..b'];
  for (const key of keys) await blobs.store(job, key, Buffer.from(key));
  for (const key of keys) await blobs.expect(job, key, Buffer.from(key));
  assert.deepEqual(await blobs.list(job), [...keys].sort());
});

test('X-Content-SHA256: the right digest stores; a wrong one is 400 ContentSha256Mismatch and stores nothing', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const bytes = randomBytes(MiB + 17);

  const wrong = await blobs.put(job, 'k', bytes, { 'x-content-sha256': sha256(Buffer.from('other')) });
  assertError(wrong, 400, 'ContentSha256Mismatch');
  await blobs.expectMissing(job, 'k');
  await blobs.expectRedisKeys([], 'a mismatching upload leaves neither blob nor staged chunks');

  const malformed = await blobs.put(job, 'k', bytes, { 'x-content-sha256': 'abc' });
  assertError(malformed, 400);
  await blobs.expectRedisKeys([], 'a malformed digest stores nothing');

  const right = await blobs.put(job, 'k', bytes, { 'x-content-sha256': sha256(bytes) });
  assert.equal(right.status, 201, String(right.bytes));
  assert.equal(right.body.sha256, sha256(bytes));
  await blobs.expect(job, 'k', bytes);

  const stored = await blobs.redisKeys();
  const replacement = randomBytes(1000);
  const wrongReplace = await blobs.put(job, 'k', replacement, { 'x-content-sha256': sha256(bytes) });
  assertError(wrongReplace, 400, 'ContentSha256Mismatch');
  await blobs.expect(job, 'k', bytes);
  await blobs.expectRedisKeys(stored, 'a mismatching replace leaves the stored blob as it was');
});

test('a write without a live dispatcher token stores no blob', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const bytes = randomBytes(MiB + 1);
  assertError(await blobs.put(job, 'k', bytes, { 'x-fencing-token': String(Number(blobs.token) + 1) }), 409, 'FencingTokenStale');
  const missing = await request(app.url, 'PUT', `${blobsPath(blobs.cluster, job)}/k`, { headers: { 'content-type': OCTETS }, body: bytes });
  assertError(missing, 409, 'FencingTokenRequired');
  await blobs.expectMissing(job, 'k');
  await blobs.expectRedisKeys([], 'a refused write leaves neither blob nor staged chunks');
});

test('a retried upload with the same Idempotency-Key answers as the first did, even after the lease moved on; another body is 422', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const bytes = randomBytes(MiB + 3);
  const first = await blobs.put(job, 'k', bytes, { 'idempotency-key': 'upload-1' });
  assert.equal(first.status, 201, String(first.bytes));
  const stored = await blobs.redisKeys();

  await request(app.url, 'POST', `/v1/clusters/${blobs.cluster}/leaders/dispatcher/resign`, {
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ contenderId: 'dispatcher-1', sessionId: await sessionOf(app.url, blobs.cluster) })),
  });
  assertError(await blobs.put(job, 'k', bytes), 409, 'FencingTokenStale');
  const retry = await blobs.put(job, 'k', bytes, { 'idempotency-key': 'upload-1' });
  assert.equal(retry.status, 201, String(retry.bytes));
  assert.equal(retry.headers['idempotent-replayed'], 'true');
  assert.deepEqual(retry.body, first.body);
  await blobs.expectRedisKeys(stored, 'a replayed upload stores nothing again');

  assertError(await blobs.put(job, 'k', randomBytes(10), { 'idempotency-key': 'upload-1' }), 422, 'IdempotencyKeyReused');
  await blobs.expectRedisKeys(stored, 'a reused key stores nothing');
  await blobs.expect(job, 'k', bytes);
});

async function sessionOf(base: string, cluster: string): Promise<string> {
  const r = await fetch(`${base}/v1/clusters/${cluster}/leaders/dispatcher`);
  return (await r.json()).leader.sessionId;
}

test('an upload over BLOB_MAX_BYTES is 413 PayloadTooLarge and leaves nothing in Redis, with Content-Length and chunked', async (t) => {
  const app = await startApp(t, redisUrl, { BLOB_MAX_BYTES: String(MiB) });
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const tooBig = randomBytes(MiB + 1);

  const refused = [
    await blobs.put(job, 'sized', tooBig),
    await blobs.put(job, 'chunked', [...pieces(Buffer.concat([tooBig, tooBig]))]), // no Content-Length
    await blobs.put(job, 'just-over', [tooBig.subarray(0, MiB), tooBig.subarray(MiB)]),
  ];
  for (const r of refused) assertError(r, 413);
  for (const key of ['sized', 'chunked', 'just-over']) await blobs.expectMissing(job, key);
  await blobs.expectRedisKeys([], 'an oversized upload leaves neither blob nor staged chunks');

  const limit = tooBig.subarray(0, MiB);
  await blobs.store(job, 'at-limit', limit);
  assert.equal((await blobs.put(job, 'at-limit-chunked', [limit.subarray(0, 1000), limit.subarray(1000)])).status, 201);
  await blobs.expect(job, 'at-limit-chunked', limit);
  assert.deepEqual(refused.map((r) => r.body.error), Array(3).fill('PayloadTooLarge'), 'the error of a 413');
});

test('an upload cut off mid-body leaves nothing behind and the server keeps serving', async (t) => {
  const app = await startApp(t, redisUrl);
  const blobs = await Blobs.open(app.url);
  const job = randomJobId();
  const { hostname, port } = new URL(app.url);

  for (const sized of [true, false]) {
    const key = sized ? 'sized' : 'chunked';
    const req = http.request({
      host: hostname,
      port,
      method: 'PUT',
      path: `${blobsPath(blobs.cluster, job)}/${key}`,
      headers: { 'content-type': OCTETS, 'x-fencing-token': blobs.token, ...(sized ? { 'content-length': String(8 * MiB) } : {}) },
    });
    req.on('error', () => {});
    let answered: number | undefined;
    req.on('response', (res) => {
      answered = res.statusCode;
      res.resume();
    });
    for (const chunk of seeded(key, 3 * MiB)) {
      if (!req.write(chunk)) await drained(req);
    }
    await waitFor(async () => (await blobs.stagedKeys()).length > 0, 5000, `${key}: chunks staged`);
    req.destroy();
    assert.equal(answered, undefined, `${key}: no answer to an unfinished body`);
    await sleep(200);
    await blobs.expectRedisKeys([], `${key}: an interrupted upload leaves neither blob nor staged chunks`);
    await blobs.expectMissing(job, key);
  }

  const bytes = randomBytes(MiB);
  await blobs.store(job, 'after', bytes);
  await blobs.expect(job, 'after', bytes);
  assert.deepEqual(await blobs.list(job), ['after']);
});

test('a 200 MiB blob streams in and out of a server process intact while its memory stays flat', { timeout: 120_000 }, async (t) => {
  const own = await ownRedis();
  t.after(() => own.stop());
  const server = await ServerProcess.start(t, { REDIS_URL: own.url });
  const blobs = await Blobs.open(server.url);
  const job = randomJobId();
  const SIZE = 200 * MiB;

  /** Streams a seeded blob in (with its digest and length), then out, hashing the answer as it comes. */
  const upload = (key: string, size: number, digest: string) =>
    blobs.put(job, key, seeded(key, size), { 'content-length': String(size), 'x-content-sha256': digest });
  const download = async (key: string) => {
    const hash = createHash('sha256');
    let length = 0;
    const r = await blobs.get(job, key, {
      onData: (c) => {
        hash.update(c);
        length += c.length;
      },
    });
    return { ...r, length, digest: hash.digest('hex') };
  };
  const digestOf = (key: string, size: number) => {
    const hash = createHash('sha256');
    for (const c of seeded(key, size)) hash.update(c);
    return hash.digest('hex');
  };

  const warm = digestOf('warm-up', 8 * MiB);
  assert.equal((await upload('warm-up', 8 * MiB, warm)).status, 201);
  assert.equal((await download('warm-up')).digest, warm);
  await sleep(500);
  const baseline = await rss(server.url);

  const digest = digestOf('big', SIZE);
  const up = await sampled(server.url, () => upload('big', SIZE, digest));
  assert.equal(up.result.status, 201, String(up.result.bytes));
  assert.deepEqual(up.result.body, { jobId: job, blobKey: 'big', size: SIZE, sha256: digest });

  const down = await sampled(server.url, () => download('big'));
  assert.equal(down.result.status, 200);
  assert.equal(down.result.headers['content-length'], String(SIZE));
  assert.equal(down.result.headers['x-content-sha256'], digest);
  assert.equal(down.result.length, SIZE);
  assert.equal(down.result.digest, digest, 'the downloaded bytes are the uploaded ones');

  t.diagnostic(`RSS baseline ${baseline}, upload peak ${up.peak}, download peak ${down.peak}`);
  const growth = (peak: number) => `${((peak - baseline) / MiB).toFixed(1)} MiB over a baseline of ${(baseline / MiB).toFixed(1)} MiB`;
  assert.ok(up.peak - baseline < 96 * MiB, `RSS grew by ${growth(up.peak)} during the upload`);
  assert.ok(down.peak - baseline < 96 * MiB, `RSS grew by ${growth(down.peak)} during the download`);
  assert.deepEqual(await blobs.delete(job), { deleted: 2 });
});
