/**
 * Blobs (docs/design.md §8): a 1 GiB blob streams in and out while the server's resident memory
 * rises by less than 64 MiB. Both directions stream on this side too, and their throughput
 * stands beside redis-benchmark's RPUSH and LINDEX of 1 MiB on the same Redis.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get, request, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { post, randomJobId, sleep, uniqueCluster } from '../test/support/app.js';
import type { BenchEnv } from './env.js';
import { mib, type Row } from './stats.js';

const MiB = 1 << 20;
const GROWTH_BUDGET_MIB = 64;
const SAMPLE_MS = 25;

export async function blobBenches(env: BenchEnv): Promise<Row[]> {
  const bytes = (env.quick ? 256 : 1024) * MiB;
  const label = env.quick ? '256 MiB' : '1 GiB';
  // Before the blob, so that RPUSH, like the upload, makes Redis take memory it never had.
  const redis = await redisBaseline(env.redis.port, env.quick ? 64 : 128);
  // BLOB_MAX_BYTES defaults to 1 GiB and admits exactly that, so the default stands. The
  // read is not paced (HEAVY_READ_BYTES_PER_SEC), so that the memory is of a full-speed one.
  const server = await env.server({ HEAVY_READ_BYTES_PER_SEC: '0' });
  const pid = server.pid!;
  const c = uniqueCluster('bench-blob');
  // The longest lease allowed (LEASE_TTL_MAX_MS), far beyond the run: no renewals needed.
  const campaign = await post(server.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, {
    contenderId: 'dispatcher-1',
    ttlMs: 300_000,
  });
  if (!campaign.body.granted) throw new Error(`campaign: ${campaign.status} ${JSON.stringify(campaign.body)}`);
  const token = String(campaign.body.leader.fencingToken);
  const jobId = randomJobId();
  const blobUrl = (key: string) => `${server.url}/v1/clusters/${c}/blobs/${jobId}/${key}`;

  // Warm-up, so that code loaded on first use is not counted as growth.
  await roundTrip(blobUrl('warm-up'), token, 8 * MiB);
  await remove(blobUrl('warm-up'), token);

  const up = await measure(pid, () => upload(blobUrl('big'), token, bytes));
  await sleep(500); // let the upload's garbage settle before the download's "before"
  const down = await measure(pid, () => download(blobUrl('big')));
  check(down.result, bytes, up.result.sha256);
  await remove(blobUrl('big'), token);
  await env.stopServer(server);

  return [
    transferRow(`blob upload ${label}`, bytes, up, `${mibs(redis.rpush)} Redis RPUSH 1 MiB`, redis.rpush),
    transferRow(`blob download ${label}`, bytes, down, `${mibs(redis.lindex)} Redis LINDEX 1 MiB`, redis.lindex),
  ];
}

const mibs = (x: number) => `${Math.round(x).toLocaleString('en-US')} MiB/s`;

interface Measured<T> {
  result: T;
  seconds: number;
  /** Peak resident memory of the server during the transfer, above its level just before. */
  growth: number;
}

function transferRow(name: string, bytes: number, m: Measured<unknown>, baseline: string, baseMiBs: number): Row {
  const figure = bytes / MiB / m.seconds;
  return {
    name,
    figure: `${mibs(figure)}, RSS +${mib(m.growth)}`,
    baseline,
    ratio: figure / baseMiBs,
    budget: `RSS +< ${GROWTH_BUDGET_MIB} MiB`,
    pass: m.growth < GROWTH_BUDGET_MIB * MiB,
  };
}

function rss(pid: number): number {
  const kB = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kB === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kB) * 1024;
}

/** Runs `work`, sampling the server's RSS every SAMPLE_MS. */
async function measure<T>(pid: number, work: () => Promise<T>): Promise<Measured<T>> {
  const before = rss(pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rss(pid))), SAMPLE_MS);
  const t0 = performance.now();
  try {
    const result = await work();
    const seconds = (performance.now() - t0) / 1000;
    return { result, seconds, growth: Math.max(peak, rss(pid)) - before };
  } finally {
    clearInterval(timer);
  }
}

/** `bytes` in 1 MiB chunks, each a copy of one of a few random blocks stamped with its
 * index so that no two are alike: cheaper than fresh random bytes, on a machine whose two
 * cores also run the server and Redis. Hashed as they are made. */
function* pseudoRandom(bytes: number, hash: Hash): Generator<Buffer> {
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB));
  for (let i = 0, left = bytes; left > 0; i++, left -= MiB) {
    const chunk = Buffer.from(blocks[i % blocks.length].subarray(0, Math.min(MiB, left)));
    chunk.writeUInt32LE(i, 0);
    hash.update(chunk);
    yield chunk;
  }
}

/** Streams `bytes` up; answers the SHA-256 sent, once the server answered the same. The
 * server's answer is compared rather than sending X-Content-SHA256, which would need the
 * hash before the first byte. */
async function upload(url: string, token: string, bytes: number): Promise<{ sha256: string }> {
  const hash = createHash('sha256');
  const req = request(url, {
    method: 'PUT',
    agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': bytes, 'x-fencing-token': token },
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
  // A refusal may close the connection mid-body: the answer explains it better than EPIPE.
  const sent = pipeline(Readable.from(pseudoRandom(bytes, hash), { objectMode: false }), req).then(
    () => null,
    (err: Error) => err,
  );
  const res = await answered;
  const body = await text(res);
  if (res.statusCode !== 201) throw new Error(`PUT ${url}: ${res.statusCode} ${body}`);
  const sendError = await sent;
  if (sendError) throw sendError;
  const sha256 = hash.digest('hex');
  const answer = JSON.parse(body) as { size: number; sha256: string };
  if (answer.size !== bytes || answer.sha256 !== sha256) {
    throw new Error(`PUT ${url}: stored ${answer.size} bytes ${answer.sha256}, sent ${bytes} bytes ${sha256}`);
  }
  return { sha256 };
}

interface Downloaded {
  size: number;
  sha256: string;
  /** What the server's X-Content-SHA256 header said. */
  claimed: string | undefined;
}

/** Streams the blob down, hashing it on the way. */
async function download(url: string): Promise<Downloaded> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => get(url, { agent: false }, resolve).once('error', reject));
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${await text(res)}`);
  const hash = createHash('sha256');
  let size = 0;
  for await (const data of res as AsyncIterable<Buffer>) {
    hash.update(data);
    size += data.length;
  }
  return { size, sha256: hash.digest('hex'), claimed: res.headers['x-content-sha256'] as string | undefined };
}

function check(d: Downloaded, bytes: number, sha256: string): void {
  if (d.size !== bytes || d.sha256 !== sha256 || d.claimed !== sha256) {
    throw new Error(`downloaded ${d.size} bytes ${d.sha256} (header ${d.claimed}), uploaded ${bytes} bytes ${sha256}`);
  }
}

async function roundTrip(url: string, token: string, bytes: number): Promise<void> {
  const { sha256 } = await upload(url, token, bytes);
  check(await download(url), bytes, sha256);
}

async function remove(url: string, token: string): Promise<void> {
  const res = await fetch(url, { method: 'DELETE', headers: { 'x-fencing-token': token } });
  const body = await res.text();
  if (res.status !== 200 || !(JSON.parse(body) as { deleted: boolean }).deleted) throw new Error(`DELETE ${url}: ${res.status} ${body}`);
}

async function text(res: IncomingMessage): Promise<string> {
  let s = '';
  for await (const d of res) s += d;
  return s;
}

/** MiB/s of Redis doing what the server does per 1 MiB chunk, by redis-benchmark with one
 * client and no pipelining, as the server has one chunk in flight per transfer: RPUSH onto
 * a list (storing a chunk takes Redis new memory, unlike a SET that overwrites one key)
 * and LINDEX from it. */
async function redisBaseline(port: number, n: number): Promise<{ rpush: number; lindex: number }> {
  const run = promisify(execFile);
  const common = ['-h', '127.0.0.1', '-p', String(port), '-c', '1', '-n', String(n), '--csv'];
  // "test","rps",…  then  "<test>","123.45",…; each request carries or answers one MiB.
  const perSecond = async (args: string[]) => {
    const { stdout } = await run('redis-benchmark', [...common, ...args]);
    return Number(stdout.trim().split('\n').at(-1)!.split('","')[1]);
  };
  const rpush = await perSecond(['-d', String(MiB), '-t', 'rpush']); // onto "mylist"
  const lindex = await perSecond(['lindex', 'mylist', String(n >> 1)]);
  await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'del', 'mylist']);
  if (!(rpush > 0 && lindex > 0)) throw new Error(`unexpected redis-benchmark figures: RPUSH ${rpush}, LINDEX ${lindex}`);
  return { rpush, lindex };
}
