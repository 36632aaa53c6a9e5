import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { connectionCap, fileLimit } from '../src/http/connections.js';

test('defaults: port 8080 on 127.0.0.1, a local Redis under ./data, leases of 10 s within 1 s – 5 min', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.redis, null);
  assert.equal(c.tls, null);
  assert.equal(c.tokens.length, 0);
  assert.equal(c.dataDir, './data');
  assert.deepEqual(c.leaseTtl, { defaultMs: 10_000, minMs: 1_000, maxMs: 300_000 });
});

test('values come from the environment', () => {
  const c = loadConfig({ PORT: '9000', REDIS_URL: 'redis://leasehold:p%40ss@10.0.0.1:6380/2', LEASE_TTL_DEFAULT_MS: '5000' });
  assert.equal(c.port, 9000);
  assert.deepEqual(
    { ...c.redis },
    { host: '10.0.0.1', port: 6380, username: 'leasehold', password: 'p@ss', db: 2, tls: undefined },
  );
  assert.equal(c.leaseTtl.defaultMs, 5000);
});

test('Sentinel: the master by name through the listed sentinels, with credentials and TLS from the URL', () => {
  const c = loadConfig({
    REDIS_URL: 'rediss://:secret@ignored:1/0',
    REDIS_SENTINELS: 's1.example:26379,10.0.0.2:26380',
    REDIS_SENTINEL_NAME: 'leasehold',
    REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
  });
  assert.deepEqual(c.redis?.sentinels, [{ host: 's1.example', port: 26379 }, { host: '10.0.0.2', port: 26380 }]);
  assert.equal(c.redis?.name, 'leasehold');
  assert.equal(c.redis?.password, 'secret');
  assert.equal(c.redis?.sentinelPassword, 'sentinel-secret');
  assert.equal(c.redis?.enableTLSForSentinelMode, true);
  assert.equal(c.redis?.host, undefined);
});

test('Redis Cluster: the listed nodes, with credentials and TLS from the URL', () => {
  const c = loadConfig({ REDIS_URL: 'rediss://leasehold:secret@ignored:1', REDIS_CLUSTER_NODES: 'r1.example:7000,10.0.0.2:7001,[::1]:7002' });
  assert.deepEqual(c.redis?.clusterNodes, [
    { host: 'r1.example', port: 7000 },
    { host: '10.0.0.2', port: 7001 },
    { host: '::1', port: 7002 },
  ]);
  assert.equal(c.redis?.username, 'leasehold');
  assert.equal(c.redis?.password, 'secret');
  assert.deepEqual(c.redis?.tls, {});
  assert.equal(c.redis?.host, undefined);
  assert.equal(loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000' }).redis?.clusterNodes?.length, 1);
});

for (const [name, env, pattern] of [
  ['a port that is not a number', { PORT: 'eighty' }, /PORT/],
  ['a port out of range', { PORT: '70000' }, /PORT/],
  ['a Redis URL of another scheme', { REDIS_URL: 'http://localhost' }, /REDIS_URL/],
  ['an unknown log level', { LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
  ['a certificate without its key', { TLS_CERT_FILE: '/etc/hostname' }, /TLS_KEY_FILE is needed too/],
  ['a CA file that cannot be read', { REDIS_URL: 'rediss://r:6379', REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }, /REDIS_TLS_CA_FILE cannot be read/],
  ['a malformed Sentinel list', { REDIS_SENTINELS: 'a:1,b' }, /REDIS_SENTINELS/],
  ['a malformed Redis Cluster node list', { REDIS_CLUSTER_NODES: 'a:1,b' }, /REDIS_CLUSTER_NODES/],
  ['Redis Cluster nodes with Sentinels', { REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 's:26379' }, /exclude each other/],
  ['a Redis Cluster with a database', { REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://x/3' }, /only database 0/],
  ['a shedding threshold above 1', { SHED_EVENT_LOOP_UTILIZATION: '1.5' }, /SHED_EVENT_LOOP_UTILIZATION/],
  ['a default TTL outside its limits', { LEASE_TTL_DEFAULT_MS: '500' }, /LEASE_TTL_MIN_MS <= LEASE_TTL_DEFAULT_MS/],
] as const) {
  test(`refuses ${name} with a message naming it`, () => {
    assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && pattern.test(err.message));
  });
}

test('connections: a cap below the file limit, lowered by MAX_CONNECTIONS; timeouts with headers within the request', () => {
  const c = loadConfig({});
  assert.deepEqual(c.connections, { maxConnections: 0, headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, keepAliveTimeoutMs: 10_000, bodyIdleTimeoutMs: 5_000 });
  assert.equal(loadConfig({ MAX_CONNECTIONS: '100' }).connections.maxConnections, 100);
  assert.throws(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' }), (err) => err instanceof ConfigError && /HTTP_HEADERS_TIMEOUT_MS <= HTTP_REQUEST_TIMEOUT_MS/.test(err.message));
  // The reserve: a tenth of the limit, at least 64.
  assert.equal(connectionCap(0, 256), 192);
  assert.equal(connectionCap(0, 65_536), 58_982);
  assert.equal(connectionCap(100, 256), 100, 'MAX_CONNECTIONS lowers it');
  assert.equal(connectionCap(1000, 256), 192, 'but never raises it');
  assert.equal(connectionCap(0, null), 0, 'no limit known, none set: no cap');
  const files = fileLimit();
  assert.ok(files === null || files > 0);
});

test('WS_ALLOWED_ORIGINS: a comma list, * allowed', () => {
  assert.deepEqual(loadConfig({ WS_ALLOWED_ORIGINS: 'https://a.example, https://b.example' }).wsAllowedOrigins, ['https://a.example', 'https://b.example']);
  assert.deepEqual(loadConfig({ WS_ALLOWED_ORIGINS: '*' }).wsAllowedOrigins, ['*']);
  assert.deepEqual(loadConfig({}).wsAllowedOrigins, []);
});
