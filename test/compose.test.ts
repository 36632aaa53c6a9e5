/**
 * The compose files, which no Docker engine here can run: each is loaded as Docker Compose
 * loads it (compose-go with the Compose Specification's schema, tools/composecheck), and the
 * replicated one describes the topology the tests run as processes (test/support/topology.ts
 * in test/redisRollback.test.ts and test/redisReplication.test.ts): a primary, a replica,
 * three Sentinels with a quorum of two, and leasehold finding the primary through them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FILES = ['docker-compose.yml', 'docker-compose.ha.yml'];

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
