/**
 * Quotas per cluster (docs/operations.md, Quotas; docs/decisions.md): job results, execution
 * plans, blobs and their bytes, idempotency records, job managers. Beyond one a write is refused whole
 * (507 for stored data, 429 for idempotency records, which free up as they expire), checked
 * inside the write's script so that concurrent writers cannot overshoot; deletes free quota.
 * And idempotency records are compact: a pointer and a digest, not a copy of the answer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { connectRedis, nodeUrlOf, ownRedisUrl, post, randomJobId, request, sleep, startApp, uniqueCluster, type Running } from './support/app.js';
import { scanKeys, stopAllRedis } from './support/redis.js';

const QUOTAS = {
  QUOTA_JOB_RESULTS: '10',
  QUOTA_EXECUTION_PLANS: '2',
  QUOTA_BLOBS: '3',
  QUOTA_BLOB_BYTES: '1000',
  QUOTA_IDEMPOTENCY_RECORDS: '10',
  QUOTA_JOB_MANAGERS: '3',
  IDEMPOTENCY_TTL_MS: '3000',
  STORE_BODY_MAX_BYTES: String(8 * 1024 * 1024),
  // A 4 MiB job result takes Redis well over the tests' 200 ms health check on a busy machine.
  REDIS_HEALTH_INTERVAL_MS: '1000',
};

let redisUrl: string;
let redis: Redis;
let app: Running;
/** The same with room for more idempotency records, kept longer. */
let roomy: Running;
before(async () => {
  // A Redis of this file's own: the memory test reads INFO memory (on a Redis Cluster, of
  // the node that holds the cluster it writes).
  redisUrl = await ownRedisUrl();
  redis = await connectRedis(redisUrl);
  app = await startApp(null, redisUrl, QUOTAS);
  roomy = await startApp(null, redisUrl, { ...QUOTAS, QUOTA_IDEMPOTENCY_RECORDS: '100', IDEMPOTENCY_TTL_MS: '600000' });
});
after(async () => {
  await app?.close();
  await roomy?.close();
  redis?.disconnect();
  await stopAllRedis();
});

interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

class Cluster {
  readonly id = uniqueCluster('q');
  token = '';

  constructor(private readonly server = app) {}

  async open(): Promise<this> {
    const r = await post(this.server.url, `/v1/clusters/${this.id}/leaders/dispatcher/campaign`, { contenderId: 'c', ttlMs: 300_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    this.token = String(r.body.leader.fencingToken);
    return this;
  }

  call(method: string, path: string, opts: { body?: unknown; raw?: Buffer; idem?: string } = {}): Promise<Reply> {
    const headers: Record<string, string> = { 'x-fencing-token': this.token };
    if (opts.idem) headers['idempotency-key'] = opts.idem;
    return request(this.server.url, method, `/v1/clusters/${this.id}${path}`, { body: opts.body, raw: opts.raw, headers });
  }

  result(jobId: string, body: unknown = { applicationStatus: 'SUCCEEDED' }, idem?: string) {
    return this.call('PUT', `/job-results/${jobId}`, { body, idem });
  }

  plan(jobId: string, bytes = Buffer.from('plan')) {
    return this.call('PUT', `/execution-plans/${jobId}`, { raw: bytes });
  }

  blob(jobId: string, key: string, size: number) {
    return this.call('PUT', `/blobs/${jobId}/${key}`, { raw: randomBytes(size) });
  }

  keys(pattern: string): Promise<string[]> {
    return scanKeys(redis, `lh:{${this.id}}:${pattern}`);
  }
}

function expect(r: Reply, status: number, error?: string): any {
  assert.equal(r.status, status, `${status} expected, got ${r.status}: ${JSON.stringify(r.body)?.slice(0, 300)}`);
  if (error) {
    assert.equal(r.body?.error, error);
    assert.equal(r.body?.statusCode, status);
    assert.equal(typeof r.body?.message, 'string');
  }
  return r.body;
}

describe('each quota refuses beyond its limit, writes nothing, and frees up on delete', () => {
  test('job results: 507 StorageQuotaExceeded past QUOTA_JOB_RESULTS; deleting the cluster frees them', async () => {
    const k = await new Cluster().open();
    for (let i = 0; i < 10; i++) expect(await k.result(randomJobId()), 201);
    const over = randomJobId();
    const body = expect(await k.result(over), 507, 'StorageQuotaExceeded');
    assert.equal(body.quota, 'jobResults');
    assert.equal(body.limit, 10);
    expect(await k.call('GET', `/job-results/${over}`), 404, 'JobResultNotFound');
    assert.equal(await redis.zcard(`lh:{${k.id}}:jobresult-ids`), 10);
    expect(await k.call('DELETE', ''), 200);
    await k.open();
    expect(await k.result(over), 201);
  });

  test('execution plans: 507 past QUOTA_EXECUTION_PLANS; replacing a plan is no new one; a job cleanup frees one', async () => {
    const k = await new Cluster().open();
    const [a, b, c] = [randomJobId(), randomJobId(), randomJobId()];
    expect(await k.plan(a), 200);
    expect(await k.plan(b), 200);
    expect(await k.plan(a, Buffer.from('a newer plan')), 200);
    const body = expect(await k.plan(c), 507, 'StorageQuotaExceeded');
    assert.equal(body.quota, 'executionPlans');
    expect(await k.call('GET', `/execution-plans/${c}`), 404, 'ExecutionPlanNotFound');
    expect(await k.call('DELETE', `/jobs/${a}`), 200);
    expect(await k.plan(c), 200);
  });

  test('blobs: 507 past QUOTA_BLOBS and past QUOTA_BLOB_BYTES; replacing is allowed within bytes; deletes free both', async () => {
    const k = await new Cluster().open();
    const [j1, j2] = [randomJobId(), randomJobId()];
    expect(await k.blob(j1, 'a', 100), 201);
    expect(await k.blob(j1, 'b', 100), 201);
    expect(await k.blob(j2, 'c', 100), 201);
    let body = expect(await k.blob(j2, 'd', 1), 507, 'StorageQuotaExceeded');
    assert.deepEqual([body.quota, body.limit], ['blobs', 3]);
    // Replacing a blob adds no blob; its bytes count as the difference.
    expect(await k.blob(j1, 'a', 700), 201);
    body = expect(await k.blob(j1, 'b', 801), 507, 'StorageQuotaExceeded');
    assert.deepEqual([body.quota, body.limit], ['blobBytes', 1000]);
    expect(await k.call('GET', `/blobs/${j1}/b`), 200);
    assert.equal(Number((await k.call('GET', `/blobs/${j1}`)).body.blobs.find((x: any) => x.blobKey === 'b').size), 100);
    assert.deepEqual(await k.keys('blobdata:*').then((x) => x.length), 3, 'the refused upload left no staged chunks');

    expect(await k.call('DELETE', `/blobs/${j1}/a`), 200);
    expect(await k.blob(j2, 'd', 800), 201);
    body = expect(await k.blob(j2, 'e', 1), 507, 'StorageQuotaExceeded');
    expect(await k.call('DELETE', `/jobs/${j1}`), 200);
    expect(await k.blob(j2, 'e', 100), 201);
    expect(await k.call('DELETE', `/blobs/${j2}`), 200);
    assert.equal(await redis.exists(`lh:{${k.id}}:usage`), 0, 'no blobs: no usage key');
    for (const key of ['x', 'y', 'z']) expect(await k.blob(j1, key, 300), 201);
    expect(await k.call('DELETE', `/blobs/${j1}`), 200);
    // Larger than the whole quota: refused as it streams, nothing staged left.
    body = expect(await k.blob(j1, 'huge', 1500), 507, 'StorageQuotaExceeded');
    assert.deepEqual([body.quota, body.limit], ['blobBytes', 1000]);
    await sleep(200);
    assert.deepEqual(await k.keys('blobdata:*'), []);
  });

  test('idempotency records: 429 with Retry-After past QUOTA_IDEMPOTENCY_RECORDS; writes without a key go on; they free up as they expire', async () => {
    const k = await new Cluster().open();
    const jobs = Array.from({ length: 9 }, () => randomJobId());
    for (const [i, j] of jobs.entries()) expect(await k.result(j, undefined, `key-${i}`), 201);
    expect(await k.call('POST', `/job-results/${jobs[0]}/clean`, { idem: 'key-clean' }), 200);
    const over = randomJobId();
    const r = await k.result(over, undefined, 'key-over');
    const body = expect(r, 429, 'IdempotencyQuotaExceeded');
    assert.deepEqual([body.quota, body.limit], ['idempotencyRecords', 10]);
    const retryAfter = Number(r.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 3, `Retry-After ${r.headers.get('retry-after')}`);
    expect(await k.call('GET', `/job-results/${over}`), 404);
    expect(await k.call('POST', `/job-results/${jobs[1]}/clean`, { idem: 'key-clean-2' }), 429, 'IdempotencyQuotaExceeded');
    expect(await k.call('GET', `/job-results/${jobs[1]}`), 200).state === 'dirty' || assert.fail('a refused clean cleaned');
    // A replay of a remembered key is no new record.
    const replay = await k.result(jobs[3], undefined, 'key-3');
    expect(replay, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    // Without a key, nothing is remembered.
    expect(await k.result(over), 201);
    await sleep(3200);
    expect(await k.call('POST', `/job-results/${jobs[1]}/clean`, { idem: 'key-clean-2' }), 200);
  });
});

describe('job managers', () => {
  const jm = (k: Cluster, job: string, op: string, body: unknown) => post(app.url, `/v1/clusters/${k.id}/leaders/jobmanager/${job}/${op}`, body);

  test('a campaign for a new job manager past QUOTA_JOB_MANAGERS is 507 jobManagers; singletons and held ones do not count; an ended one frees one', async () => {
    const k = await new Cluster().open(); // the dispatcher: a singleton, not counted
    const jobs = [randomJobId(), randomJobId(), randomJobId()];
    const leaders = [];
    for (const j of jobs) leaders.push(expect(await jm(k, j, 'campaign', { contenderId: 'a', ttlMs: 300_000 }), 200).leader);
    const over = randomJobId();
    const body = expect(await jm(k, over, 'campaign', { contenderId: 'a' }), 507, 'StorageQuotaExceeded');
    assert.deepEqual([body.quota, body.limit], ['jobManagers', 3]);
    assert.equal(await redis.exists(`lh:{${k.id}}:leader:jobmanager/${over}`), 0, 'nothing written');
    // Campaigning again for one held is no new one; so is a singleton.
    assert.equal(expect(await jm(k, jobs[0], 'campaign', { contenderId: 'a' }), 200).granted, true);
    expect(await post(app.url, `/v1/clusters/${k.id}/leaders/rest/campaign`, { contenderId: 'r' }), 200);
    // GET leaders stays bounded by the quota.
    const all = expect(await k.call('GET', '/leaders'), 200);
    assert.equal(all.leaders.filter((l: any) => l.component.startsWith('jobmanager/')).length, 3);
    expect(await jm(k, jobs[1], 'resign', { contenderId: 'a', sessionId: leaders[1].sessionId }), 200);
    assert.equal(expect(await jm(k, over, 'campaign', { contenderId: 'a' }), 200).granted, true);
  });

  test('publishing a new job manager under a leadership past QUOTA_JOB_MANAGERS is 507 jobManagers', async () => {
    const id = uniqueCluster('qls');
    const ls = await post(app.url, `/v1/clusters/${id}/leadership/campaign`, { contenderId: 'p', ttlMs: 300_000 });
    assert.equal(ls.status, 200, JSON.stringify(ls.body));
    const { sessionId } = ls.body.leadership;
    const publish = (component: string) => post(app.url, `/v1/clusters/${id}/leadership/publish`, { sessionId, component, address: 'http://a:1' });
    expect(await publish('dispatcher'), 200);
    const jobs = [randomJobId(), randomJobId(), randomJobId()];
    for (const j of jobs) expect(await publish(`jobmanager/${j}`), 200);
    const body = expect(await publish(`jobmanager/${randomJobId()}`), 507, 'StorageQuotaExceeded');
    assert.deepEqual([body.quota, body.limit], ['jobManagers', 3]);
    // A new address for one published is no new one.
    expect(await publish(`jobmanager/${jobs[0]}`), 200);
  });
});

describe('concurrent writers cannot overshoot', () => {
  test('50 parallel job results against a quota of 10: 10 created, 40 refused', async () => {
    const k = await new Cluster().open();
    const replies = await Promise.all(Array.from({ length: 50 }, () => k.result(randomJobId())));
    const statuses = replies.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 10, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 507).length, 40, statuses.join(','));
    assert.equal(await redis.zcard(`lh:{${k.id}}:jobresult-ids`), 10);
  });

  test('50 parallel blob uploads against a quota of 3 blobs: 3 stored, 47 refused', async () => {
    const k = await new Cluster().open();
    const job = randomJobId();
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => k.blob(job, `b${i}`, 10)));
    const statuses = replies.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 3, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 507).length, 47, statuses.join(','));
    assert.equal(await redis.hlen(`lh:{${k.id}}:blobs:${job}`), 3);
  });

  test('50 parallel idempotent writes against a quota of 10 records: 10 remembered, 40 refused', async () => {
    const k = await new Cluster().open();
    const job = randomJobId();
    expect(await k.result(job), 201);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => k.call('POST', `/job-results/${job}/clean`, { idem: `p-${i}` })));
    const statuses = replies.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 10, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 40, statuses.join(','));
    assert.equal((await k.keys('idem:*')).length, 10);
  });
});

describe('compact idempotency records', () => {
  /** A job result whose accumulators take about `bytes`. */
  const large = (bytes: number) => ({ applicationStatus: 'SUCCEEDED', accumulatorResults: { blob: 'x'.repeat(bytes) } });

  test('25 idempotent cleans of a 4 MiB result grow Redis by far less than 25 copies; replays answer identically', async (t) => {
    const k = await new Cluster(roomy).open();
    const node = new Redis(await nodeUrlOf(redisUrl, `{${k.id}}`));
    t.after(() => node.disconnect());
    const job = randomJobId();
    const size = 4 * 1024 * 1024;
    expect(await k.result(job, large(size)), 201);
    const before = Number(/used_memory:(\d+)/.exec(await node.info('memory'))![1]);
    const first: Reply[] = [];
    for (let i = 0; i < 25; i++) first.push(await k.call('POST', `/job-results/${job}/clean`, { idem: `clean-${i}` }));
    for (const r of first) expect(r, 200);
    const after = Number(/used_memory:(\d+)/.exec(await node.info('memory'))![1]);
    assert.ok(after - before < size, `Redis grew by ${after - before} bytes for 25 cleans of a ${size}-byte result`);
    for (const key of await k.keys('idem:*')) {
      const usage = Number(await node.call('MEMORY', 'USAGE', key));
      assert.ok(usage < 1024, `${key} takes ${usage} bytes`);
    }
    // Each replay answers what its first request answered, marked as a replay.
    for (let i = 0; i < 25; i += 6) {
      const again = await k.call('POST', `/job-results/${job}/clean`, { idem: `clean-${i}` });
      expect(again, 200);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(again.body, first[i].body);
    }
  });

  test('a replayed create answers the dirty entry it created, even after the entry was cleaned', async () => {
    const k = await new Cluster(roomy).open();
    const job = randomJobId();
    const created = expect(await k.result(job, large(1000), 'create-1'), 201);
    assert.equal(created.state, 'dirty');
    expect(await k.call('POST', `/job-results/${job}/clean`), 200);
    const replay = await k.result(job, large(1000), 'create-1');
    assert.deepEqual(expect(replay, 201), created);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  });

  test('a replay whose entry is gone answers 410 IdempotentAnswerGone, and writes nothing', async () => {
    const k = await new Cluster(roomy).open();
    const job = randomJobId();
    expect(await k.result(job, undefined, 'create-gone'), 201);
    expect(await k.call('POST', `/job-results/${job}/clean`, { idem: 'clean-gone' }), 200);
    // As if Redis lost the entry but not the records (a partly restored backup).
    await redis.del(`lh:{${k.id}}:jobresult:${job}`);
    expect(await k.call('POST', `/job-results/${job}/clean`, { idem: 'clean-gone' }), 410, 'IdempotentAnswerGone');
    expect(await k.result(job, undefined, 'create-gone'), 410, 'IdempotentAnswerGone');
    expect(await k.call('GET', `/job-results/${job}`), 404);
  });
});
