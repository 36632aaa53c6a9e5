/** One structured log line per request, with its request id, and no secrets. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { buildApp } from '../src/app.js';
import { stopAllRedis } from './support/redis.js';
import { readyEverywhere, appRedis, sharedRedisUrl, uniqueCluster, waitFor } from './support/app.js';

after(() => stopAllRedis());

test('each request logs one JSON line with method, url, status, duration and request id; headers are not logged', async (t) => {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const app = await buildApp({ ...(await appRedis(await sharedRedisUrl())), logger: { level: 'info', stream } });
  t.after(() => app.close());
  // Over the wire: the request id is set by the HTTP server, before Fastify.
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  await waitFor(() => readyEverywhere(app), 10_000);
  const made = await fetch(`${base}/healthz`);
  assert.match(made.headers.get('x-request-id') ?? '', /^req-[0-9a-z]+$/, 'a request without an id gets one');
  lines.length = 0;

  const res = await fetch(`${base}/v1/clusters/${uniqueCluster()}/leaders`, {
    headers: { 'x-request-id': 'trace-42', authorization: 'Bearer s3cret-token' },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-request-id'), 'trace-42');
  const requestLines = lines.filter((l) => l.msg === 'request');
  assert.equal(requestLines.length, 1);
  const [line] = requestLines;
  assert.equal(line.reqId, 'trace-42');
  assert.equal(line.method, 'GET');
  assert.equal(line.statusCode, 200);
  assert.equal(typeof line.ms, 'number');
  assert.ok(!JSON.stringify(lines).includes('s3cret-token'));

  // Query strings are not logged: a browser's websocket may carry its token in one.
  lines.length = 0;
  const c = uniqueCluster();
  await (await fetch(`${base}/v1/clusters/${c}/watch?token=s3cret-query&since=1`)).arrayBuffer();
  await (await fetch(`${base}/v1/clusters/${c}/leaders?s3cret-flag`)).arrayBuffer();
  const urls = lines.filter((l) => l.msg === 'request').map((l) => l.url);
  assert.deepEqual(urls, [`/v1/clusters/${c}/watch?token=[REDACTED]&since=[REDACTED]`, `/v1/clusters/${c}/leaders?[REDACTED]`]);
  assert.ok(!JSON.stringify(lines).includes('s3cret'));
});
