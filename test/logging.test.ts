/** One structured log line per request, with its request id, and no secrets. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { buildApp } from '../src/app.js';
import { stopAllRedis } from './support/redis.js';
import { sharedRedisUrl, testConfig, uniqueCluster, waitFor } from './support/app.js';

after(() => stopAllRedis());

test('each request logs one JSON line with method, url, status, duration and request id; headers are not logged', async (t) => {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const app = await buildApp({ config: testConfig(), redis: await sharedRedisUrl(), logger: { level: 'info', stream } });
  t.after(() => app.close());
  await app.ready();
  await waitFor(async () => (await app.inject('/readyz')).statusCode === 200, 10_000);
  lines.length = 0;

  const res = await app.inject({
    method: 'GET',
    url: `/v1/clusters/${uniqueCluster()}/leaders`,
    headers: { 'x-request-id': 'trace-42', authorization: 'Bearer s3cret-token' },
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-request-id'], 'trace-42');
  const requestLines = lines.filter((l) => l.msg === 'request');
  assert.equal(requestLines.length, 1);
  const [line] = requestLines;
  assert.equal(line.reqId, 'trace-42');
  assert.equal(line.method, 'GET');
  assert.equal(line.statusCode, 200);
  assert.equal(typeof line.ms, 'number');
  assert.ok(!JSON.stringify(lines).includes('s3cret-token'));
});
