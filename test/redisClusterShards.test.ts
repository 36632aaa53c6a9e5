/**
 * What one shard of a Redis Cluster costs the clusters of the others (issue 21): nothing.
 * A failover's grace holds only the clusters whose hash tag the failed shard serves, and
 * `auto` replica acknowledgements follow the replicas of the shard that owns each write.
 * Real processes: three primaries, three replicas (test/support/redisCluster.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { get, post, sleep, startApp, waitFor, type Running } from './support/app.js';
import { stopAllRedis } from './support/redis.js';
import { clusterIdOn, RedisClusterProcess } from './support/redisCluster.js';

after(() => stopAllRedis());

let cluster: RedisClusterProcess;
before(async () => {
  cluster = await RedisClusterProcess.start();
});

const leader = (id: string, component: string) => `/v1/clusters/${id}/leaders/${component}`;

/** One cluster id on each shard, fresh for each test, in the order of the shards' first slot. */
async function spread(prefix: string): Promise<string[]> {
  const tag = `${prefix}-${randomBytes(3).toString('hex')}`;
  return Promise.all((await cluster.primaries()).map((p) => clusterIdOn(cluster, p, tag)));
}

async function server(t: Parameters<typeof startApp>[0], env: Record<string, string> = {}): Promise<Running> {
  const s = await startApp(t, undefined, { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_COMMAND_TIMEOUT_MS: '1000', ...env });
  await waitFor(async () => (await get(s.url, '/readyz')).body.redis === 'up', 15_000, 'every shard up');
  return s;
}

test('a failover of one shard: only its clusters are in grace, the other shards grant at once', async (t) => {
  // No replica acknowledges anything: every lease below may be lost in a failover.
  const s = await server(t, { REDIS_MIN_REPLICAS_ACK: '0' });
  const [onVictim, onOther] = await spread('grace');
  const TTL = 15_000;
  const sentAt = performance.now();
  const a = await post(s.url, `${leader(onVictim, 'rest')}/campaign`, { contenderId: 'A', ttlMs: TTL });
  assert.equal(a.body.granted, true, JSON.stringify(a.body));
  // A long lease on the other shard: a grace it got by mistake would still run below.
  const o = await post(s.url, `${leader(onOther, 'rest')}/campaign`, { contenderId: 'O', ttlMs: 60_000 });
  assert.equal(o.body.granted, true, JSON.stringify(o.body));

  const victim = await cluster.primaryOf(`{${onVictim}}`);
  const promoted = await cluster.killPrimary(victim);
  t.after(async () => {
    await victim.restart();
    await cluster.waitOk();
  });
  // This server saw the new primary, and its shard is up again.
  await waitFor(
    async () => (await get(s.url, '/readyz')).body.shards.some((sh: { primary: string; redis: string }) => sh.primary === `127.0.0.1:${promoted.port}` && sh.redis === 'up'),
    30_000,
    'the promoted replica seen',
  );

  // The other shard lost nothing: a new leader there is granted at once.
  const other = await post(s.url, `${leader(onOther, 'dispatcher')}/campaign`, { contenderId: 'P', ttlMs: 5000 });
  assert.equal(other.status, 200, `the other shard's cluster is held in grace: ${JSON.stringify(other.body)}`);
  assert.equal(other.body.granted, true);

  // The failed shard's cluster grants nothing while A's lease may still run.
  let refusedInGrace = 0;
  let granted: Awaited<ReturnType<typeof post>> | undefined;
  for (const deadline = performance.now() + 60_000; performance.now() < deadline; await sleep(200)) {
    const r = await post(s.url, `${leader(onVictim, 'dispatcher')}/campaign`, { contenderId: 'B', ttlMs: 5000 });
    if (r.status === 503 && r.body.error === 'GracePeriod') refusedInGrace++;
    if (r.status === 200 && r.body.granted) {
      granted = r;
      break;
    }
  }
  const grantedAt = performance.now();
  assert.ok(granted, 'the failed shard grants again once the grace ended');
  assert.ok(refusedInGrace > 0, 'the failed shard refused with GracePeriod meanwhile');
  assert.ok(grantedAt - sentAt >= TTL, `granted ${Math.round(grantedAt - sentAt)} ms after a lease of ${TTL} ms that may be lost`);
});

test('auto replica acks per shard: a shard without a replica waits for none, the others still for theirs', async (t) => {
  const s = await server(t);
  await waitFor(async () => (await get(s.url, '/readyz')).body.shards.every((sh: { replicas: number }) => sh.replicas === 1), 15_000, 'a replica on each shard');
  const [alone, other] = await spread('acks');
  const [aloneReplica] = await cluster.replicasOf(await cluster.primaryOf(`{${alone}}`));
  const [otherReplica] = await cluster.replicasOf(await cluster.primaryOf(`{${other}}`));
  await aloneReplica.kill();
  t.after(async () => {
    otherReplica.resume();
    await aloneReplica.restart();
    await cluster.waitOk();
  });
  const firstSlotOf = async (id: string) => {
    const p = await cluster.primaryOf(`{${id}}`);
    return (await cluster.topology()).find((n) => n.port === p.port)!.slots[0][0];
  };
  const aloneSlot = await firstSlotOf(alone);
  await waitFor(
    async () => (await get(s.url, '/readyz')).body.shards.find((sh: { firstSlot: number }) => sh.firstSlot === aloneSlot)?.replicas === 0,
    30_000,
    'the shard without its replica seen',
  );
  // The shard alone: auto asks for no replica, the write is acknowledged.
  const a = await post(s.url, `${leader(alone, 'rest')}/campaign`, { contenderId: 'A', ttlMs: 5000 });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.granted, true);
  // The other shard still has its replica: auto asks for it. Paused, it still counts as
  // connected, and never answers WAIT: the write is not acknowledged (a retryable 503).
  otherReplica.pause();
  const o = await post(s.url, `${leader(other, 'rest')}/campaign`, { contenderId: 'O', ttlMs: 5000 });
  assert.equal(o.status, 503, `a write the other shard's replica did not hold was acknowledged: ${JSON.stringify(o.body)}`);
});

/** A process that builds an app on the cluster, waits until it is ready (then `onReady`),
 * closes it 3 s later, and should then exit by itself: the milliseconds from its close to
 * its exit, or null if it was still running `graceMs` after the close (then it is killed). */
async function exitAfterClose(seeds: string, graceMs: number, onReady: () => void): Promise<{ exitMs: number | null; output: string }> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const code = `
    const { buildApp } = await import(${JSON.stringify(`${root}src/app.ts`)});
    const { testConfig } = await import(${JSON.stringify(`${root}test/support/app.ts`)});
    const app = await buildApp({ config: testConfig({ REDIS_CLUSTER_NODES: ${JSON.stringify(seeds)}, REDIS_MIN_REPLICAS_ACK: '0' }), logger: false });
    for (let i = 0; ; i++) {
      const r = await app.inject('/readyz');
      if (r.statusCode === 200 && r.json().redis === 'up') break;
      if (i > 600) throw new Error('never ready');
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log('ready');
    await new Promise((r) => setTimeout(r, 3000));
    await app.close();
    console.log('closed');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let closedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    const ready = !output.includes('ready');
    output += d;
    if (ready && output.includes('ready')) onReady();
    if (!closedAt && output.includes('closed')) closedAt = performance.now();
  });
  child.stderr.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<number>((resolve) => child.on('exit', () => resolve(performance.now())));
  await Promise.race([exited, waitFor(() => closedAt > 0, 60_000, 'the app closed').catch(() => {})]);
  const exitedAt = await Promise.race([exited, sleep(graceMs).then(() => null)]);
  if (exitedAt === null) {
    child.kill('SIGKILL');
    await exited;
    return { exitMs: null, output };
  }
  assert.ok(closedAt > 0, `the child exited before it closed its app: ${output}`);
  return { exitMs: Math.round(exitedAt - closedAt), output };
}

test('a process that closed its app on a cluster exits by itself, even with slot refreshes in flight', async () => {
  // A primary that does not answer makes a refresh of the slots that asks it first slow
  // (ioredis waits a second for its CLUSTER SLOTS): the app's close then often finds one in
  // flight, which ioredis 6 follows with a new refresh timer, for ever.
  const [paused] = await cluster.primaries();
  try {
    for (let i = 0; i < 4; i++) {
      const { exitMs, output } = await exitAfterClose(cluster.seeds, 10_000, () => paused.pause());
      paused.resume();
      assert.ok(exitMs !== null, `run ${i}: still running 10 s after its app closed (something keeps its event loop alive): ${output}`);
    }
  } finally {
    paused.resume();
    await cluster.waitOk();
  }
});
