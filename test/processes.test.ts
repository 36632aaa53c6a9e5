/** Real server processes on one Redis: changes cross between them, and a shutdown sends
 * watchers elsewhere (1001) without losing a change and finishes requests in flight. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { stopAllRedis } from './support/redis.js';
import { get, ownRedisUrl, post, ServerProcess, uniqueCluster, waitFor, Watch } from './support/app.js';

after(() => stopAllRedis());

test('two server processes: a change through one reaches a watcher and a long-poll on the other; SIGTERM closes watchers with 1001 and they resume on the other without a gap', { timeout: 90_000 }, async (t) => {
  const redisUrl = await ownRedisUrl();
  const [a, b] = await Promise.all([ServerProcess.start(t, { REDIS_URL: redisUrl }), ServerProcess.start(t, { REDIS_URL: redisUrl })]);
  const cluster = uniqueCluster('proc');
  const path = `/v1/clusters/${cluster}/leaders/dispatcher`;

  const onA = await Watch.open(t, `${a.url.replace('http', 'ws')}/v1/clusters/${cluster}/watch`);
  const onB = await Watch.open(t, `${b.url.replace('http', 'ws')}/v1/clusters/${cluster}/watch`);
  await Promise.all([onA.count(1), onB.count(1)]);
  const { index } = (await get(b.url, path)).body;
  const poll = get(b.url, `${path}?index=${index}&wait=20s`);

  const g = (await post(a.url, `${path}/campaign`, { contenderId: 'd-1', address: 'http://d1' })).body;
  assert.equal(g.granted, true);
  const polled = await poll;
  assert.equal(polled.body.leader.sessionId, g.leader.sessionId);
  const seenOnB = await onB.find((m) => m.type === 'change' && m.event === 'granted');
  assert.equal(seenOnB.leader.fencingToken, g.leader.fencingToken);
  const lastOnA = await onA.find((m) => m.type === 'change' && m.event === 'granted');

  assert.equal(await a.signal('SIGTERM'), 0, 'a graceful exit');
  await waitFor(() => onA.closeCode !== null, 5000, 'the watcher on A closed');
  assert.equal(onA.closeCode, 1001);

  // Changes while the watcher is away, then it resumes on B after the last index it saw.
  await post(b.url, `${path}/resign`, { contenderId: 'd-1', sessionId: g.leader.sessionId });
  const g2 = (await post(b.url, `${path}/campaign`, { contenderId: 'd-2' })).body;
  const resumed = await Watch.open(t, `${b.url.replace('http', 'ws')}/v1/clusters/${cluster}/watch?since=${lastOnA.index}`);
  const missed = await resumed.count(2);
  assert.deepEqual(missed.map((m) => [m.type, m.event]), [['change', 'revoked'], ['change', 'granted']]);
  assert.equal(missed[1].leader.sessionId, g2.leader.sessionId);
  assert.ok(missed[0].index > lastOnA.index && missed[1].index > missed[0].index);
});

test('SIGTERM answers long-polls in flight at once and exits cleanly', { timeout: 60_000 }, async (t) => {
  const redisUrl = await ownRedisUrl();
  const s = await ServerProcess.start(t, { REDIS_URL: redisUrl });
  const path = `/v1/clusters/${uniqueCluster('drain')}/leaders`;
  // A loaded machine may shed the first read (503 Overloaded): read until it answers.
  let first = await get(s.url, path);
  for (let i = 0; first.status !== 200 && i < 50; i++) first = await new Promise((r) => setTimeout(r, 200)).then(() => get(s.url, path));
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const { index } = first.body;
  const poll = get(s.url, `${path}?index=${index}&wait=60s`);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  const [code, answer] = await Promise.all([s.signal('SIGTERM'), poll]);
  assert.equal(code, 0);
  assert.equal(answer.status, 200);
  assert.equal(answer.body.index, index);
  assert.ok(Date.now() - t0 < 5000, `shutdown took ${Date.now() - t0} ms`);
});

test('SIGTERM lets a blob upload in flight finish: it is acknowledged, and whole on another replica', { timeout: 60_000 }, async (t) => {
  const redisUrl = await ownRedisUrl();
  const [a, b] = await Promise.all([ServerProcess.start(t, { REDIS_URL: redisUrl }), ServerProcess.start(t, { REDIS_URL: redisUrl })]);
  const cluster = uniqueCluster('drain');
  const d = (await post(a.url, `/v1/clusters/${cluster}/leaders/dispatcher/campaign`, { contenderId: 'd', ttlMs: 60_000 })).body;
  const chunk = randomBytes(64 * 1024);
  const chunks = 128; // 8 MiB, sent over about 1.3 s
  async function* slowBody() {
    for (let i = 0; i < chunks; i++) {
      yield chunk;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const upload = fetch(`${a.url}/v1/clusters/${cluster}/blobs/_/in-flight`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': String(d.leader.fencingToken) },
    body: Readable.from(slowBody()) as unknown as BodyInit,
    duplex: 'half',
  } as RequestInit);
  await new Promise((r) => setTimeout(r, 300));
  const [code, res] = await Promise.all([a.signal('SIGTERM'), upload]);
  assert.equal(code, 0, 'a graceful exit');
  const resBody = res.status === 201 ? null : await res.clone().text();
  assert.equal(res.status, 201, `the upload in flight was finished and acknowledged: ${resBody}`);
  const stored = await res.json();
  assert.equal(stored.size, chunk.length * chunks);

  const back = await fetch(`${b.url}/v1/clusters/${cluster}/blobs/_/in-flight`);
  const bytes = Buffer.from(await back.arrayBuffer());
  assert.equal(bytes.length, chunk.length * chunks);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), stored.sha256);
});
