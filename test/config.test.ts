import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';

test('defaults: port 8080 on 127.0.0.1, a local Redis under ./data, leases of 10 s within 1 s – 5 min', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.redisUrl, undefined);
  assert.equal(c.dataDir, './data');
  assert.deepEqual(c.leaseTtl, { defaultMs: 10_000, minMs: 1_000, maxMs: 300_000 });
});

test('values come from the environment', () => {
  const c = loadConfig({ PORT: '9000', REDIS_URL: 'redis://10.0.0.1:6380', LEASE_TTL_DEFAULT_MS: '5000' });
  assert.equal(c.port, 9000);
  assert.equal(c.redisUrl, 'redis://10.0.0.1:6380');
  assert.equal(c.leaseTtl.defaultMs, 5000);
});

for (const [name, env, pattern] of [
  ['a port that is not a number', { PORT: 'eighty' }, /PORT/],
  ['a port out of range', { PORT: '70000' }, /PORT/],
  ['a Redis URL of another scheme', { REDIS_URL: 'http://localhost' }, /REDIS_URL/],
  ['an unknown log level', { LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
  ['a default TTL outside its limits', { LEASE_TTL_DEFAULT_MS: '500' }, /LEASE_TTL_MIN_MS <= LEASE_TTL_DEFAULT_MS/],
] as const) {
  test(`refuses ${name} with a message naming it`, () => {
    assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && pattern.test(err.message));
  });
}
