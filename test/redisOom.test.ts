/**
 * Script flags (Redis 7 shebangs) and a full Redis (docs/design.md §9): the scripts that
 * keep leadership safe or free memory run on a Redis at `maxmemory` (`allow-oom`), the
 * read-only ones say so (`no-writes`), and every other one is refused by Redis before it
 * runs, so that a full Redis never leaves a write half-done.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { SCRIPT_NAMES, SCRIPTS_DIR } from '../src/ha/scripts.js';
import { stopAllRedis } from './support/redis.js';
import { clusterElsewhere, get, ownRedis, post, randomJobId, startApp, uniqueCluster } from './support/app.js';

after(() => stopAllRedis());

const SHEBANG = /^#!lua(?: flags=([a-z-]+(?:,[a-z-]+)*))?\n/;

test('every script starts with a shebang, and its header says its flags', () => {
  for (const name of SCRIPT_NAMES) {
    const text = readFileSync(join(SCRIPTS_DIR, `${name}.lua`), 'utf8');
    const m = SHEBANG.exec(text);
    assert.ok(m, `${name}: first line #!lua [flags=...]`);
    const flags = m[1] ?? 'none';
    const header = /^ {2}Flags: (\S+)/m.exec(text);
    assert.ok(header, `${name}: a Flags: line in its header`);
    assert.equal(header[1].replace(/[:.]$/, ''), flags, `${name}: the Flags: line says the shebang's flags`);
  }
});

test('a full Redis (noeviction, maxmemory 1): renew and resign work, a store write answers 503 and writes nothing', async (t) => {
  const redis = await ownRedis({ args: ['--maxmemory-policy', 'noeviction'] });
  const app = await startApp(t, redis.url);
  const cluster = uniqueCluster('oom');
  const leaders = `/v1/clusters/${cluster}/leaders`;
  const d = await post(app.url, `${leaders}/dispatcher/campaign`, { contenderId: 'd-1', ttlMs: 60_000 });
  const rm = await post(app.url, `${leaders}/resourcemanager/campaign`, { contenderId: 'rm-1', ttlMs: 60_000 });
  assert.equal(d.body.granted && rm.body.granted, true);

  // On a Redis Cluster, only the shard of this cluster is full.
  const elsewhere = await clusterElsewhere(redis, cluster);
  const admin = new Redis((await redis.nodeOf(cluster)).url);
  t.after(() => admin.disconnect());
  await admin.config('SET', 'maxmemory', '1');

  // Leadership stays safe: the leader renews, and a resignation frees the lease whole.
  const renewed = await post(app.url, `${leaders}/dispatcher/renew`, { contenderId: 'd-1', sessionId: d.body.leader.sessionId });
  assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
  const resigned = await post(app.url, `${leaders}/resourcemanager/resign`, { contenderId: 'rm-1', sessionId: rm.body.leader.sessionId });
  assert.equal(resigned.status, 200, JSON.stringify(resigned.body));
  const free = await get(app.url, `${leaders}/resourcemanager`);
  assert.equal(free.status, 200, JSON.stringify(free.body));
  assert.equal(free.body.leader, null);

  // A store write is refused before it runs: 503, and nothing of it in Redis.
  const jobId = randomJobId();
  const before = await admin.dbsize();
  const w = await fetch(`${app.url}/v1/clusters/${cluster}/job-results/${jobId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-fencing-token': String(d.body.leader.fencingToken) },
    body: JSON.stringify({ applicationStatus: 'SUCCEEDED', jobName: 'full' }),
  });
  const body = await w.json();
  assert.equal(w.status, 503, JSON.stringify(body));
  assert.equal(body.error, 'RedisOutOfMemory');
  assert.equal(await admin.dbsize(), before, 'no key written');
  assert.equal((await get(app.url, `/v1/clusters/${cluster}/job-results/${jobId}`)).status, 404);

  // The clusters of the other shards write as before.
  if (elsewhere) {
    const e = await post(app.url, `/v1/clusters/${elsewhere}/leaders/dispatcher/campaign`, { contenderId: 'd-1', ttlMs: 60_000 });
    assert.equal(e.body.granted, true, JSON.stringify(e.body));
    const ok = await fetch(`${app.url}/v1/clusters/${elsewhere}/job-results/${jobId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-fencing-token': String(e.body.leader.fencingToken) },
      body: JSON.stringify({ applicationStatus: 'SUCCEEDED', jobName: 'elsewhere' }),
    });
    assert.equal(ok.status, 201, await ok.text());
  }
});
