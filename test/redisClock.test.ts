/**
 * Redis clock steps (docs/design.md §9): the health check compares Redis's `TIME` with this
 * server's monotonic clock. What counts as a step is decided on numbers (a clock stepped
 * under a real redis-server needs libfaketime, which crashes redis 7.0 here); against a
 * real Redis, a healthy one, a paused one and a blocked event loop are never a step.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clockStep, timeMs, CLOCK_STEP_TOLERANCE_MS, type ClockReading } from '../src/ha/redisClock.js';
import { stopAllRedis } from './support/redis.js';
import { get, ownRedis, sleep, startApp } from './support/app.js';

after(() => stopAllRedis());

const at = (redisMs: number, monoMs: number, rttMs = 1): ClockReading => ({ redisMs, monoMs, rttMs });

describe('what a step is', () => {
  test('clocks that move together, or drift apart by jitter or slew, make no step', () => {
    assert.equal(clockStep(at(1_000_000, 50), at(1_001_000, 1050)), null);
    // A health check late by seconds: both clocks moved alike.
    assert.equal(clockStep(at(1_000_000, 50), at(1_030_000, 30_050)), null);
    // Scheduling jitter and a round trip read at an unlucky moment.
    assert.equal(clockStep(at(1_000_000, 50), at(1_001_900, 1050)), null);
    assert.equal(clockStep(at(1_000_000, 50), at(1_000_100, 1050)), null);
    // A slewing clock: 500 ppm over an hour between readings is 1.8 s, but readings are
    // a health interval apart; over a minute it is 30 ms.
    assert.equal(clockStep(at(1_000_000, 0), at(1_060_030, 60_000)), null);
  });

  test('a jump of more than the tolerance is a step, forward or back, by its size', () => {
    assert.equal(clockStep(at(1_000_000, 50), at(1_006_000, 1050)), 5000);
    assert.equal(clockStep(at(1_000_000, 50), at(996_000, 1050)), -5000);
    assert.equal(clockStep(at(1_000_000, 0), at(1_000_000 + 1000 + CLOCK_STEP_TOLERANCE_MS + 2, 1000)), CLOCK_STEP_TOLERANCE_MS + 2);
  });

  test('a slow round trip widens what counts as jitter', () => {
    // 1.5 s apart, but one reading took 2 s to come back: not a step.
    assert.equal(clockStep(at(1_000_000, 0, 2000), at(1_002_500, 1000, 2)), null);
    assert.equal(clockStep(at(1_000_000, 0, 2), at(1_002_500, 1000, 2)), 1500);
  });

  test('TIME is read as ms', () => {
    assert.equal(timeMs(['1796387300', '193103']), 1_796_387_300_193.103);
  });
});

test('against a real Redis: no step across many checks, a pause of Redis or of the event loop', async (t) => {
  const redis = await ownRedis();
  // A check every 100 ms.
  const app = await startApp(t, redis.url, { REDIS_HEALTH_INTERVAL_MS: '100' });
  await sleep(2000);
  const steps = async () => (await get(app.url, '/readyz')).body.redisClockSteps;
  assert.deepEqual(await steps(), { count: 0, last: null });

  // The server's event loop blocked for 1.5 s (a long GC, an overloaded host).
  const end = Date.now() + 1500;
  while (Date.now() < end) {
    // blocked
  }
  await sleep(1000);
  // Redis paused for 1.5 s (on a Redis Cluster, every shard's node): the checks fail, then go on.
  for (const n of redis.nodes) n.pause();
  await sleep(1500);
  for (const n of redis.nodes) n.resume();
  await sleep(2000);
  assert.deepEqual(await steps(), { count: 0, last: null });
  const metrics = await (await fetch(`${app.url}/metrics`)).text();
  assert.match(metrics, /^leasehold_redis_clock_steps_total 0$/m);
});
