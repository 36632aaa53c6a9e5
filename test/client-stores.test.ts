/**
 * The SDK's store clients against a real server process: a revoked contender's fenced
 * write is refused (by the server for its old token, locally for its election), every
 * store round-trips, errors carry their codes, and a write whose answer was lost is
 * retried with the same Idempotency-Key and applied once.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, test, type TestContext } from 'node:test';
import {
  BadRequestError,
  ConflictError,
  FencingError,
  LeaseholdClient,
  NotFoundError,
  NotLeaderError,
  QuotaExceededError,
  UnavailableError,
  type Cluster,
  type Component,
  type LeaderElection,
} from '../src/client/index.js';
import { ownRedisUrl, randomJobId, ServerProcess, sleep, startApp, uniqueCluster, waitFor } from './support/app.js';
import { TcpProxy } from './support/proxy.js';
import { freePort, RedisProcess, stopAllRedis } from './support/redis.js';
import { ContenderProcess, sharedNow } from './support/sdkContender.js';

let server: ServerProcess;
let redisUrl: string;

before(async () => {
  redisUrl = await ownRedisUrl();
  server = await ServerProcess.start(null, { REDIS_URL: redisUrl });
});

after(async () => {
  await server?.kill();
  await stopAllRedis();
});

function newCluster(url = server.url, id = uniqueCluster('stores')): Cluster {
  return new LeaseholdClient({ url }).cluster(id);
}

/** A started election that leads `component`, resigned after the test. */
async function leaderOf(t: TestContext, cluster: Cluster, component: Component, ttlMs = 10_000): Promise<LeaderElection> {
  const e = cluster.election({ component, ttlMs });
  t.after(() => e.resign());
  const grant = new Promise((resolve) => e.once('granted', resolve));
  e.start();
  await grant;
  return e;
}

/** An assertion that `err` is of `Class` and carries that code and status. */
function isError(Class: abstract new (...args: never[]) => Error, code: string, statusCode: number | undefined) {
  return (err: unknown) => {
    assert.ok(err instanceof Class, `${String(err)} is a ${Class.name}`);
    assert.equal((err as { code?: string }).code, code);
    assert.equal((err as { statusCode?: number }).statusCode, statusCode);
    return true;
  };
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('a revoked contender\'s fenced write is refused: FencingTokenStale for its old token, NotLeaderError without a request for its election', { timeout: 60_000 }, async (t) => {
  const id = uniqueCluster('revoked');
  const cluster = newCluster(server.url, id);
  const a = await leaderOf(t, cluster, 'dispatcher', 1000);
  const oldToken = a.fencingToken();
  const byToken = cluster.jobResults(oldToken);
  const before = randomJobId();
  await byToken.createDirty(before, { applicationStatus: 'SUCCEEDED' });

  const b = new ContenderProcess(t, 'b', server.url, id, 'dispatcher', 5000);
  await waitFor(() => b.events.some((e) => e.ev === 'up'), 20_000, 'the other contender campaigns');
  await sleep(500); // refused, it now waits for the lease to end
  // This process stops dead past its lease (no timer, no I/O) while B takes over.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
  const wokeAt = sharedNow();
  assert.equal(a.isLeader(), false, 'the leadership is over on waking, before any timer ran');
  assert.equal(a.leadership, null);
  assert.throws(() => a.fencingToken(), isError(NotLeaderError, 'NotLeader', undefined));
  await waitFor(() => b.grants.length > 0, 5000, 'B leads');
  const bGrant = b.grants[0];
  assert.ok(bGrant.at < wokeAt, 'B took over while A was stopped');
  assert.ok(bGrant.token > oldToken);

  const job = randomJobId();
  await assert.rejects(byToken.createDirty(job, { applicationStatus: 'FAILED' }), isError(FencingError, 'FencingTokenStale', 409));
  await assert.rejects(byToken.markClean(before), isError(FencingError, 'FencingTokenStale', 409));
  assert.equal(await byToken.get(job), null, 'nothing written');
  assert.equal((await byToken.get(before))?.state, 'dirty', 'nothing changed');

  // A store fenced by the election itself refuses before sending anything.
  const proxy = await TcpProxy.start(server.port);
  t.after(() => proxy.close());
  const byElection = new LeaseholdClient({ url: proxy.url }).cluster(id).jobResults(a);
  await assert.rejects(byElection.createDirty(job, { applicationStatus: 'FAILED' }), isError(NotLeaderError, 'NotLeader', undefined));
  await assert.rejects(byElection.markClean(before), NotLeaderError);
  assert.equal(proxy.connections, 0, 'no request was sent');
  assert.equal(await byToken.get(job), null);

  // The live token still writes: the refusals above were for staleness alone.
  await cluster.jobResults(bGrant.token).createDirty(job, { applicationStatus: 'SUCCEEDED' });
  assert.equal(await b.stop(), 0);
});

test('a write past a quota is a QuotaExceededError (507, a ConflictError), answered at once, not retried', async (t) => {
  const app = await startApp(t, redisUrl, { QUOTA_EXECUTION_PLANS: '1' });
  const cluster = newCluster(app.url);
  const plans = cluster.executionPlans(await leaderOf(t, cluster, 'dispatcher'));
  await plans.put(randomJobId(), new Uint8Array([1]));
  const started = Date.now();
  await assert.rejects(plans.put(randomJobId(), new Uint8Array([2])), (err) => {
    isError(QuotaExceededError, 'StorageQuotaExceeded', 507)(err);
    assert.ok(err instanceof ConflictError);
    assert.deepEqual((err as QuotaExceededError).details, { quota: 'executionPlans', limit: 1 });
    return true;
  });
  assert.ok(Date.now() - started < 2000, 'not retried');
});

test('job results: createDirty, get (null on 404), list by state, markClean; errors carry code and status', async (t) => {
  const cluster = newCluster();
  const results = cluster.jobResults(await leaderOf(t, cluster, 'dispatcher'));
  const job = randomJobId();
  const created = await results.createDirty(job.toUpperCase(), { applicationStatus: 'SUCCEEDED', jobName: 'wordcount', netRuntimeMs: 42 });
  assert.equal(created.jobId, job, 'answered in lower case');
  assert.equal(created.state, 'dirty');
  assert.equal(created.cleanedAt, null);
  assert.equal(created.jobName, 'wordcount');
  assert.equal(created.netRuntimeMs, 42);
  assert.ok(!Number.isNaN(Date.parse(created.createdAt)));
  await assert.rejects(results.createDirty(job, { applicationStatus: 'FAILED' }), isError(ConflictError, 'JobResultExists', 409));
  assert.deepEqual(await results.get(job), created);
  assert.equal(await results.get(randomJobId()), null);

  const other = randomJobId();
  await cluster.jobResults('override').createDirty(other, { applicationStatus: 'CANCELED' });
  assert.deepEqual((await results.list('dirty')).map((e) => e.jobId).sort(), [job, other].sort());
  const clean = await results.markClean(job);
  assert.equal(clean.state, 'clean');
  assert.ok(clean.cleanedAt && !Number.isNaN(Date.parse(clean.cleanedAt)));
  assert.deepEqual((await results.list('dirty')).map((e) => e.jobId), [other]);
  assert.deepEqual((await results.list('clean')).map((e) => e.jobId), [job]);
  assert.equal((await results.list()).length, 2);

  await assert.rejects(results.markClean(randomJobId()), isError(NotFoundError, 'JobResultNotFound', 404));
  await assert.rejects(results.createDirty('not-a-job-id', { applicationStatus: 'FAILED' }), (err: unknown) => {
    assert.ok(err instanceof BadRequestError, String(err));
    assert.equal(err.statusCode, 400);
    return true;
  });
});

test('execution plans: bytes round-trip, jobIds, resource requirements', async (t) => {
  const cluster = newCluster();
  const plans = cluster.executionPlans(await leaderOf(t, cluster, 'dispatcher'));
  const job = randomJobId();
  const plan = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(100_000)]);
  assert.deepEqual(await plans.put(job, plan), { jobId: job, size: plan.length });
  assert.ok((await plans.get(job))?.equals(plan));
  const other = randomJobId();
  await plans.put(other, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...(await plans.get(other))!], [1, 2, 3]);
  assert.deepEqual((await plans.jobIds()).sort(), [job, other].sort());
  assert.equal(await plans.get(randomJobId()), null);

  const requirements = { slots: 4, perVertex: { a: { min: 1, max: 8 } } };
  assert.equal(await plans.getResourceRequirements(job), null, 'none yet');
  await plans.putResourceRequirements(job, requirements);
  assert.deepEqual(await plans.getResourceRequirements(job), requirements);
  assert.equal(await plans.getResourceRequirements(randomJobId()), null, 'no plan');
  await assert.rejects(plans.putResourceRequirements(randomJobId(), requirements), isError(NotFoundError, 'ExecutionPlanNotFound', 404));
});

test('checkpoints: add and subsume, latest, list, CheckpointIdNotIncreasing, fenced by the job manager, shutdown', async (t) => {
  const cluster = newCluster();
  const job = randomJobId();
  const jm = await leaderOf(t, cluster, `jobmanager/${job}`);
  const store = cluster.checkpoints(job, jm);
  assert.equal(await store.latest(), null);
  assert.deepEqual(await store.list(), []);
  const cp = (id: number) => ({ checkpointId: id, timestamp: 1_767_225_600_000 + id, externalPointer: `s3://ckpt/chk-${id}` });
  const metadata = Buffer.from('metadata').toString('base64');
  assert.deepEqual(await store.add({ ...cp(1), metadata, properties: { k: 'v' }, maxRetained: 2 }), { checkpointId: 1, subsumed: [] });
  assert.deepEqual(await store.add({ ...cp(2), maxRetained: 2 }), { checkpointId: 2, subsumed: [] });
  assert.deepEqual(await store.add({ ...cp(5), maxRetained: 2 }), { checkpointId: 5, subsumed: [{ checkpointId: 1, externalPointer: 's3://ckpt/chk-1' }] });
  assert.deepEqual((await store.list()).map((c) => c.checkpointId), [2, 5]);
  assert.deepEqual(await store.latest(), cp(5));

  await assert.rejects(store.add(cp(5)), (err: unknown) => {
    isError(ConflictError, 'CheckpointIdNotIncreasing', 409)(err);
    assert.equal((err as ConflictError).details.latestCheckpointId, 5);
    return true;
  });
  const dispatcher = await leaderOf(t, cluster, 'dispatcher');
  await assert.rejects(cluster.checkpoints(job, dispatcher).add(cp(6)), isError(FencingError, 'FencingTokenStale', 409), 'another component\'s token');

  assert.deepEqual(await store.shutdown('SUSPENDED'), { jobStatus: 'SUSPENDED', discarded: [] });
  assert.deepEqual(await store.shutdown('FINISHED'), { jobStatus: 'FINISHED', discarded: [2, 5] });
  assert.deepEqual(await store.list(), []);
});

test('checkpoint id counter: getAndIncrement from 1, set never lowers it', async (t) => {
  const cluster = newCluster();
  const job = randomJobId();
  const counter = cluster.checkpointIdCounter(job, await leaderOf(t, cluster, `jobmanager/${job}`));
  assert.equal(await counter.current(), 1);
  assert.equal(await counter.getAndIncrement(), 1);
  assert.equal(await counter.getAndIncrement(), 2);
  assert.equal(await counter.current(), 3);
  await counter.set(10);
  assert.equal(await counter.current(), 10);
  await assert.rejects(counter.set(5), isError(ConflictError, 'CheckpointIdNotIncreasing', 409));
  assert.equal(await counter.current(), 10);
  assert.equal(await counter.getAndIncrement(), 10);
  assert.deepEqual(await counter.shutdown('FINISHED'), { jobStatus: 'FINISHED', removed: true });
  assert.equal(await counter.current(), 1);
});

test('blobs: Buffer and stream upload, stream download, list, delete, deleteAll', async (t) => {
  const cluster = newCluster();
  const blobs = cluster.blobs(await leaderOf(t, cluster, 'dispatcher'));
  const job = randomJobId();
  const small = randomBytes(100_000);
  assert.deepEqual(await blobs.put(job, 'a.bin', small), { jobId: job, blobKey: 'a.bin', size: small.length, sha256: sha256(small) });

  const chunks = Array.from({ length: 20 }, () => randomBytes(64 * 1024));
  const big = Buffer.concat(chunks);
  const stored = await blobs.put(job, 'b.jar', Readable.from(chunks));
  assert.deepEqual(stored, { jobId: job, blobKey: 'b.jar', size: big.length, sha256: sha256(big) });
  assert.ok((await bytesOf((await blobs.get(job, 'b.jar'))!)).equals(big));
  assert.ok((await bytesOf((await blobs.get(job, 'a.bin'))!)).equals(small));
  assert.equal(await blobs.get(job, 'missing'), null);

  await blobs.put('_', 'shared.bin', Buffer.from('no job'));
  assert.equal((await bytesOf((await blobs.get('_', 'shared.bin'))!)).toString(), 'no job');

  const listed = await blobs.list(job);
  assert.deepEqual(
    listed.map((b) => [b.blobKey, b.size, b.sha256]).sort(),
    [['a.bin', small.length, sha256(small)], ['b.jar', big.length, sha256(big)]],
  );
  assert.equal(await blobs.delete(job, 'a.bin'), true);
  assert.equal(await blobs.delete(job, 'a.bin'), false);
  assert.equal(await blobs.deleteAll(job), 1);
  assert.deepEqual(await blobs.list(job), []);
  assert.equal((await blobs.list('_')).length, 1);
});

test('cleanupJob removes all of a job but its result, idempotently; cleanupAllData removes the cluster', async (t) => {
  const cluster = newCluster();
  const dispatcher = await leaderOf(t, cluster, 'dispatcher');
  const job = randomJobId();
  // A job manager without renewals, so that nothing campaigns again after the cleanup.
  const jm = (await cluster.campaign(`jobmanager/${job}`, { contenderId: 'jm', ttlMs: 60_000 })).leader.fencingToken;
  await cluster.executionPlans(dispatcher).put(job, Buffer.from('plan'));
  await cluster.checkpoints(job, jm).add({ checkpointId: 1, timestamp: 1, externalPointer: 'p' });
  await cluster.checkpointIdCounter(job, jm).getAndIncrement();
  await cluster.blobs(dispatcher).put(job, 'x', Buffer.from('x'));
  await cluster.jobResults(dispatcher).createDirty(job, { applicationStatus: 'SUCCEEDED' });

  const parts = { leader: 'deleted', executionPlan: 'deleted', checkpoints: 'deleted', checkpointIdCounter: 'deleted', blobs: 'deleted' };
  assert.deepEqual(await cluster.cleanupJob(job, dispatcher), { jobId: job, parts });
  assert.equal(await cluster.leader(`jobmanager/${job}`), null);
  assert.equal(await cluster.executionPlans(dispatcher).get(job), null);
  assert.deepEqual(await cluster.checkpoints(job, jm).list(), []);
  assert.deepEqual(await cluster.blobs(dispatcher).list(job), []);
  assert.equal((await cluster.jobResults(dispatcher).get(job))?.state, 'dirty', 'the result stays');
  const absent = Object.fromEntries(Object.keys(parts).map((k) => [k, 'absent']));
  assert.deepEqual(await cluster.cleanupJob(job, dispatcher), { jobId: job, parts: absent });

  await dispatcher.resign();
  const gone = await cluster.cleanupAllData();
  assert.equal(gone.clusterId, cluster.clusterId);
  assert.equal(gone.deleted.jobResults, 1);
  assert.ok(gone.deleted.keys > 0);
  assert.deepEqual(await cluster.jobResults('override').list(), []);
  assert.ok((await cluster.leaders()).leaders.every((l) => l.leader === null));
});

test('a write whose answer was lost is retried with the same Idempotency-Key and applied once', { timeout: 30_000 }, async (t) => {
  const proxy = await TcpProxy.start(server.port);
  t.after(() => proxy.close());
  const id = uniqueCluster('idem');
  const direct = newCluster(server.url, id);
  const job = randomJobId();
  const { leader } = await direct.campaign(`jobmanager/${job}`, { contenderId: 'jm', ttlMs: 60_000 });
  const onServer = direct.checkpointIdCounter(job, 'override');
  const counter = new LeaseholdClient({ url: proxy.url, timeoutMs: 500 }).cluster(id).checkpointIdCounter(job, leader.fencingToken);
  assert.equal(await counter.getAndIncrement(), 1);

  // The request goes through and is applied; its answer never comes back.
  proxy.blackhole('answers');
  const sent = proxy.requests.length;
  const second = counter.getAndIncrement();
  await waitFor(async () => (await onServer.current()) === 3, 5000, 'the first attempt applied');
  await waitFor(() => proxy.requests.length >= sent + 2, 5000, 'the retry after the timeout');
  proxy.restore();
  assert.equal(await second, 2, 'the retry answers as the first attempt would have');
  assert.equal(await counter.getAndIncrement(), 3, 'applied once: the next value follows');
  assert.equal(await onServer.current(), 4);
  const increments = proxy.requests.filter((r) => r.line.endsWith('/increment'));
  assert.equal(increments.length, 4, 'one, two attempts of the second, three');
});

test('a write answered 503 (Redis down) is retried, then fails with UnavailableError', { timeout: 30_000 }, async (t) => {
  const redis = await RedisProcess.start();
  const app = await startApp(t, redis.url);
  const proxy = await TcpProxy.start(Number(new URL(app.url).port));
  t.after(() => proxy.close());
  const cluster = newCluster(proxy.url);
  const job = randomJobId();
  const { leader } = await cluster.campaign(`jobmanager/${job}`, { contenderId: 'jm', ttlMs: 60_000 });
  const counter = cluster.checkpointIdCounter(job, leader.fencingToken);
  assert.equal(await counter.getAndIncrement(), 1);

  await redis.kill();
  await waitFor(async () => (await fetch(`${app.url}/readyz`)).status === 503, 10_000, 'the app sees Redis gone');
  const before = proxy.requests.length;
  await assert.rejects(counter.getAndIncrement(), isError(UnavailableError, 'RedisUnavailable', 503));
  const attempts = proxy.requests.slice(before).filter((r) => r.line.endsWith('/increment'));
  assert.equal(attempts.length, 3);
});

test('an unreachable server is an UnavailableError (after the write\'s attempts) naming the request\'s method and path', async () => {
  const cluster = newCluster(`http://127.0.0.1:${await freePort()}`);
  const unavailable = (request: RegExp) => (err: unknown) => {
    isError(UnavailableError, 'Unavailable', undefined)(err);
    assert.match((err as Error).message, request);
    return true;
  };
  await assert.rejects(cluster.jobResults(1).createDirty(randomJobId(), { applicationStatus: 'SUCCEEDED' }), unavailable(/^PUT \/v1\/clusters\/\S+\/job-results\/[0-9a-f]{32} failed/));
  await assert.rejects(cluster.campaign('dispatcher', { contenderId: 'c' }), unavailable(/^POST \/v1\/clusters\/\S+\/leaders\/dispatcher\/campaign failed/));
});
