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
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FILES = ['docker-compose.yml', 'docker-compose.ha.yml'];

test('every compose file is valid by the Compose Specification, as Docker Compose loads it', { timeout: 300_000 }, () => {
  const out = execFileSync('go', ['-C', 'tools/composecheck', 'run', '.', ...FILES.map((f) => `../../${f}`)], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const f of FILES) assert.match(out, new RegExp(`${f.replace('.', '\\.')}: valid`));
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
