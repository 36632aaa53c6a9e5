/**
 * Global cleanup of a job (DELETE …/jobs/{jobId}) and cleanupAllData (DELETE /v1/clusters/{c})
 * (docs/design.md §6, openapi.yaml), checked against the Redis keys themselves: exactly the data
 * that should go goes, everything else stays byte for byte.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisProcess, scanKeys, stopAllRedis } from './support/redis.js';
import { get, post, randomJobId, connectRedis, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, Watch, type Running } from './support/app.js';

/** The app under test and a client of its Redis, to read the keys themselves. */
let srv: Running;
let redis: Redis;
before(async () => {
  redis = await connectRedis(await sharedRedisUrl());
  srv = await startApp(null, await sharedRedisUrl());
});
after(async () => {
  await srv.close();
  redis.disconnect();
  await stopAllRedis();
});

const base = (c: string) => `/v1/clusters/${c}`;
type Reply = Awaited<ReturnType<typeof get>>;
const PARTS = ['leader', 'executionPlan', 'checkpoints', 'checkpointIdCounter', 'blobs'] as const;
const parts = (outcome: string, except: Record<string, string> = {}) =>
  Object.fromEntries(PARTS.map((p) => [p, except[p] ?? outcome]));

/** `token` goes in X-Fencing-Token when given; a string body is sent as bytes, an object as JSON. */
async function call(app: string, method: string, path: string, token?: string, body?: unknown): Promise<Reply> {
  const headers = new Headers(token === undefined ? {} : { 'x-fencing-token': token });
  if (body !== undefined) headers.set('content-type', typeof body === 'string' ? 'application/octet-stream' : 'application/json');
  const res = await fetch(app + path, { method, headers, body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text, headers: res.headers };
}

/** Every key of the cluster (SCAN) with its DUMP, in hex. */
async function dumpKeys(c: string): Promise<Map<string, string>> {
  const keys = await scanKeys(redis, `lh:{${c}}:*`);
  const dumps = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
  return new Map(keys.map((k, i) => [k, dumps[i]?.toString('hex') ?? 'gone']));
}

async function campaign(c: string, component: string, contenderId: string, ttlMs = 60_000): Promise<{ token: number; sessionId: string }> {
  const r = await post(srv.url, `${base(c)}/leaders/${component}/campaign`, { contenderId, ttlMs });
  assert.equal(r.body.granted, true, `${component}: ${JSON.stringify(r.body)}`);
  return { token: r.body.leader.fencingToken, sessionId: r.body.leader.sessionId };
}

/** Stores data of every kind for the job (with override) and makes `jm` its job manager; answers the lease. */
async function seedJob(c: string, job: string): Promise<{ token: number; sessionId: string }> {
  const lease = await campaign(c, `jobmanager/${job}`, 'jm');
  const checkpoint = (id: number) => ({ checkpointId: id, timestamp: Date.now(), externalPointer: `s3://cp/${id}`, maxRetained: 2 });
  const writes: Array<[string, string, unknown, number]> = [
    ['PUT', `job-results/${job}`, { applicationStatus: 'FAILED', jobName: 'wordcount' }, 201],
    ['PUT', `execution-plans/${job}`, `plan of ${job}`, 200],
    ['PUT', `execution-plans/${job}/resource-requirements`, { parallelism: 4 }, 200],
    ['POST', `jobs/${job}/checkpoints`, checkpoint(1), 200],
    ['POST', `jobs/${job}/checkpoints`, checkpoint(2), 200],
    ['POST', `jobs/${job}/checkpoint-id-counter/increment`, undefined, 200],
    ['PUT', `blobs/${job}/a.jar`, 'jar bytes', 201],
    ['PUT', `blobs/${job}/b.bin`, 'bin bytes', 201],
  ];
  for (const [method, path, body, status] of writes) {
    const r = await call(srv.url, method, `${base(c)}/${path}`, 'override', body);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
  }
  return lease;
}

async function putSharedBlob(c: string): Promise<void> {
  assert.equal((await call(srv.url, 'PUT', `${base(c)}/blobs/_/shared.txt`, 'override', 'no job')).status, 201);
}

const revokedOf = (w: Watch, component: string) =>
  w.find((m) => m.type === 'change' && m.event === 'revoked' && m.component === component);

async function openWatch(t: Parameters<typeof Watch.open>[0], c: string): Promise<Watch> {
  const w = await Watch.open(t, `${srv.wsUrl}${base(c)}/watch`);
  assert.equal((await w.count(1))[0].type, 'snapshot');
  return w;
}

test('global cleanup removes exactly the job’s leader, plan, checkpoints, counter and blobs and keeps its job result', async (t) => {
  const [c, other] = [uniqueCluster('clean'), uniqueCluster('clean')];
  const [job, sibling] = [randomJobId(), randomJobId()];
  for (const cl of [c, other]) {
    for (const j of [job, sibling]) await seedJob(cl, j);
    await putSharedBlob(cl);
  }
  const dispatcher = await campaign(c, 'dispatcher', 'd');
  const watch = await openWatch(t, c);
  const [before, otherBefore] = [await dumpKeys(c), await dumpKeys(other)];

  const r = await call(srv.url, 'DELETE', `${base(c)}/jobs/${job.toUpperCase()}`, String(dispatcher.token));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { jobId: job, parts: parts('deleted') });
  const revoked = await revokedOf(watch, `jobmanager/${job}`);
  assert.equal(revoked.leader, null);

  const afterKeys = await dumpKeys(c);
  // Indexes that list the job change (`plan-ids` is checked below through GET execution-plans),
  // and the count of the cluster's blobs (lib/quota.lua): its two went; the leadership history
  // records the revocation (lib/history.lua).
  const changing = new Set(['index', 'log', 'components', 'plan-ids', 'usage', 'history:entries', 'history:state'].map((k) => `lh:{${c}}:${k}`));
  assert.deepEqual(await redis.hmget(`lh:{${c}}:usage`, 'blobs', 'blobBytes'), ['3', String('jar bytes'.length + 'bin bytes'.length + 'no job'.length)]);
  for (const [k, v] of afterKeys) if (!changing.has(k)) assert.equal(v, before.get(k), `${k} kept byte for byte`);
  const gone = [...before.keys()].filter((k) => !afterKeys.has(k));
  const jobKeys = [...before.keys()].filter((k) => k.includes(job) && !k.endsWith(`jobresult:${job}`));
  assert.ok(jobKeys.length >= 6, `the job's keys: ${jobKeys}`);
  assert.deepEqual(gone.filter((k) => k.includes(job)), jobKeys, 'every key of the job but its result is gone');
  assert.deepEqual(gone.filter((k) => !k.includes(job)).map((k) => k.split(':')[2]), ['blobdata', 'blobdata'], 'and the bytes of its two blobs');
  assert.deepEqual(await dumpKeys(other), otherBefore, 'the other cluster is untouched');

  assert.equal((await get(srv.url, `${base(c)}/job-results/${job}`)).body.applicationStatus, 'FAILED');
  assert.deepEqual((await get(srv.url, `${base(c)}/execution-plans`)).body.jobIds, [sibling]);
  assert.deepEqual((await get(srv.url, `${base(c)}/jobs/${job}/checkpoint-id-counter`)).body, { value: 1 });
  assert.equal((await get(srv.url, `${base(c)}/leaders/jobmanager/${job}`)).body.leader, null);
  assert.equal((await get(srv.url, `${base(c)}/leaders/jobmanager/${sibling}`)).body.leader.contenderId, 'jm');
  assert.equal(watch.messages.filter((m) => m.type === 'change').length, 1, 'one change only: the revoked job manager');
});

test('global cleanup reports each part as deleted or absent, and a second call answers all absent', async () => {
  const c = uniqueCluster('clean');
  const job = randomJobId();
  assert.equal((await call(srv.url, 'PUT', `${base(c)}/execution-plans/${job}`, 'override', 'plan')).status, 200);
  assert.equal((await call(srv.url, 'PUT', `${base(c)}/blobs/${job}/x`, 'override', 'x')).status, 201);
  const first = await call(srv.url, 'DELETE', `${base(c)}/jobs/${job}`, 'override');
  assert.equal(first.status, 200);
  assert.deepEqual(first.body, { jobId: job, parts: parts('absent', { executionPlan: 'deleted', blobs: 'deleted' }) });
  for (const j of [job, randomJobId()]) {
    const again = await call(srv.url, 'DELETE', `${base(c)}/jobs/${j}`, 'override');
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { jobId: j, parts: parts('absent') });
  }
  assert.deepEqual([...(await dumpKeys(c)).keys()].filter((k) => !/:(index|log|components)$/.test(k)), []);
});

test('global cleanup is fenced by the dispatcher: a deposed dispatcher deletes nothing, override does', async () => {
  const c = uniqueCluster('clean');
  const job = randomJobId();
  await seedJob(c, job);
  const deposed = await campaign(c, 'dispatcher', 'a', 1000);
  await sleep(1000);
  await waitFor(async () => (await get(srv.url, `${base(c)}/leaders/dispatcher`)).body.leader === null, 5000, 'expiry');
  await campaign(c, 'dispatcher', 'b');
  const before = await dumpKeys(c);
  const stale = await call(srv.url, 'DELETE', `${base(c)}/jobs/${job}`, String(deposed.token));
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error, 'FencingTokenStale');
  assert.deepEqual(await dumpKeys(c), before, 'nothing deleted');
  assert.equal((await get(srv.url, `${base(c)}/leaders/jobmanager/${job}`)).body.leader.contenderId, 'jm');
  const forced = await call(srv.url, 'DELETE', `${base(c)}/jobs/${job}`, 'override');
  assert.equal(forced.status, 200);
  assert.deepEqual(forced.body.parts, parts('deleted'));
});

test('cleanupAllData removes every key of the cluster, reports counts, revokes live leases; another cluster is untouched', async (t) => {
  const [c, other] = [uniqueCluster('all'), uniqueCluster('all')];
  const jobs = [randomJobId(), randomJobId()];
  const tokens = new Map<string, number>();
  for (const cl of [c, other]) {
    for (const j of jobs) {
      const lease = await seedJob(cl, j);
      if (cl === c) tokens.set(`jobmanager/${j}`, lease.token);
    }
    await putSharedBlob(cl);
    for (const component of ['dispatcher', 'resourcemanager']) {
      const lease = await campaign(cl, component, 'x');
      if (cl === c) tokens.set(component, lease.token);
    }
  }
  assert.equal((await call(srv.url, 'POST', `${base(c)}/job-results/${jobs[0]}/clean`, 'override')).status, 200);
  const watch = await openWatch(t, c);
  const [before, otherBefore] = [await dumpKeys(c), await dumpKeys(other)];
  const indexBefore: number = (await get(srv.url, `${base(c)}/leaders`)).body.index;

  const r = await call(srv.url, 'DELETE', base(c));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, {
    clusterId: c,
    deleted: { leaders: 4, jobResults: 2, executionPlans: 2, checkpoints: 2, checkpointIdCounters: 2, blobs: 5, keys: before.size },
  });
  for (const component of tokens.keys()) {
    const revoked = await revokedOf(watch, component);
    assert.equal(revoked.leader, null, component);
    assert.ok(revoked.index > indexBefore, `${component}: the change index grows`);
  }
  assert.deepEqual([...(await dumpKeys(c)).keys()], [], 'no key of the cluster left');
  assert.deepEqual(await dumpKeys(other), otherBefore, 'the other cluster is untouched byte for byte');
  assert.deepEqual((await get(srv.url, `${base(c)}/job-results`)).body, { jobResults: [] });

  const again = await call(srv.url, 'DELETE', base(c));
  assert.equal(again.status, 200);
  const none = { leaders: 0, jobResults: 0, executionPlans: 0, checkpoints: 0, checkpointIdCounters: 0, blobs: 0, keys: 0 };
  assert.deepEqual(again.body, { clusterId: c, deleted: none });

  const lastIndex = Math.max(...watch.messages.map((m) => m.index));
  assert.ok((await get(srv.url, `${base(c)}/leaders`)).body.index >= lastIndex, 'the index never goes back');
  for (const component of ['dispatcher', `jobmanager/${jobs[0]}`]) {
    const fresh = await campaign(c, component, 'y');
    assert.ok(fresh.token > tokens.get(component)!, `${component}: token ${fresh.token} above ${tokens.get(component)}`);
  }
});

test('with Redis killed, job cleanup and cleanupAllData answer 503 with Retry-After', { timeout: 30_000 }, async (t) => {
  const own = await RedisProcess.start();
  const app = await startApp(t, own.url);
  const c = uniqueCluster('clean');
  await own.kill();
  await waitFor(async () => (await get(app.url, '/readyz')).status === 503, 3000, 'readyz 503');
  for (const [path, token] of [[`${base(c)}/jobs/${randomJobId()}`, 'override'], [base(c), undefined]] as const) {
    const started = Date.now();
    const r = await call(app.url, 'DELETE', path, token);
    assert.equal(r.status, 503, `${path}: ${JSON.stringify(r.body)}`);
    assert.ok(r.headers.get('retry-after'), `${path}: Retry-After`);
    assert.ok(Date.now() - started < 5000, `${path}: answered at once`);
    const failedPart = r.body.parts && Object.values(r.body.parts).some((p) => String(p).startsWith('failed'));
    assert.ok(r.body.error === 'RedisUnavailable' || failedPart, `${path}: ${JSON.stringify(r.body)}`);
  }
});

test('cleanupAllData while the leaders keep writing leaves no key behind: leases end first, then the stores go', async () => {
  for (let round = 0; round < 3; round++) {
    const c = uniqueCluster('busy');
    const dispatcher = await campaign(c, 'dispatcher', 'd');
    const job = randomJobId();
    const jm = await campaign(c, `jobmanager/${job}`, 'jm');
    let stop = false;
    const refused: number[] = [];
    const writer = async (write: () => Promise<Reply>) => {
      while (!stop) {
        const r = await write();
        if (r.status !== 200 && r.status !== 201) {
          refused.push(r.status);
          return;
        }
      }
    };
    const writers = [
      ...Array.from({ length: 6 }, () =>
        writer(() => call(srv.url, 'PUT', `${base(c)}/job-results/${randomJobId()}`, String(dispatcher.token), { applicationStatus: 'SUCCEEDED' })),
      ),
      ...Array.from({ length: 2 }, () =>
        writer(() => call(srv.url, 'POST', `${base(c)}/jobs/${job}/checkpoint-id-counter/increment`, String(jm.token))),
      ),
    ];
    await sleep(100);
    const r = await call(srv.url, 'DELETE', base(c));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const stopped = Promise.all(writers);
    await sleep(200);
    stop = true;
    await stopped;
    assert.ok(refused.every((s) => s === 409), `writers were refused with 409 FencingTokenStale: ${refused}`);
    assert.deepEqual([...(await dumpKeys(c)).keys()], [], `round ${round}: no key of the cluster left`);
  }
});
