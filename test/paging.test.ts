/**
 * Bounded reads (issue 16): every list route answers pages (`limit`, `cursor`,
 * `nextCursor`), and no Redis command of a list or of a plan read touches more than a
 * bounded number of entries or bytes, whatever the tenant stored. Redis's MONITOR, on a
 * connection of its own, shows every command the server sends (those scripts run too),
 * and each is checked against its bound.
 *
 * The lists hold LIST_SIZE entries (10,000; `LIST_SIZE=100000` for the full size of the
 * issue). They are written straight into Redis the way the code before pagination stored
 * them (sets of ids, plans as one string), so that the same test also shows the old data
 * read, moved in bounded batches into the sorted sets that replace those sets.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { once } from 'node:events';
import { connect } from 'node:net';
import type { Redis } from 'ioredis';
import { LeaseholdClient } from '../src/client/index.js';
import { post, connectRedis, nodeUrlOf, sharedRedisUrl, startApp, uniqueCluster, waitFor, type Running } from './support/app.js';
import { stopAllRedis } from './support/redis.js';

const LIST_SIZE = Number(process.env.LIST_SIZE ?? 10_000);
const MIB = 1 << 20;

let srv: Running;
let redis: Redis;
let redisUrl: string;
before(async () => {
  const url = (redisUrl = await sharedRedisUrl());
  // Plans of megabytes are written in one script: a generous timeout on a loaded machine.
  srv = await startApp(null, url, { REDIS_COMMAND_TIMEOUT_MS: '10000' });
  redis = await connectRedis(url);
});
after(async () => {
  redis?.disconnect();
  await srv?.close();
  await stopAllRedis();
});

/** Job ids in hex, which sort the same as strings and as bytes. */
function jobIds(n: number): string[] {
  return Array.from({ length: n }, () => randomBytes(16).toString('hex'));
}

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(srv.url + path);
  return { status: res.status, body: await res.json() };
}

/** Every page of a list (from the first, or from cursor `from`), checked to be at most
 * `limit` long; the entries in order. */
async function pages(path: string, field: string, limit?: number, from?: string): Promise<{ entries: any[]; count: number }> {
  const entries: any[] = [];
  let cursor = from;
  let count = 0;
  do {
    const q = new URLSearchParams();
    if (limit !== undefined) q.set('limit', String(limit));
    if (cursor) q.set('cursor', cursor);
    const r = await getJson(`${path}${path.includes('?') ? '&' : '?'}${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    assert.ok(r.body[field].length <= (limit ?? 100), `a page holds at most the limit (${r.body[field].length})`);
    entries.push(...r.body[field]);
    cursor = r.body.nextCursor;
    count++;
    assert.ok(count <= LIST_SIZE + 2, 'the pages end');
  } while (cursor);
  return { entries, count };
}

/** The commands Redis runs while `fn` runs that name a key of `cluster`'s stores, from
 * MONITOR on a plain socket of its own (on a Redis Cluster, to the primary of its slot). */
async function monitored(cluster: string, fn: () => Promise<void>): Promise<string[][]> {
  const { hostname, port } = new URL(await nodeUrlOf(redisUrl, `lh:{${cluster}}`));
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.write('MONITOR\r\n');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  await waitFor(() => text.startsWith('+OK\r\n'), 5000, 'MONITOR');
  const marker = `paging-test-end-${randomBytes(4).toString('hex')}`;
  try {
    await fn();
    // MONITOR's stream trails the replies: wait for a command sent after them (on a key of
    // the cluster's slot, so that it reaches the node monitored on a Redis Cluster too).
    await redis.exists(`lh:{${cluster}}:${marker}`);
    await waitFor(() => text.includes(marker), 10_000, 'MONITOR to catch up');
  } finally {
    socket.destroy();
  }
  const store = new RegExp(`^lh:\\{${cluster}\\}:(jobresult|plan|blobs|checkpoints)`);
  return text
    .split('\r\n')
    .filter((line) => line.startsWith('+') && line.includes('] "'))
    .map((line) => argsOf(line.slice(line.indexOf('] "') + 2)))
    .filter((args) => args.some((a) => store.test(a)));
}

/** The arguments of a MONITOR line: quoted, with \\, \" and \xHH escapes. */
function argsOf(quoted: string): string[] {
  return [...quoted.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) =>
    m[1].replace(/\\x([0-9a-f]{2})|\\(.)/g, (_, hex, ch) => (hex ? String.fromCharCode(parseInt(hex, 16)) : ch === 'n' ? '\n' : ch === 'r' ? '\r' : ch)),
  );
}

const PAGE = 1000;
/** Each command a list or plan read may send, with its bound. Anything else fails. */
function assertBounded(commands: string[][]): void {
  const countAfter = (args: string[], word: string) => {
    const i = args.findIndex((a) => a.toUpperCase() === word);
    assert.ok(i > 0, `${args.slice(0, 4).join(' ')} has ${word}`);
    return Number(args[i + (word === 'LIMIT' ? 2 : 1)]);
  };
  for (const args of commands) {
    const name = args[0].toLowerCase();
    const what = args.slice(0, 5).join(' ').slice(0, 200);
    switch (name) {
      case 'zrangebylex':
      case 'zrangebyscore':
        assert.ok(countAfter(args, 'LIMIT') <= PAGE + 1, what);
        break;
      case 'hscan':
        assert.ok(countAfter(args, 'COUNT') <= PAGE, what);
        break;
      case 'spop':
        assert.ok(Number(args[2]) <= PAGE, what);
        break;
      case 'getrange':
        assert.ok(Number(args[3]) - Number(args[2]) < MIB, what);
        break;
      case 'hgetall':
        // One entry, never the hash of a whole list.
        assert.match(args[1], /:jobresult:[0-9a-f]{32}$/, what);
        break;
      case 'evalsha':
      case 'eval':
      case 'type':
      case 'strlen':
      case 'exists':
      case 'lindex':
      case 'llen':
      case 'zadd':
      case 'scard':
        break;
      default:
        assert.fail(`a list or plan read sent an unbounded or unexpected command: ${what}`);
    }
  }
}

test(`GET job-results pages through ${LIST_SIZE} entries stored the old way, by job id, every command bounded`, async () => {
  const c = uniqueCluster('pg');
  const p = `lh:{${c}}:`;
  const ids = jobIds(LIST_SIZE);
  const dirty = new Set(ids.filter((_, i) => i % 3 === 0));
  for (let i = 0; i < ids.length; i += 1000) {
    const batch = ids.slice(i, i + 1000);
    const pipe = redis.pipeline();
    pipe.sadd(p + 'jobresults', ...batch);
    const d = batch.filter((id) => dirty.has(id));
    if (d.length) pipe.sadd(p + 'jobresults:dirty', ...d);
    for (const id of batch) {
      pipe.hset(p + 'jobresult:' + id, 'state', dirty.has(id) ? 'dirty' : 'clean', 'createdAt', '1700000000000', 'applicationStatus', 'SUCCEEDED');
    }
    await pipe.exec();
  }

  // A caller that does not page gets the first page (the default limit) and a cursor.
  const first = await getJson(`/v1/clusters/${c}/job-results`);
  assert.equal(first.status, 200);
  assert.equal(first.body.jobResults.length, 100);
  assert.equal(typeof first.body.nextCursor, 'string');
  assert.deepEqual(first.body.jobResults.map((e: any) => e.jobId), [...ids].sort().slice(0, 100));

  let all: any[] = [];
  const commands = await monitored(c, async () => {
    all = (await pages(`/v1/clusters/${c}/job-results`, 'jobResults', PAGE)).entries;
  });
  assert.deepEqual(all.map((e) => e.jobId), [...ids].sort(), 'every entry once, by job id');
  assertBounded(commands);
  assert.ok(commands.some((a) => a[0].toLowerCase() === 'zrangebylex'), 'read by ZRANGE BYLEX');

  const dirtyListed = await pages(`/v1/clusters/${c}/job-results?state=dirty`, 'jobResults', 500);
  assert.deepEqual(dirtyListed.entries.map((e) => e.jobId), [...dirty].sort());
  const cleanListed = await pages(`/v1/clusters/${c}/job-results?state=clean`, 'jobResults', PAGE);
  assert.equal(cleanListed.entries.length, ids.length - dirty.size);
  assert.equal(await redis.exists(p + 'jobresults', p + 'jobresults:dirty'), 0, 'the old sets are gone, moved');

  // The SDK pages for its callers: all of them, up to a max, or as they iterate.
  const results = new LeaseholdClient({ url: srv.url }).cluster(c).jobResults();
  assert.deepEqual((await results.list('dirty')).map((e) => e.jobId), [...dirty].sort());
  await assert.rejects(results.list(undefined, { max: ids.length - 1 }), RangeError);
  let n = 0;
  for await (const e of results.each()) if (e.jobId && ++n === 1500) break;
  assert.equal(n, 1500, 'an iterator stops when the caller does, past a page');
});

test(`GET execution-plans pages through ${LIST_SIZE} job ids stored the old way; old plans still read, in ranges`, async () => {
  const c = uniqueCluster('pg');
  const p = `lh:{${c}}:`;
  const ids = jobIds(LIST_SIZE);
  for (let i = 0; i < ids.length; i += 1000) {
    const batch = ids.slice(i, i + 1000);
    const pipe = redis.pipeline().sadd(p + 'plans', ...batch);
    for (const id of batch) pipe.set(p + 'plan:' + id, `plan of ${id}`);
    await pipe.exec();
  }
  const legacy = randomBytes(3 * MIB + 17);
  await redis.set(p + 'plan:' + ids[0], legacy);

  let listed: string[] = [];
  let read = Buffer.alloc(0);
  const commands = await monitored(c, async () => {
    listed = (await pages(`/v1/clusters/${c}/execution-plans`, 'jobIds', PAGE)).entries;
    const res = await fetch(`${srv.url}/v1/clusters/${c}/execution-plans/${ids[0]}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(legacy.length));
    read = Buffer.from(await res.arrayBuffer());
  });
  assert.deepEqual(listed, [...ids].sort());
  assert.ok(read.equals(legacy), 'a plan stored as one string is read whole, in ranges');
  assertBounded(commands);
  assert.ok(commands.filter((a) => a[0].toLowerCase() === 'getrange').length >= 4, 'read a MiB at a time');
});

test(`GET blobs/{jobId} pages through ${LIST_SIZE} blobs, every command bounded`, async () => {
  const c = uniqueCluster('pg');
  const job = jobIds(1)[0];
  const key = `lh:{${c}}:blobs:${job}`;
  const names = Array.from({ length: LIST_SIZE }, (_, i) => `b-${i}`);
  const meta = JSON.stringify({ u: 'x', n: 0, h: '0'.repeat(64), t: 1700000000000 });
  for (let i = 0; i < names.length; i += 1000) await redis.hset(key, Object.fromEntries(names.slice(i, i + 1000).map((n) => [n, meta])));

  let listed: any[] = [];
  const commands = await monitored(c, async () => {
    listed = (await pages(`/v1/clusters/${c}/blobs/${job}`, 'blobs', 250)).entries;
  });
  // A scan may list a blob twice (if the hash is resized meanwhile; it is not here).
  assert.deepEqual([...new Set(listed.map((b) => b.blobKey))].sort(), [...names].sort(), 'every blob listed');
  assertBounded(commands);
  const sdk = await new LeaseholdClient({ url: srv.url }).cluster(c).blobs().list(job);
  assert.deepEqual(sdk.map((b) => b.blobKey), [...names].sort(), "the SDK's list: every blob once, by key");

  // A page that ends inside an HSCAN batch continues inside that same batch, even when the
  // next page asks for another limit: nothing is skipped.
  const small = `lh:{${c}}:blobs:_`;
  const few = Array.from({ length: 40 }, (_, i) => `s-${String(i).padStart(2, '0')}`);
  await redis.hset(small, Object.fromEntries(few.map((n) => [n, meta])));
  const firstPage = await getJson(`/v1/clusters/${c}/blobs/_?limit=3`);
  assert.equal(firstPage.body.blobs.length, 3);
  const rest = await pages(`/v1/clusters/${c}/blobs/_`, 'blobs', PAGE, firstPage.body.nextCursor);
  const seen = new Set([...firstPage.body.blobs, ...rest.entries].map((b: any) => b.blobKey));
  assert.deepEqual([...seen].sort(), few);
});

test(`GET checkpoints pages through ${LIST_SIZE} checkpoints, oldest first`, async () => {
  const c = uniqueCluster('pg');
  const job = jobIds(1)[0];
  const key = `lh:{${c}}:checkpoints:${job}`;
  for (let i = 0; i < LIST_SIZE; i += 1000) {
    const args: Array<string | number> = [];
    for (let id = i + 1; id <= Math.min(i + 1000, LIST_SIZE); id++) args.push(id, JSON.stringify({ checkpointId: id, timestamp: id, externalPointer: `p${id}` }));
    await redis.zadd(key, ...args);
  }
  let listed: any[] = [];
  const commands = await monitored(c, async () => {
    listed = (await pages(`/v1/clusters/${c}/jobs/${job}/checkpoints`, 'checkpoints', PAGE)).entries;
  });
  assert.deepEqual(listed.map((cp) => cp.checkpointId), Array.from({ length: LIST_SIZE }, (_, i) => i + 1));
  assertBounded(commands);
});

/** The dispatcher's fencing token of a fresh cluster. */
async function dispatcher(c: string): Promise<string> {
  const r = await post(srv.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd' });
  assert.equal(r.body.granted, true);
  return String(r.body.leader.fencingToken);
}

test('a large plan is stored in chunks and read a chunk at a time; written through the API, lists stay sorted', async () => {
  const c = uniqueCluster('pg');
  const token = await dispatcher(c);
  const headers = (key: string) => ({ 'x-fencing-token': token, 'idempotency-key': key, 'content-type': 'application/octet-stream' });
  const ids = jobIds(3);
  // Large enough for many chunks, small enough for a loaded test machine.
  const plan = randomBytes(6 * MIB + 5);
  const put = await fetch(`${srv.url}/v1/clusters/${c}/execution-plans/${ids[0]}`, { method: 'PUT', headers: headers('a'), body: plan as Uint8Array<ArrayBuffer> });
  assert.equal(put.status, 200, await put.text());
  for (const id of ids.slice(1)) {
    const r = await fetch(`${srv.url}/v1/clusters/${c}/execution-plans/${id}`, { method: 'PUT', headers: headers(id), body: Buffer.from('small') as Uint8Array<ArrayBuffer> });
    assert.equal(r.status, 200, await r.text());
  }
  const key = `lh:{${c}}:plan:${ids[0]}`;
  assert.equal(await redis.type(key), 'list');
  assert.equal(await redis.llen(key), 1 + 7, 'a header and 7 chunks of at most 1 MiB');

  let read = Buffer.alloc(0);
  const commands = await monitored(c, async () => {
    const res = await fetch(`${srv.url}/v1/clusters/${c}/execution-plans/${ids[0]}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(plan.length));
    read = Buffer.from(await res.arrayBuffer());
  });
  assert.ok(read.equals(plan), 'the bytes, whole and in order');
  assertBounded(commands);
  assert.equal(commands.filter((a) => a[0].toLowerCase() === 'lindex' && a[2] !== '0').length, 7, 'one LINDEX per chunk');

  const listed = await pages(`/v1/clusters/${c}/execution-plans`, 'jobIds', 2);
  assert.deepEqual(listed.entries, [...ids].sort());
  assert.equal(listed.count, 2);
});

test('a plan replaced while it is read is cut short, never a mix of two plans', async () => {
  const c = uniqueCluster('pg');
  const token = await dispatcher(c);
  const job = jobIds(1)[0];
  const put = (body: Buffer, key: string) =>
    fetch(`${srv.url}/v1/clusters/${c}/execution-plans/${job}`, {
      method: 'PUT',
      headers: { 'x-fencing-token': token, 'idempotency-key': key, 'content-type': 'application/octet-stream' },
      body: body as Uint8Array<ArrayBuffer>,
    });
  const first = Buffer.alloc(6 * MIB, 1);
  assert.equal((await put(first, 'one')).status, 200);
  const res = await fetch(`${srv.url}/v1/clusters/${c}/execution-plans/${job}`);
  const reader = res.body!.getReader();
  const got: Buffer[] = [Buffer.from((await reader.read()).value!)];
  assert.equal((await put(Buffer.alloc(6 * MIB, 2), 'two')).status, 200);
  let cut = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got.push(Buffer.from(value));
    }
  } catch {
    cut = true;
  }
  const bytes = Buffer.concat(got);
  assert.ok(!bytes.includes(2), 'no byte of the second plan');
  assert.ok(cut || bytes.equals(first), 'either the whole first plan (read ahead) or a cut stream');
});
