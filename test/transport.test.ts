/**
 * How the server is reached and how it reaches Redis: the HTTP server over TLS, Redis over
 * TLS with its CA, Redis found through Sentinel, and Redis as a least-privilege ACL user
 * (the one docs/operations.md documents), running a whole life cycle.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { buildApp } from '../src/app.js';
import { LeaseholdClient } from '../src/client/index.js';
import { appRedis, ownRedis, ownRedisUrl, randomJobId, testConfig, uniqueCluster, waitFor } from './support/app.js';
import { freePort, RedisProcess, stopAllRedis } from './support/redis.js';

const onCluster = process.env.LEASEHOLD_TEST_REDIS === 'cluster';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-tls-'));
after(async () => {
  await stopAllRedis();
  rmSync(dir, { recursive: true, force: true });
});

/** A CA, and a certificate it signed for 127.0.0.1 and localhost. */
function certificates(): { ca: string; cert: string; key: string } {
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=leasehold test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '1', '-extfile', f('san.ext'));
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}
const certs = certificates();

function httpsGet(url: string, ca?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: ca && readFileSync(ca) }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('with TLS_CERT_FILE and TLS_KEY_FILE the API is HTTPS only, with HSTS', async (t) => {
  const app = await buildApp({ ...(await appRedis(await ownRedisUrl(), { TLS_CERT_FILE: certs.cert, TLS_KEY_FILE: certs.key })), logger: false });
  t.after(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  await waitFor(async () => (await httpsGet(`https://127.0.0.1:${port}/readyz`, certs.ca)).status === 200, 10_000, 'ready');
  const res = await httpsGet(`https://127.0.0.1:${port}/v1/clusters/tls/leaders/dispatcher`, certs.ca);
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).leader, null);
  assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
  await assert.rejects(httpsGet(`https://127.0.0.1:${port}/healthz`), /self[- ]signed|unable to verify/i, 'an unknown CA is refused');
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'plain HTTP is not served');
});

// A Redis Cluster over TLS needs a TLS port per node, which the harness's nodes (all given
// the same arguments) do not have yet.
test('Redis over TLS (rediss:// with REDIS_TLS_CA_FILE): elections and stores work', { skip: onCluster ? 'no Redis Cluster over TLS in the test harness yet' : false }, async (t) => {
  const tlsPort = await freePort();
  await RedisProcess.start({
    args: ['--tls-port', String(tlsPort), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no'],
  });
  const config = testConfig({ REDIS_URL: `rediss://127.0.0.1:${tlsPort}`, REDIS_TLS_CA_FILE: certs.ca });
  const app = await buildApp({ config, logger: false });
  t.after(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 10_000, 'ready over TLS');
  const c = new LeaseholdClient({ url }).cluster(uniqueCluster('tls'));
  const won = await c.campaign('dispatcher', { contenderId: 'd' });
  assert.equal(won.granted, true);
  const entry = await c.jobResults(won.leader.fencingToken).createDirty(randomJobId(), { applicationStatus: 'SUCCEEDED' });
  assert.equal(entry.state, 'dirty');
});

test('Redis through Sentinel (REDIS_SENTINELS): the server finds the master by name', { skip: onCluster ? 'Sentinel watches one Redis, never a Redis Cluster' : false }, async (t) => {
  const master = await RedisProcess.start();
  const sentinelPort = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, `port ${sentinelPort}\nbind 127.0.0.1\nsentinel monitor leasehold 127.0.0.1 ${master.port} 1\n`);
  const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  t.after(() => sentinel.kill('SIGKILL'));
  const config = testConfig({ REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`, REDIS_SENTINEL_NAME: 'leasehold' });
  const app = await buildApp({ config, logger: false });
  t.after(() => app.close());
  await waitFor(async () => (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200, 15_000, 'ready through Sentinel');
  const cluster = uniqueCluster('sentinel');
  const won = await app.inject({ method: 'POST', url: `/v1/clusters/${cluster}/leaders/rest/campaign`, payload: { contenderId: 'r' } });
  assert.equal(won.json().granted, true);
  const direct = new Redis(master.url);
  t.after(() => direct.quit());
  assert.equal(await direct.hget(`lh:{${cluster}}:leader:rest`, 'cid'), 'r', 'the grant is in the master');
});

/** The least-privilege user of docs/operations.md: its own keys and channels, and only the commands
 * leasehold runs (in Lua scripts too, which Redis checks against the same ACL). */
const ACL = [
  'leasehold', 'on', '>acl-password-0123456789', 'resetkeys', '~lh:*', '~leasehold:*', 'resetchannels', '&lh:*', '-@all',
  '+ping', '+hello', '+auth', '+select', '+client|setname', '+info',
  '+evalsha', '+eval', '+wait', '+subscribe', '+unsubscribe', '+scan',
  '+get', '+set', '+exists', '+del', '+unlink', '+time', '+pexpire', '+pttl', '+persist', '+incr', '+publish',
  '+hget', '+hgetall', '+hmget', '+hset', '+hdel', '+hlen', '+hvals', '+hkeys', '+hexists', '+hincrby',
  '+sadd', '+srem', '+smembers', '+sscan', '+scard', '+sismember',
  '+zadd', '+zrange', '+zrangebyscore', '+zrem', '+zcount', '+zcard', '+zremrangebyrank', '+xadd', '+xrange',
  '+rpush', '+llen', '+lindex',
  // Paged lists and chunked plans (issue 16).
  '+zrangebylex', '+zscore', '+spop', '+hscan', '+rename', '+type', '+strlen', '+getrange', '+multi', '+exec',
  // The leadership history (lib/history.lua, history_read.lua).
  '+xrevrange', '+xlen', '+xtrim',
  // Sharded pub/sub of changes, on a Redis Cluster (lib/pubsub.lua).
  '+spublish', '+ssubscribe', '+sunsubscribe',
  // A Redis Cluster's slot map and state, which its client reads (REDIS_CLUSTER_NODES, issue 21).
  '+cluster|slots', '+cluster|info',
];

test('as the least-privilege ACL user of docs/operations.md, a whole life cycle runs and Redis denies nothing', async (t) => {
  // On a Redis Cluster, every node has its users: the user is made on each.
  const redis = await ownRedis();
  const admins = redis.nodes.map((n) => new Redis(n.url));
  t.after(() => Promise.all(admins.map((a) => a.quit())));
  for (const admin of admins) await admin.call('ACL', 'SETUSER', ...ACL);
  const url = `redis://leasehold:acl-password-0123456789@127.0.0.1:${redis.nodes[0].port}`;
  const app = await buildApp({ config: (await appRedis(redis.url, { REDIS_URL: url })).config, logger: false });
  t.after(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 10_000, 'ready as the ACL user');

  const c = new LeaseholdClient({ url: base }).cluster(uniqueCluster('acl'));
  const jobId = randomJobId();
  const watch = c.retrieval().start();
  t.after(() => watch.close());
  const d = c.election({ component: 'dispatcher', ttlMs: 2000, address: 'http://d' }).start();
  const jm = c.election({ component: `jobmanager/${jobId}`, ttlMs: 2000 }).start();
  t.after(() => Promise.all([d.resign(), jm.resign()]));
  await watch.waitForLeader('dispatcher');
  await waitFor(() => jm.isLeader() && d.isLeader(), 5000, 'both lead');
  await new Promise((r) => setTimeout(r, 1000)); // a renewal or two

  await c.jobResults(d).createDirty(jobId, { applicationStatus: 'SUCCEEDED' });
  await c.jobResults(d).markClean(jobId);
  await c.executionPlans(d).put(jobId, Buffer.from('plan'));
  await c.executionPlans(d).putResourceRequirements(jobId, { slots: 1 });
  const counter = c.checkpointIdCounter(jobId, jm);
  const id = await counter.getAndIncrement();
  await c.checkpoints(jobId, jm).add({ checkpointId: id, timestamp: 1, externalPointer: 's3://cp/1' });
  await c.blobs(d).put(jobId, 'lib.jar', Buffer.alloc(3 * 1024 * 1024, 7));
  const blob = await c.blobs(d).get(jobId, 'lib.jar');
  let size = 0;
  for await (const chunk of blob!) size += chunk.length;
  assert.equal(size, 3 * 1024 * 1024);
  assert.deepEqual(Object.values((await c.cleanupJob(jobId, d)).parts).filter((p) => p.startsWith('failed')), []);
  await d.resign();
  await jm.resign();
  assert.ok((await c.cleanupAllData()).deleted.keys > 0);

  for (const admin of admins) {
    const denied = (await admin.call('ACL', 'LOG')) as unknown[];
    assert.deepEqual(denied, [], 'Redis denied nothing');
  }
});
