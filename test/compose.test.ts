/**
 * The compose files, which no Docker engine here can run: each is loaded as Docker Compose
 * loads it (compose-go with the Compose Specification's schema, tools/composecheck), and the
 * replicated one describes the topology the tests run as processes (test/support/topology.ts
 * in test/redisRollback.test.ts and test/redisReplication.test.ts): a primary, a replica,
 * three Sentinels with a quorum of two, and leasehold finding the primary through them; the
 * Redis Cluster one (issue 21) is run as processes here, its leasehold started with the
 * file's own environment on a cluster of the harness (test/support/redisCluster.ts).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { get, post, ServerProcess } from './support/app.js';
import { stopAllRedis } from './support/redis.js';
import { clusterIdOn, RedisClusterProcess } from './support/redisCluster.js';

after(() => stopAllRedis());

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FILES = ['docker-compose.yml', 'docker-compose.ha.yml', 'docker-compose.cluster.yml'];

/** composecheck's report of the files, with the settings compose would read from env. */
function composeCheck(env: Record<string, string> = {}): string {
  const { LEASEHOLD_BIND: _b, LEASEHOLD_PORT: _p, ADMIN_TOKENS: _a, AUTH_TOKENS: _t, ...inherited } = process.env;
  return execFileSync('go', ['-C', 'tools/composecheck', 'run', '.', ...FILES.map((f) => `../../${f}`)], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

test('every compose file is valid by the Compose Specification, as Docker Compose loads it', { timeout: 300_000 }, () => {
  const out = composeCheck();
  for (const f of FILES) assert.match(out, new RegExp(`${f.replace('.', '\\.')}: valid`));
});

test('the compose files publish leasehold on 127.0.0.1 only, unless told otherwise, and pass the access tokens on', { timeout: 300_000 }, () => {
  const published = (out: string) => out.split('\n').filter((l) => l.includes(' publishes '));
  const byDefault = published(composeCheck());
  assert.equal(byDefault.length, FILES.length, byDefault.join('\n'));
  for (const line of byDefault) assert.match(line, /: leasehold publishes 127\.0\.0\.1:8080->8080\/tcp$/);
  for (const line of published(composeCheck({ LEASEHOLD_BIND: '0.0.0.0', LEASEHOLD_PORT: '9090' }))) assert.match(line, /publishes 0\.0\.0\.0:9090->8080\/tcp$/);
  for (const f of FILES) {
    const env = parse(readFileSync(`${ROOT}${f}`, 'utf8'), { merge: true }).services.leasehold.environment as Record<string, string>;
    assert.equal(env.ADMIN_TOKENS, '${ADMIN_TOKENS:-}', f);
    assert.equal(env.AUTH_TOKENS, '${AUTH_TOKENS:-}', f);
  }
});

test('the Kubernetes manifests decode strictly into the Kubernetes API types, with probes, a Service and a Secret for the tokens', { timeout: 300_000 }, () => {
  const manifest = 'deploy/kubernetes/leasehold.yaml';
  const k8scheck = (file: string) => execFileSync('go', ['-C', 'tools/k8scheck', 'run', '.', file], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(k8scheck(`${ROOT}${manifest}`), /: valid, \[Secret Deployment Service\]/);
  const docs = readFileSync(`${ROOT}${manifest}`, 'utf8').split(/^---$/m).map((d) => parse(d));
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const container = deployment.spec.template.spec.containers[0];
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  const fromSecret = container.env.filter((e: { valueFrom?: { secretKeyRef?: unknown } }) => e.valueFrom?.secretKeyRef).map((e: { name: string }) => e.name);
  assert.ok(fromSecret.includes('ADMIN_TOKENS'), 'the tokens come from the Secret');
  assert.ok(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000 > 10_000, 'longer than SHUTDOWN_GRACE_MS');

  // The checker does refuse what Kubernetes would: a misspelt field, a port nobody declares.
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-k8s-'));
  try {
    const text = readFileSync(`${ROOT}${manifest}`, 'utf8');
    for (const [bad, why] of [
      [text.replace('readinessProbe:', 'readynessProbe:'), /unknown field "readynessProbe"/],
      [text.replace('targetPort: http', 'targetPort: web'), /target port web is not one deployment leasehold declares/],
    ] as const) {
      writeFileSync(join(dir, 'bad.yaml'), bad);
      assert.throws(() => k8scheck(join(dir, 'bad.yaml')), (err: { stderr: string }) => why.test(err.stderr));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docker-compose.ha.yml: a primary, a replica of it, three Sentinels with a quorum of two, leasehold through them', () => {
  const doc = parse(readFileSync(`${ROOT}docker-compose.ha.yml`, 'utf8'), { merge: true });
  const services = doc.services as Record<string, { command: string[]; environment?: Record<string, string> }>;
  const redis = Object.keys(services).filter((s) => s.startsWith('redis-'));
  const sentinels = Object.keys(services).filter((s) => s.startsWith('sentinel-'));
  assert.deepEqual(redis, ['redis-1', 'redis-2']);
  assert.equal(sentinels.length, 3);

  for (const r of redis) {
    const args = services[r].command.join(' ');
    assert.match(args, /--appendonly yes/, `${r} keeps an AOF`);
    assert.match(args, /--maxmemory-policy noeviction/, `${r} never evicts`);
  }
  assert.match(services['redis-2'].command.join(' '), /--replicaof redis-1 6379/);
  assert.doesNotMatch(services['redis-1'].command.join(' '), /--replicaof/);

  for (const s of sentinels) {
    const script = services[s].command.join('\n');
    assert.match(script, /sentinel monitor leasehold redis-1 6379 2\n/, `${s} watches the primary with a quorum of 2`);
    assert.match(script, /--sentinel/);
  }
  const env = services.leasehold.environment!;
  assert.deepEqual(env.REDIS_SENTINELS.split(',').sort(), sentinels.map((s) => `${s}:26379`).sort());
  assert.equal(env.REDIS_SENTINEL_NAME, 'leasehold');
  assert.equal(env.REDIS_URL, undefined, 'the primary is found through the Sentinels, not named');
  assert.notEqual(env.REDIS_MIN_REPLICAS_ACK, '0', 'writes wait for the replica');
});

type Services = Record<string, { command: string[]; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }> }>;
const clusterServices = () => parse(readFileSync(`${ROOT}docker-compose.cluster.yml`, 'utf8'), { merge: true }).services as Services;

test('docker-compose.cluster.yml: six cluster nodes with AOF, a one-shot idempotent create of three primaries and three replicas, leasehold on them', () => {
  const services = clusterServices();
  const nodes = Object.keys(services).filter((s) => /^redis-\d$/.test(s));
  assert.deepEqual(nodes, ['redis-1', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6']);
  for (const n of nodes) {
    const args = services[n].command.join(' ');
    assert.match(args, /--cluster-enabled yes/, n);
    assert.match(args, /--cluster-require-full-coverage no/, `${n}: one shard down leaves the others serving`);
    assert.match(args, /--appendonly yes/, `${n} keeps an AOF`);
    assert.match(args, /--maxmemory-policy noeviction/, `${n} never evicts`);
    assert.match(args, new RegExp(`--cluster-announce-hostname ${n}$`), `${n} is announced by its name`);
  }
  const init = services['redis-cluster-init'];
  const script = init.command.join('\n');
  assert.match(script, /redis-cli --cluster create \$\$addrs --cluster-replicas 1 --cluster-yes/);
  assert.match(script, /cluster_known_nodes.*-gt 1.*\n.*exit 0/, 'a cluster already created is left alone');
  for (const n of nodes) assert.equal(init.depends_on?.[n]?.condition, 'service_healthy', n);
  const leasehold = services.leasehold;
  assert.equal(leasehold.depends_on?.['redis-cluster-init']?.condition, 'service_completed_successfully');
  const env = leasehold.environment!;
  assert.deepEqual(env.REDIS_CLUSTER_NODES.split(','), nodes.map((n) => `${n}:6379`));
  assert.equal(env.REDIS_URL, undefined);
  assert.equal(env.REDIS_SENTINELS, undefined);
  assert.notEqual(env.REDIS_MIN_REPLICAS_ACK, '0', 'writes wait for the shard\'s replica');
});

test('docker-compose.cluster.yml as processes: leasehold with the file\'s environment serves clusters on all three shards', { timeout: 120_000 }, async (t) => {
  const cluster = await RedisClusterProcess.start({ aof: true });
  t.after(() => cluster.stop());
  // The file's environment, as compose interpolates it with nothing set, each node's name
  // swapped for the harness node in its place.
  const env = Object.fromEntries(
    Object.entries(clusterServices().leasehold.environment!).map(([k, v]) => [
      k,
      String(v)
        .replace(/\$\{[A-Z_]+:-\}/g, '')
        .replace(/redis-(\d):6379/g, (_, i: string) => `127.0.0.1:${cluster.nodes[Number(i) - 1].port}`),
    ]),
  );
  const dataDir = mkdtempSync(join(tmpdir(), 'leasehold-cluster-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const server = await ServerProcess.start(t, { ...env, REDIS_URL: '', DATA_DIR: dataDir });
  const ready = await get(server.url, '/readyz');
  assert.equal(ready.status, 200, JSON.stringify(ready.body));
  assert.equal(ready.body.shards.length, 3, JSON.stringify(ready.body));
  for (const primary of await cluster.primaries()) {
    const id = await clusterIdOn(cluster, primary, 'compose');
    const granted = await post(server.url, `/v1/clusters/${id}/leaders/dispatcher/campaign`, { contenderId: 'a', ttlMs: 10_000 });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.equal(granted.body.granted, true);
    // Acknowledged by the shard's replica (REDIS_MIN_REPLICAS_ACK from the file).
    const renewed = await post(server.url, `/v1/clusters/${id}/leaders/dispatcher/renew`, { contenderId: 'a', sessionId: granted.body.leader.sessionId });
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    assert.equal((await get(server.url, `/v1/clusters/${id}/leaders/dispatcher`)).body.leader.sessionId, granted.body.leader.sessionId);
  }
});
