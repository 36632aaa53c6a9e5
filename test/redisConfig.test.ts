/**
 * A Redis configured to lose data, or full (docs/design.md §9): an evicting
 * `maxmemory-policy` makes /readyz answer 503 naming the policy, with an error in the log;
 * a Redis at `maxmemory` answers a clear 503 RedisOutOfMemory, never a 500.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { buildApp } from '../src/app.js';
import { stopAllRedis } from './support/redis.js';
import { appRedis, clusterElsewhere, get, ownRedis, post, randomJobId, uniqueCluster, waitFor } from './support/app.js';

after(() => stopAllRedis());

/** An app on `redisUrl`, listening, with every log line kept. */
async function appWithLog(t: import('node:test').TestContext, redisUrl: string) {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const app = await buildApp({ ...(await appRedis(redisUrl)), logger: { level: 'info', stream } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, lines };
}

for (const policy of ['allkeys-lru', 'volatile-lru']) {
  test(`maxmemory-policy ${policy}: /readyz answers 503 naming it and the log has an error; noeviction makes it ready again`, async (t) => {
    // On a Redis Cluster, one shard so configured is enough.
    const redis = await ownRedis();
    const admin = new Redis(redis.nodes[0].url);
    t.after(() => admin.disconnect());
    await admin.config('SET', 'maxmemory-policy', policy);
    const { url, lines } = await appWithLog(t, redis.url);

    await waitFor(async () => (await get(url, '/readyz')).body?.redis === 'up', 10_000, 'redis up');
    const r = await get(url, '/readyz');
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.status, 'unavailable');
    assert.equal(r.body.problems.length, 1);
    assert.match(r.body.problems[0], new RegExp(`maxmemory-policy is ${policy}`));
    const logged = lines.find((l) => l.level >= 50 && l.maxmemoryPolicy === policy);
    assert.ok(logged, `an error line naming ${policy}: ${JSON.stringify(lines)}`);
    assert.match(logged.msg, /noeviction/);

    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    // The policy is read again every few health checks (200 ms apart in tests).
    await waitFor(async () => (await get(url, '/readyz')).status === 200, 15_000, 'ready again');
    assert.deepEqual((await get(url, '/readyz')).body.problems, []);
  });
}

test('noeviction at maxmemory: writes answer 503 RedisOutOfMemory (never 500), reads and renewals go on', async (t) => {
  const redis = await ownRedis({ args: ['--maxmemory-policy', 'noeviction'] });
  const { url } = await appWithLog(t, redis.url);
  await waitFor(async () => (await get(url, '/readyz')).status === 200, 10_000, 'ready');
  const cluster = uniqueCluster();
  const leaders = `/v1/clusters/${cluster}/leaders`;
  const c = await post(url, `${leaders}/dispatcher/campaign`, { contenderId: 'd-1', ttlMs: 60_000 });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  const { fencingToken: token, sessionId } = c.body.leader;

  // On a Redis Cluster, only the shard of this cluster is full.
  const elsewhere = await clusterElsewhere(redis, cluster);
  const admin = new Redis((await redis.nodeOf(cluster)).url);
  t.after(() => admin.disconnect());
  // Below what Redis already uses: every command that adds data is refused.
  await admin.config('SET', 'maxmemory', '1');

  const jobId = randomJobId();
  const write = () =>
    fetch(`${url}/v1/clusters/${cluster}/job-results/${jobId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-fencing-token': String(token) },
      body: JSON.stringify({ applicationStatus: 'SUCCEEDED', jobName: 'full' }),
    });
  const w = await write();
  const body = await w.json();
  assert.equal(w.status, 503, JSON.stringify(body));
  assert.deepEqual(Object.keys(body).sort(), ['error', 'message', 'statusCode']);
  assert.equal(body.error, 'RedisOutOfMemory');
  assert.match(body.message, /out of memory/);
  assert.equal(w.headers.get('retry-after'), '1');

  const other = await post(url, `${leaders}/resourcemanager/campaign`, { contenderId: 'rm-1', ttlMs: 60_000 });
  assert.notEqual(other.status, 500, JSON.stringify(other.body));
  // The other shards' clusters are not full.
  if (elsewhere) assert.equal((await post(url, `/v1/clusters/${elsewhere}/leaders/dispatcher/campaign`, { contenderId: 'd-1' })).body.granted, true);

  // The leader keeps its lease, and a read still answers.
  const renewed = await post(url, `${leaders}/dispatcher/renew`, { contenderId: 'd-1', sessionId });
  assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
  assert.equal((await get(url, `${leaders}/dispatcher`)).status, 200);

  // Nothing was half-written, and with room again the same write succeeds.
  assert.equal((await get(url, `/v1/clusters/${cluster}/job-results/${jobId}`)).status, 404);
  await admin.config('SET', 'maxmemory', '0');
  assert.equal((await write()).status, 201);
});
