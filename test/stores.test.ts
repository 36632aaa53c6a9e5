/**
 * The HA stores over HTTP (docs/design.md §5, openapi.yaml) with Flink's semantics: job results,
 * execution plans, completed checkpoints, the checkpoint id counter, and idempotent retries,
 * every write fenced by a token won by campaigning.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { post, randomJobId, sharedRedisUrl, startApp, uniqueCluster, type Running } from './support/app.js';
import { stopAllRedis } from './support/redis.js';

let shared: Running;
before(async () => {
  shared = await startApp(null, await sharedRedisUrl());
});
after(async () => {
  await shared?.close();
  await stopAllRedis();
});

interface CallOpts {
  token?: string;
  body?: unknown;
  raw?: Uint8Array;
  headers?: Record<string, string>;
}
type Leader = { contenderId: string; sessionId: string; fencingToken: number };
interface Reply {
  status: number;
  body: any;
  bytes: Buffer;
  headers: Headers;
}

/** One cluster of its own on one server, with calls relative to `/v1/clusters/{id}`. */
class Cluster {
  constructor(
    readonly base: string,
    readonly id = uniqueCluster('st'),
  ) {}

  async call(method: string, path: string, opts: CallOpts = {}): Promise<Reply> {
    const headers: Record<string, string> = {};
    let payload: RequestInit['body'];
    if (opts.raw) {
      headers['content-type'] = 'application/octet-stream';
      payload = opts.raw as Uint8Array<ArrayBuffer>;
    } else if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(opts.body);
    }
    if (opts.token !== undefined) headers['x-fencing-token'] = opts.token;
    Object.assign(headers, opts.headers);
    const res = await fetch(`${this.base}/v1/clusters/${this.id}${path}`, { method, headers, body: payload });
    const bytes = Buffer.from(await res.arrayBuffer());
    const isJson = (res.headers.get('content-type') ?? '').includes('json') && bytes.length > 0;
    return { status: res.status, body: isJson ? JSON.parse(bytes.toString()) : null, bytes, headers: res.headers };
  }

  /** Campaigns for `component` and insists on the grant; answers the leader. */
  async lead(component: string, contenderId = `c-${randomBytes(3).toString('hex')}`) {
    const r = await post(this.base, `/v1/clusters/${this.id}/leaders/${component}/campaign`, { contenderId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.granted, true, JSON.stringify(r.body));
    return r.body.leader as Leader;
  }

  async token(component: string): Promise<string> {
    return String((await this.lead(component)).fencingToken);
  }

  /** A token that was live and no longer is (its leader, `old` or a new one, resigned), and the token of the next leader. */
  async staleAndLive(component: string, old?: Leader): Promise<{ stale: string; live: string }> {
    old ??= await this.lead(component);
    const r = await post(this.base, `/v1/clusters/${this.id}/leaders/${component}/resign`, {
      contenderId: old.contenderId,
      sessionId: old.sessionId,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const live = await this.token(component);
    assert.notEqual(live, String(old.fencingToken));
    return { stale: String(old.fencingToken), live };
  }
}

/** Asserts the status (and error code) and answers the body. */
function expect(r: Reply, status: number, error?: string): any {
  assert.equal(r.status, status, `${status} expected, got ${r.status}: ${r.bytes.toString().slice(0, 500)}`);
  if (error) assert.equal(r.body?.error, error);
  return r.body;
}

const isIso = (s: unknown) => typeof s === 'string' && new Date(s).toISOString() === s;
const replayed = (r: Reply) => r.headers.get('idempotent-replayed') === 'true';

// ---------------------------------------------------------------------------------------------
describe('job results', () => {
  async function setup() {
    const k = new Cluster(shared.url);
    const token = await k.token('dispatcher');
    const put = (jobId: string, body: unknown, headers?: Record<string, string>) =>
      k.call('PUT', `/job-results/${jobId}`, { token, body, headers });
    const clean = (jobId: string, headers?: Record<string, string>) =>
      k.call('POST', `/job-results/${jobId}/clean`, { token, headers });
    const list = async (query = '') => expect(await k.call('GET', `/job-results${query}`), 200).jobResults as any[];
    return { k, token, put, clean, list };
  }

  test('createDirtyResult answers 201 with the fields echoed, dirty, createdAt ISO, cleanedAt null', async () => {
    const { k, put } = await setup();
    const jobId = randomJobId();
    const given = {
      applicationStatus: 'FAILED',
      jobName: 'word count',
      startTime: 1_700_000_000_000,
      endTime: 1_700_000_005_000,
      netRuntimeMs: 5000,
      accumulatorResults: { records: 42, nested: { list: [1, 'two', null, true] } },
      failureCause: 'java.lang.RuntimeException: boom',
    };
    const before = Date.now();
    const entry = expect(await put(jobId.toUpperCase(), given), 201);
    assert.deepEqual(entry, { ...given, jobId, state: 'dirty', createdAt: entry.createdAt, cleanedAt: null });
    assert.ok(isIso(entry.createdAt), entry.createdAt);
    assert.ok(Math.abs(Date.parse(entry.createdAt) - before) < 60_000);
    assert.deepEqual(expect(await k.call('GET', `/job-results/${jobId}`), 200), entry);

    const bare = expect(await put(randomJobId(), { applicationStatus: 'UNKNOWN' }), 201);
    assert.deepEqual(Object.keys(bare).sort(), ['applicationStatus', 'cleanedAt', 'createdAt', 'jobId', 'state']);
  });

  test('a second create is 409 JobResultExists, before and after the clean, and changes nothing', async () => {
    const { k, put, clean } = await setup();
    const jobId = randomJobId();
    const first = expect(await put(jobId, { applicationStatus: 'SUCCEEDED' }), 201);
    expect(await put(jobId, { applicationStatus: 'CANCELED' }), 409, 'JobResultExists');
    const cleaned = expect(await clean(jobId), 200);
    expect(await put(jobId, { applicationStatus: 'SUCCEEDED' }), 409, 'JobResultExists');
    const now = expect(await k.call('GET', `/job-results/${jobId}`), 200);
    assert.deepEqual(now, cleaned);
    assert.equal(now.applicationStatus, 'SUCCEEDED');
    assert.equal(now.createdAt, first.createdAt);
  });

  test('markResultAsClean sets state and cleanedAt; a second clean is a no-op; none is 404', async () => {
    const { k, put, clean } = await setup();
    const jobId = randomJobId();
    const dirty = expect(await put(jobId, { applicationStatus: 'SUCCEEDED', jobName: 'j' }), 201);
    const cleaned = expect(await clean(jobId), 200);
    assert.deepEqual(cleaned, { ...dirty, state: 'clean', cleanedAt: cleaned.cleanedAt });
    assert.ok(isIso(cleaned.cleanedAt), cleaned.cleanedAt);
    assert.ok(Date.parse(cleaned.cleanedAt) >= Date.parse(dirty.createdAt));
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(expect(await clean(jobId), 200), cleaned);
    assert.deepEqual(expect(await k.call('GET', `/job-results/${jobId}`), 200), cleaned);

    const none = randomJobId();
    expect(await clean(none), 404, 'JobResultNotFound');
    expect(await k.call('GET', `/job-results/${none}`), 404, 'JobResultNotFound');
  });

  test('the list filters by state and is sorted by job id', async () => {
    const { put, clean, list } = await setup();
    assert.deepEqual(await list(), []);
    const ids = [randomJobId(), randomJobId(), randomJobId(), randomJobId()];
    for (const id of ids) expect(await put(id, { applicationStatus: 'SUCCEEDED' }), 201);
    const cleaned = [ids[0], ids[2]];
    for (const id of cleaned) expect(await clean(id), 200);
    const idsOf = (entries: any[]) => entries.map((e) => e.jobId);
    assert.deepEqual(idsOf(await list('?state=dirty')), [ids[1], ids[3]].sort());
    assert.deepEqual(idsOf(await list('?state=clean')), [...cleaned].sort());
    const all = await list();
    assert.deepEqual(idsOf(all), [...ids].sort());
    assert.ok(all.every((e) => e.state === (cleaned.includes(e.jobId) ? 'clean' : 'dirty')));
  });

  test('an invalid entry is 400 and writes nothing', async () => {
    const { k, put, list } = await setup();
    const jobId = randomJobId();
    const bad = [
      { applicationStatus: 'RUNNING' },
      { applicationStatus: 'SUCCEEDED', owner: 'me' },
      {},
      { applicationStatus: 'SUCCEEDED', netRuntimeMs: -1 },
      { applicationStatus: 'SUCCEEDED', startTime: 1.5 },
      { applicationStatus: 'SUCCEEDED', failureCause: 42 },
    ];
    for (const body of bad) assert.equal((await put(jobId, body)).status, 400, JSON.stringify(body));
    expect(await k.call('GET', `/job-results/${jobId}`), 404, 'JobResultNotFound');
    assert.deepEqual(await list(), []);
  });

  test('writes need the live dispatcher token (or override)', async () => {
    const { k } = await setup();
    const jobId = randomJobId();
    const body = { applicationStatus: 'SUCCEEDED' };
    expect(await k.call('PUT', `/job-results/${jobId}`, { body }), 409, 'FencingTokenRequired');
    expect(await k.call('PUT', `/job-results/${jobId}`, { body, token: 'abc' }), 400, 'BadRequest');
    const jm = await k.token(`jobmanager/${jobId}`);
    expect(await k.call('PUT', `/job-results/${jobId}`, { body, token: jm }), 409, 'FencingTokenStale');
    expect(await k.call('GET', `/job-results/${jobId}`), 404);
    expect(await k.call('PUT', `/job-results/${jobId}`, { body, token: 'override' }), 201);
  });
});

// ---------------------------------------------------------------------------------------------
describe('execution plans', () => {
  async function setup(base = shared.url) {
    const k = new Cluster(base);
    const token = await k.token('dispatcher');
    const putPlan = (jobId: string, raw: Uint8Array, headers?: Record<string, string>) =>
      k.call('PUT', `/execution-plans/${jobId}`, { token, raw, headers });
    const getPlan = (jobId: string) => k.call('GET', `/execution-plans/${jobId}`);
    return { k, token, putPlan, getPlan };
  }

  test('a binary plan round-trips byte for byte and a put replaces it', async () => {
    const { k, putPlan, getPlan } = await setup();
    const jobId = randomJobId();
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const first = Buffer.concat([every, randomBytes(200_000)]);
    assert.deepEqual(expect(await putPlan(jobId, first), 200), { jobId, size: first.length });
    const got = await getPlan(jobId);
    expect(got, 200);
    assert.match(got.headers.get('content-type') ?? '', /^application\/octet-stream/);
    assert.ok(got.bytes.equals(first), 'plan bytes differ');

    const second = randomBytes(17);
    assert.deepEqual(expect(await putPlan(jobId, second), 200), { jobId, size: 17 });
    assert.ok((await getPlan(jobId)).bytes.equals(second), 'plan not replaced');

    const other = randomJobId();
    expect(await putPlan(other, randomBytes(10)), 200);
    assert.deepEqual(expect(await k.call('GET', '/execution-plans'), 200), { jobIds: [jobId, other].sort() });
  });

  test('a JSON body is 415, an empty one 400, and a missing plan 404', async () => {
    const { k, token, putPlan, getPlan } = await setup();
    const jobId = randomJobId();
    expect(await k.call('PUT', `/execution-plans/${jobId}`, { token, body: { plan: 'x' } }), 415);
    expect(await putPlan(jobId, new Uint8Array(0)), 400);
    expect(await getPlan(jobId), 404, 'ExecutionPlanNotFound');
    assert.deepEqual(expect(await k.call('GET', '/execution-plans'), 200), { jobIds: [] });
  });

  test('a plan over PLAN_MAX_BYTES is 413 and leaves the stored one', async (t) => {
    const small = await startApp(t, await sharedRedisUrl(), { PLAN_MAX_BYTES: '1024' });
    const { putPlan, getPlan } = await setup(small.url);
    const jobId = randomJobId();
    const fits = randomBytes(1024);
    expect(await putPlan(jobId, fits), 200);
    expect(await putPlan(jobId, randomBytes(1025)), 413);
    expect(await putPlan(randomJobId(), randomBytes(64 * 1024)), 413);
    assert.ok((await getPlan(jobId)).bytes.equals(fits));
  });

  test('resource requirements are put and got beside a plan, and 404 without one', async () => {
    const { k, token, putPlan } = await setup();
    const jobId = randomJobId();
    const rr = `/execution-plans/${jobId}/resource-requirements`;
    const requirements = { 'vertex-a': { lowerBound: 1, upperBound: 4 }, slots: [1, 2], note: null };
    expect(await k.call('PUT', rr, { token, body: requirements }), 404, 'ExecutionPlanNotFound');
    expect(await k.call('GET', rr), 404, 'ExecutionPlanNotFound');
    expect(await putPlan(jobId, randomBytes(32)), 200);
    expect(await k.call('GET', rr), 404, 'ResourceRequirementsNotFound');

    assert.deepEqual(expect(await k.call('PUT', rr, { token, body: requirements }), 200), { jobId, resourceRequirements: requirements });
    assert.deepEqual(expect(await k.call('GET', rr), 200), { jobId, resourceRequirements: requirements });
    assert.deepEqual(expect(await k.call('PUT', rr, { token, body: { v: 2 } }), 200).resourceRequirements, { v: 2 });
    assert.deepEqual(expect(await k.call('GET', rr), 200).resourceRequirements, { v: 2 });
  });
});

// ---------------------------------------------------------------------------------------------
const checkpoint = (id: number, extra: Record<string, unknown> = {}) => ({
  checkpointId: id,
  timestamp: 1_700_000_000_000 + id,
  externalPointer: `s3://bucket/job/chk-${id}`,
  ...extra,
});
const subsumed = (...ids: number[]) => ids.map((id) => ({ checkpointId: id, externalPointer: checkpoint(id).externalPointer }));

/** A cluster with a job whose job manager leads, and calls on that job's checkpoint stores. */
async function jobSetup(base = shared.url, clusterId?: string) {
  const k = new Cluster(base, clusterId);
  const jobId = randomJobId();
  const leader = await k.lead(`jobmanager/${jobId}`);
  const token = String(leader.fencingToken);
  const path = `/jobs/${jobId}`;
  const add = (body: unknown, headers?: Record<string, string>) => k.call('POST', `${path}/checkpoints`, { token, body, headers });
  const ids = async () => (expect(await k.call('GET', `${path}/checkpoints`), 200).checkpoints as any[]).map((c) => c.checkpointId);
  const increment = (headers?: Record<string, string>, tok = token) =>
    k.call('POST', `${path}/checkpoint-id-counter/increment`, { token: tok, headers });
  const counter = async () => expect(await k.call('GET', `${path}/checkpoint-id-counter`), 200).value as number;
  return { k, jobId, leader, token, path, add, ids, increment, counter };
}

describe('completed checkpoints', () => {
  test('by default the newest one is kept and the one before is answered as subsumed', async () => {
    const { add, ids } = await jobSetup();
    assert.deepEqual(expect(await add(checkpoint(1)), 200), { checkpointId: 1, subsumed: [] });
    assert.deepEqual(expect(await add(checkpoint(2)), 200), { checkpointId: 2, subsumed: subsumed(1) });
    assert.deepEqual(await ids(), [2]);
  });

  test('maxRetained in the body keeps the n newest, oldest first', async () => {
    const { add, ids } = await jobSetup();
    for (const id of [1, 2, 3]) assert.deepEqual(expect(await add({ ...checkpoint(id), maxRetained: 3 }), 200).subsumed, []);
    assert.deepEqual(expect(await add({ ...checkpoint(4), maxRetained: 3 }), 200).subsumed, subsumed(1));
    assert.deepEqual(await ids(), [2, 3, 4]);
    assert.deepEqual(expect(await add({ ...checkpoint(7), maxRetained: 1 }), 200).subsumed, subsumed(2, 3, 4));
    assert.deepEqual(await ids(), [7]);
    for (const maxRetained of [0, 1001, 'two']) assert.equal((await add({ ...checkpoint(8), maxRetained })).status, 400);
  });

  test('subsume drops the named older checkpoints (savepoints Flink subsumes), oldest first', async () => {
    const { add, ids } = await jobSetup();
    // 1 a checkpoint Flink keeps, 2 and 3 savepoints it subsumes when 4 comes.
    for (const id of [1, 2, 3]) expect(await add({ ...checkpoint(id), maxRetained: 3 }), 200);
    assert.deepEqual(expect(await add({ ...checkpoint(4), maxRetained: 2, subsume: [3, 2] }), 200).subsumed, subsumed(2, 3));
    assert.deepEqual(await ids(), [1, 4]);
    // Ids not held, or not below the new one, are ignored; retention still applies.
    assert.deepEqual(expect(await add({ ...checkpoint(5), maxRetained: 2, subsume: [2, 5, 99] }), 200).subsumed, subsumed(1));
    assert.deepEqual(await ids(), [4, 5]);
    for (const subsume of [[-1], ['x'], 3, Array.from({ length: 1001 }, (_, i) => i)]) {
      assert.equal((await add({ ...checkpoint(6), subsume })).status, 400);
    }
  });

  test('CHECKPOINTS_MAX_RETAINED_BY_CLUSTER sets the default of one cluster only', async (t) => {
    const tuned = uniqueCluster('st');
    const app = await startApp(t, await sharedRedisUrl(), { CHECKPOINTS_MAX_RETAINED_BY_CLUSTER: `other-x=5,${tuned}=2` });
    const a = await jobSetup(app.url, tuned);
    const b = await jobSetup(app.url);
    for (const id of [1, 2, 3]) {
      expect(await a.add(checkpoint(id)), 200);
      expect(await b.add(checkpoint(id)), 200);
    }
    assert.deepEqual(await a.ids(), [2, 3]);
    assert.deepEqual(await b.ids(), [3]);
  });

  test('an id not above the latest is 409 CheckpointIdNotIncreasing and changes nothing', async () => {
    const { add, ids } = await jobSetup();
    expect(await add({ ...checkpoint(5), maxRetained: 5 }), 200);
    for (const id of [5, 3]) {
      const body = expect(await add({ ...checkpoint(id), maxRetained: 5 }), 409, 'CheckpointIdNotIncreasing');
      assert.equal(body.latestCheckpointId, 5);
    }
    assert.deepEqual(await ids(), [5]);
  });

  test('all is oldest first, latest the newest, both empty or 404 before the first', async () => {
    const { k, path, add } = await jobSetup();
    assert.deepEqual(expect(await k.call('GET', `${path}/checkpoints`), 200), { checkpoints: [] });
    expect(await k.call('GET', `${path}/checkpoints/latest`), 404, 'CheckpointNotFound');
    for (const id of [0, 10, 11]) expect(await add({ ...checkpoint(id), maxRetained: 10 }), 200);
    assert.deepEqual(expect(await k.call('GET', `${path}/checkpoints`), 200), { checkpoints: [0, 10, 11].map((id) => checkpoint(id)) });
    assert.deepEqual(expect(await k.call('GET', `${path}/checkpoints/latest`), 200), checkpoint(11));
  });

  test('metadata and properties round-trip; malformed checkpoints are 400', async () => {
    const { k, path, add, ids } = await jobSetup();
    const full = checkpoint(3, {
      metadata: randomBytes(3000).toString('base64'),
      properties: { 'state.backend': 'rocksdb', empty: '', unicode: 'ä→✓' },
    });
    expect(await add(full), 200);
    assert.deepEqual(expect(await k.call('GET', `${path}/checkpoints/latest`), 200), full);
    assert.deepEqual(expect(await k.call('GET', `${path}/checkpoints`), 200).checkpoints, [full]);
    const bad = [
      checkpoint(4, { properties: { n: 1 } }),
      checkpoint(4, { externalPointer: '' }),
      checkpoint(4, { extra: true }),
      { ...checkpoint(4), checkpointId: -4 },
      { ...checkpoint(4), checkpointId: 4.5 },
    ];
    for (const body of bad) assert.equal((await add(body)).status, 400, JSON.stringify(body));
    assert.deepEqual(await ids(), [3]);
  });

  test('shutdown keeps all for SUSPENDED and discards all for FINISHED; a bad status is 400', async () => {
    const { k, path, token, add, ids } = await jobSetup();
    const shutdown = (jobStatus: unknown) => k.call('POST', `${path}/checkpoints/shutdown`, { token, body: { jobStatus } });
    for (const id of [1, 2]) expect(await add({ ...checkpoint(id), maxRetained: 2 }), 200);
    assert.deepEqual(expect(await shutdown('SUSPENDED'), 200), { jobStatus: 'SUSPENDED', discarded: [] });
    assert.deepEqual(await ids(), [1, 2]);
    expect(await shutdown('DONE'), 400);
    expect(await shutdown('finished'), 400);
    assert.deepEqual(await ids(), [1, 2]);
    assert.deepEqual(expect(await shutdown('FINISHED'), 200), { jobStatus: 'FINISHED', discarded: [1, 2] });
    assert.deepEqual(await ids(), []);
  });

  test('writes need the live token of this job\'s job manager', async () => {
    const { k, jobId, path } = await jobSetup();
    const dispatcher = await k.token('dispatcher');
    const otherJob = await k.token(`jobmanager/${randomJobId()}`);
    for (const token of [dispatcher, otherJob]) {
      expect(await k.call('POST', `${path}/checkpoints`, { token, body: checkpoint(1) }), 409, 'FencingTokenStale');
      expect(await k.call('POST', `${path}/checkpoint-id-counter/increment`, { token }), 409, 'FencingTokenStale');
    }
    expect(await k.call('GET', `/jobs/${jobId}/checkpoints/latest`), 404);
    assert.deepEqual(expect(await k.call('GET', `${path}/checkpoint-id-counter`), 200), { value: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
describe('checkpoint id counter', () => {
  test('starts at 1 and increment answers the value before it', async () => {
    const { increment, counter } = await jobSetup();
    assert.equal(await counter(), 1);
    for (const value of [1, 2, 3]) assert.deepEqual(expect(await increment(), 200), { value });
    assert.equal(await counter(), 4);
  });

  test('setCount sets the value; lower is 409 with the current value; equal is fine', async () => {
    const { k, path, token, increment, counter } = await jobSetup();
    const set = (value: unknown) => k.call('PUT', `${path}/checkpoint-id-counter`, { token, body: { value } });
    assert.deepEqual(expect(await set(10), 200), { value: 10 });
    assert.deepEqual(expect(await increment(), 200), { value: 10 });
    const refused = expect(await set(5), 409, 'CheckpointIdNotIncreasing');
    assert.equal(refused.value, 11);
    assert.equal(await counter(), 11);
    assert.deepEqual(expect(await set(11), 200), { value: 11 });
    for (const value of [0, 2.5, '12']) assert.equal((await set(value)).status, 400, String(value));
    assert.equal(await counter(), 11);
  });

  test('shutdown keeps the counter for RUNNING and removes it for CANCELED', async () => {
    const { k, path, token, increment, counter } = await jobSetup();
    const shutdown = (jobStatus: string) => k.call('POST', `${path}/checkpoint-id-counter/shutdown`, { token, body: { jobStatus } });
    for (let i = 0; i < 3; i++) expect(await increment(), 200);
    assert.deepEqual(expect(await shutdown('RUNNING'), 200), { jobStatus: 'RUNNING', removed: false });
    assert.equal(await counter(), 4);
    assert.deepEqual(expect(await shutdown('CANCELED'), 200), { jobStatus: 'CANCELED', removed: true });
    assert.equal(await counter(), 1);
    expect(await shutdown('GONE'), 400);
  });

  test('50 concurrent increments hand out distinct consecutive ids', async () => {
    const { increment, counter } = await jobSetup();
    const replies = await Promise.all(Array.from({ length: 50 }, () => increment()));
    const values = replies.map((r) => expect(r, 200).value as number).sort((a, b) => a - b);
    assert.deepEqual(values, Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(await counter(), 51);
  });
});

// ---------------------------------------------------------------------------------------------
describe('idempotency', () => {
  const key = () => ({ 'idempotency-key': `k-${randomBytes(8).toString('hex')}` });

  /** Sends the same write twice; asserts the second is a replay of the first and answers both. */
  async function twice(send: () => Promise<Reply>) {
    const first = await send();
    const second = await send();
    assert.ok(!replayed(first), 'the first write is not a replay');
    assert.ok(replayed(second), 'the retry carries Idempotent-Replayed: true');
    assert.equal(second.status, first.status);
    assert.deepEqual(second.body, first.body);
    return first;
  }

  test('a retried increment answers the same value and advances the counter once', async () => {
    const { increment, counter } = await jobSetup();
    const h = key();
    assert.deepEqual(expect(await twice(() => increment(h)), 200), { value: 1 });
    assert.equal(await counter(), 2);
    assert.deepEqual(expect(await increment(key()), 200), { value: 2 });
  });

  test('a retried checkpoint add is written once; the key with another body is 422', async () => {
    const { add, ids } = await jobSetup();
    const h = key();
    expect(await add(checkpoint(1)), 200);
    assert.deepEqual(expect(await twice(() => add(checkpoint(2), h)), 200), { checkpointId: 2, subsumed: subsumed(1) });
    assert.deepEqual(await ids(), [2]);
    expect(await add(checkpoint(3), h), 422, 'IdempotencyKeyReused');
    assert.deepEqual(await ids(), [2]);
  });

  test('a retried createDirtyResult answers the same entry; the key elsewhere is 422', async () => {
    const k = new Cluster(shared.url);
    const token = await k.token('dispatcher');
    const jobId = randomJobId();
    const h = key();
    const put = (body: unknown, id = jobId) => k.call('PUT', `/job-results/${id}`, { token, body, headers: h });
    const entry = expect(await twice(() => put({ applicationStatus: 'SUCCEEDED' })), 201);
    assert.deepEqual(expect(await k.call('GET', `/job-results/${jobId}`), 200), entry);
    expect(await put({ applicationStatus: 'FAILED' }), 422, 'IdempotencyKeyReused');
    expect(await put({ applicationStatus: 'SUCCEEDED' }, randomJobId()), 422, 'IdempotencyKeyReused');
    expect(await k.call('POST', `/job-results/${jobId}/clean`, { token, headers: h }), 422, 'IdempotencyKeyReused');
    assert.equal(expect(await k.call('GET', `/job-results/${jobId}`), 200).state, 'dirty');
  });

  test('a write refused for a stale token is not remembered', async () => {
    const k = new Cluster(shared.url);
    const { stale, live } = await k.staleAndLive('dispatcher');
    const jobId = randomJobId();
    const h = key();
    const put = (token: string) => k.call('PUT', `/job-results/${jobId}`, { token, body: { applicationStatus: 'SUCCEEDED' }, headers: h });
    expect(await put(stale), 409, 'FencingTokenStale');
    expect(await k.call('GET', `/job-results/${jobId}`), 404);
    const fresh = await put(live);
    expect(fresh, 201);
    assert.ok(!replayed(fresh));

    const job = await jobSetup();
    const jm = await job.k.staleAndLive(`jobmanager/${job.jobId}`, job.leader);
    const hk = key();
    expect(await job.increment(hk, jm.stale), 409, 'FencingTokenStale');
    const ok = await job.increment(hk, jm.live);
    assert.deepEqual(expect(ok, 200), { value: 1 });
    assert.ok(!replayed(ok));
    assert.equal(await job.counter(), 2);
  });

  test('an answer is remembered for IDEMPOTENCY_TTL_MS, then the key is free again', async (t) => {
    const app = await startApp(t, await sharedRedisUrl(), { IDEMPOTENCY_TTL_MS: '1000' });
    const { increment, counter } = await jobSetup(app.url);
    const h = key();
    assert.deepEqual(expect(await increment(h), 200), { value: 1 });
    assert.ok(replayed(await increment(h)));
    await new Promise((r) => setTimeout(r, 1500));
    const later = await increment(h);
    assert.deepEqual(expect(later, 200), { value: 2 });
    assert.ok(!replayed(later));
    assert.equal(await counter(), 3);
  });

  test('keys are per cluster, and a malformed key is 400', async () => {
    const a = await jobSetup();
    const b = await jobSetup();
    const h = key();
    assert.deepEqual(expect(await a.increment(h), 200), { value: 1 });
    const inB = await b.increment(h);
    assert.deepEqual(expect(inB, 200), { value: 1 });
    assert.ok(!replayed(inB));
    for (const bad of ['has space', 'x'.repeat(256)]) {
      expect(await a.increment({ 'idempotency-key': bad }), 400);
    }
    assert.equal(await a.counter(), 2);
  });
});
