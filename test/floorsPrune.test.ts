/**
 * The floors (src/ha/floors.ts, DATA_DIR/floors.json) keep nothing forever (issue 16,
 * "Nothing left behind"): an ended job manager takes its token floor with it (the cluster's
 * index floor stays above it), a job cleanup its counter, a deleted cluster all of its
 * floors; and the write-back after a failover or restart (floorsWriteback.ts) goes in
 * bounded batches and drops clusters long gone from Redis.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { Floors } from '../src/ha/floors.js';
import { FloorsWriteback, WRITEBACK_BATCH } from '../src/ha/floorsWriteback.js';
import { ClusterKeys } from '../src/ha/ids.js';
import type { RedisLink } from '../src/ha/redisLink.js';
import { Scripts } from '../src/ha/scripts.js';
import { stopAllRedis } from './support/redis.js';
import { connectRedis, ownRedisUrl, post, randomJobId, startApp, uniqueCluster } from './support/app.js';

const quiet = pino({ enabled: false });
let redisUrl: string;
let redis: Redis;
let dir: string;
before(async () => {
  redisUrl = await ownRedisUrl();
  redis = await connectRedis(redisUrl);
  dir = mkdtempSync(join(tmpdir(), 'leasehold-floors-prune-'));
});
after(async () => {
  redis.disconnect();
  await stopAllRedis();
  rmSync(dir, { recursive: true, force: true });
});

test('ended job managers, cleaned jobs and deleted clusters leave nothing in the floors file', { timeout: 120_000 }, async () => {
  const srv = await startApp(null, redisUrl, { DATA_DIR: dir });
  const [kept, deleted] = [uniqueCluster('fl'), uniqueCluster('fl')];
  const v1 = (c: string) => `/v1/clusters/${c}`;
  const d = await post(srv.url, `${v1(kept)}/leaders/dispatcher/campaign`, { contenderId: 'd', ttlMs: 300_000 });
  assert.equal(d.status, 200, JSON.stringify(d.body));
  let top = 0;
  const resigned: string[] = [];
  for (let i = 0; i < 20; i++) {
    const job = randomJobId();
    const r = await post(srv.url, `${v1(kept)}/leaders/jobmanager/${job}/campaign`, { contenderId: 'jm', ttlMs: 300_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    top = Math.max(top, r.body.leader.fencingToken);
    const counter = await fetch(`${srv.url}${v1(kept)}/jobs/${job}/checkpoint-id-counter/increment`, {
      method: 'POST',
      headers: { 'x-fencing-token': String(r.body.leader.fencingToken) },
    });
    assert.equal(counter.status, 200, await counter.text());
    if (i % 2 === 0) {
      // Ended by a resignation: the job and its counter live on.
      resigned.push(job);
      assert.equal((await post(srv.url, `${v1(kept)}/leaders/jobmanager/${job}/resign`, { contenderId: 'jm', sessionId: r.body.leader.sessionId })).status, 200);
    } else {
      // Ended by the job's global cleanup, fenced by the dispatcher.
      const c = await fetch(`${srv.url}${v1(kept)}/jobs/${job}`, { method: 'DELETE', headers: { 'x-fencing-token': String(d.body.leader.fencingToken) } });
      assert.equal(c.status, 200, await c.text());
    }
  }
  assert.equal((await post(srv.url, `${v1(deleted)}/leaders/rest/campaign`, { contenderId: 'r' })).status, 200);
  const del = await fetch(`${srv.url}${v1(deleted)}`, { method: 'DELETE' });
  assert.equal(del.status, 200, await del.text());
  await srv.close();

  const saved = JSON.parse(readFileSync(join(dir, 'floors.json'), 'utf8')).clusters;
  assert.equal(saved[deleted], undefined, 'a deleted cluster keeps no floors');
  assert.deepEqual(Object.keys(saved[kept].tokens), ['dispatcher'], 'no token floor of an ended job manager');
  assert.deepEqual(Object.keys(saved[kept].counters).sort(), resigned.sort(), 'no counter floor of a cleaned job');
  assert.ok(saved[kept].index >= top, 'the index floor stays above every token granted');
});

test('the write-back goes in batches of counters and drops clusters long gone', { timeout: 60_000 }, async () => {
  const floors = new Floors(null, quiet);
  const [live, goneLong, goneJustNow] = [uniqueCluster('wb'), uniqueCluster('wb'), uniqueCluster('wb')];
  // A cluster Redis has (its index), with more counters than one call writes back.
  const index = Number(await redis.call('TIME').then((t: any) => t[0])) * 1e6;
  await redis.set(new ClusterKeys(live).index, String(index));
  floors.raiseIndex(live, index);
  const jobs = Array.from({ length: 2 * WRITEBACK_BATCH + 7 }, () => randomJobId());
  for (const j of jobs) floors.raiseCounter(live, j, 5);
  // Gone from Redis: answered long ago, and moments ago (a replica that lagged may lack it).
  floors.raiseIndex(goneLong, 1000);
  floors.raiseCounter(goneLong, randomJobId(), 3);
  floors.raiseIndex(goneJustNow, index);

  const link = Object.assign(new EventEmitter(), { reportRollback: () => {} }) as unknown as RedisLink;
  const calls: number[] = [];
  const scripts = new Scripts(redis);
  const counting = Object.assign(Object.create(scripts), {
    run: (name: string, keys: string[], args: unknown[]) => {
      if (name === 'floors_writeback') calls.push(keys.length - 3);
      return scripts.run(name as 'floors_writeback', keys, args as string[]);
    },
  }) as Scripts;
  const finished = new Promise<void>((resolve) => {
    const wb = new FloorsWriteback({ link, scripts: counting, floors, logSize: 100, log: quiet, done: resolve });
    wb.request(() => false);
  });
  await finished;

  assert.ok(Math.max(...calls) <= WRITEBACK_BATCH, `counters per call: ${calls.join(',')}`);
  for (const j of jobs) assert.equal(await redis.get(new ClusterKeys(live).checkpointIdCounter(j)), '5', 'every counter written back');
  assert.deepEqual(floors.clusterIds().sort(), [live, goneJustNow].sort(), 'only the cluster long gone dropped out');
});
