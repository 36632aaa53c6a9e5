/**
 * Protection (docs/design.md §7, issue 5): security headers on every answer, rate limits per
 * client, and load shedding that sheds reads and store writes but never an election.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import autocannon from 'autocannon';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { post, randomJobId, ServerProcess, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor } from './support/app.js';
import { stopAllRedis } from './support/redis.js';

after(() => stopAllRedis());

test('every answer, error or not, carries the security headers and a request id', async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const etag = (await fetch(`${app.url}/v1/clusters/h/leaders`)).headers.get('etag')!;
  // A blob's download is streamed: Fastify sets its headers one by one, not in one object.
  const blob = `/v1/clusters/${uniqueCluster('h')}/blobs/_/b`;
  const put = await fetch(app.url + blob, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': 'override' },
    body: 'bytes',
  });
  assert.equal(put.status, 201);
  const answers: Array<{ path: string; headers?: Record<string, string> }> = [
    ...['/v1/clusters/h/leaders', '/v1/clusters/h/leaders/nope', '/no/such/route', '/healthz', blob].map((path) => ({ path })),
    { path: '/v1/clusters/h/leaders', headers: { 'if-none-match': etag } },
  ];
  for (const { path, headers } of answers) {
    const res = await fetch(app.url + path, { headers });
    await res.arrayBuffer();
    if (headers) assert.equal(res.status, 304);
    assert.match(res.headers.get('x-request-id') ?? '', /^req-/, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('x-frame-options'), null, 'frame-ancestors supersedes X-Frame-Options');
    assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'", path);
    assert.equal(res.headers.get('cache-control'), 'no-store', path);
    assert.equal(res.headers.get('strict-transport-security'), null, 'no HSTS over plain HTTP');
  }
});

test('rate limits: 429 with Retry-After past the limit, per client; elections and probes are never limited', async (t) => {
  const tokens = JSON.stringify([
    { name: 'a', token: 'token-a-0123456789abcdef', role: 'admin' },
    { name: 'b', token: 'token-b-0123456789abcdef', role: 'admin' },
  ]);
  const app = await startApp(t, await sharedRedisUrl(), { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000', AUTH_TOKENS: tokens });
  const c = uniqueCluster('rl');
  const as = (who: 'a' | 'b') => ({ authorization: `Bearer token-${who}-0123456789abcdef` });
  const read = () => fetch(`${app.url}/v1/clusters/${c}/leaders`, { headers: as('a') });
  for (let i = 0; i < 5; i++) assert.equal((await read()).status, 200);
  const limited = await read();
  assert.equal(limited.status, 429);
  assert.equal((await limited.json()).error, 'TooManyRequests');
  assert.ok(Number(limited.headers.get('retry-after')) > 0);
  const write = await fetch(`${app.url}/v1/clusters/${c}/job-results/${randomJobId()}`, {
    method: 'PUT',
    headers: { ...as('a'), 'content-type': 'application/json', 'x-fencing-token': 'override' },
    body: '{"applicationStatus":"SUCCEEDED"}',
  });
  assert.equal(write.status, 429, 'store writes count too');
  // Another client has a budget of its own.
  assert.equal((await fetch(`${app.url}/v1/clusters/${c}/leaders`, { headers: as('b') })).status, 200);
  // Elections and probes are never limited.
  const body = { contenderId: 'd', ttlMs: 60_000 };
  const campaign = await fetch(`${app.url}/v1/clusters/${c}/leaders/dispatcher/campaign`, {
    method: 'POST',
    headers: { ...as('a'), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const sessionId = (await campaign.json()).leader.sessionId;
  for (let i = 0; i < 20; i++) {
    const renew = await fetch(`${app.url}/v1/clusters/${c}/leaders/dispatcher/renew`, {
      method: 'POST',
      headers: { ...as('a'), 'content-type': 'application/json' },
      body: JSON.stringify({ contenderId: 'd', sessionId }),
    });
    assert.equal(renew.status, 200);
    assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
  }
});

test('rate limits are per token, whatever the spelling of its header, and per address when open', async (t) => {
  const tokens = JSON.stringify([{ name: 'a', token: 'token-a-0123456789abcdef', role: 'admin' }]);
  const closed = await startApp(t, await sharedRedisUrl(), { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000', AUTH_TOKENS: tokens });
  const open = await startApp(t, await sharedRedisUrl(), { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' });
  const path = `/v1/clusters/${uniqueCluster('rl')}/leaders`;
  // The 64 spellings of "Bearer": one token, one budget.
  const spellings = Array.from({ length: 64 }, (_, i) => [...'bearer'].map((ch, j) => ((i >> j) & 1 ? ch.toUpperCase() : ch)).join(''));
  const closedCodes: number[] = [];
  for (const b of spellings) closedCodes.push((await fetch(closed.url + path, { headers: { authorization: `${b} token-a-0123456789abcdef` } })).status);
  assert.deepEqual([closedCodes.filter((s) => s === 200).length, closedCodes.filter((s) => s === 429).length], [5, 59]);
  // Open: any header is no identity; the address is.
  const openCodes: number[] = [];
  for (let i = 0; i < 20; i++) openCodes.push((await fetch(open.url + path, { headers: { authorization: `Bearer random-${i}` } })).status);
  assert.deepEqual([openCodes.filter((s) => s === 200).length, openCodes.filter((s) => s === 429).length], [5, 15]);
});

test('shedding: while the event loop is saturated, reads get 503 Overloaded and renewals still succeed', async (t) => {
  // The loop is blocked for 1.5 s below: a Redis ping timing out meanwhile would mark Redis
  // down, and the renewal would be refused for that rather than pass.
  const { app, wsUrl } = await startApp(t, await sharedRedisUrl(), { SHED_EVENT_LOOP_UTILIZATION: '0.5', REDIS_COMMAND_TIMEOUT_MS: '5000', REDIS_HEALTH_INTERVAL_MS: '5000' });
  const c = uniqueCluster('shed');
  const won = await app.inject({ method: 'POST', url: `/v1/clusters/${c}/leaders/dispatcher/campaign`, payload: { contenderId: 'd', ttlMs: 60_000 } });
  const sessionId = won.json().leader.sessionId;
  await sleep(1500); // a quiet sample first

  const busyUntil = Date.now() + 1500;
  while (Date.now() < busyUntil); // a saturated event loop
  await sleep(50); // the overdue sample runs

  const read = await app.inject({ method: 'GET', url: `/v1/clusters/${c}/leaders/dispatcher` });
  assert.equal(read.statusCode, 503);
  assert.equal(read.json().error, 'Overloaded');
  assert.ok(read.headers['retry-after']);
  const storeRead = await app.inject({ method: 'GET', url: `/v1/clusters/${c}/job-results?state=dirty` });
  assert.deepEqual([storeRead.statusCode, storeRead.json().error], [503, 'Overloaded'], 'a store route');
  assert.equal(await upgradeStatus(`${wsUrl}/v1/clusters/${c}/watch`), 503, 'a websocket, before it upgrades');
  const renew = await app.inject({ method: 'POST', url: `/v1/clusters/${c}/leaders/dispatcher/renew`, payload: { contenderId: 'd', sessionId } });
  assert.equal(renew.statusCode, 200, 'the renewal is not shed');
  assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'nor the probe');

  await sleep(2500); // quiet again: reads are served
  assert.equal((await app.inject({ method: 'GET', url: `/v1/clusters/${c}/leaders/dispatcher` })).statusCode, 200);
});

test('shedding under a real flood of reads: some reads are shed, every renewal succeeds', async (t) => {
  const server = await ServerProcess.start(t, { REDIS_URL: await sharedRedisUrl(), SHED_EVENT_LOOP_UTILIZATION: '0.5' });
  const c = uniqueCluster('flood');
  const won = await post(server.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd', ttlMs: 5000 });
  const sessionId = won.body.leader.sessionId;

  let renewals = 0;
  const failures: number[] = [];
  let flooding = true;
  const renewing = (async () => {
    while (flooding) {
      const res = await post(server.url, `/v1/clusters/${c}/leaders/dispatcher/renew`, { contenderId: 'd', sessionId });
      if (res.status === 200) renewals++;
      else failures.push(res.status);
      await sleep(100);
    }
  })();
  const flood = await autocannon({ url: `${server.url}/v1/clusters/${c}/leaders/dispatcher`, connections: 64, duration: 5 });
  flooding = false;
  await renewing;

  const codes = flood.statusCodeStats as unknown as Record<string, { count: number }>;
  assert.ok((codes['503']?.count ?? 0) > 0, `reads were shed (${JSON.stringify(codes)})`);
  assert.deepEqual(failures, [], 'no renewal failed');
  assert.ok(renewals >= 10, `renewals went on (${renewals})`);
});

/** The status a websocket upgrade is answered with: 101, or the error's. */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      resolve(res.statusCode!);
    });
    ws.on('error', reject);
  });
}

/** Raw TCP connections to a server: opened, written to, and told when the server cut them. */
class RawConnection {
  readonly socket: Socket;
  closed = false;
  answer = '';
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d) => (this.answer += d));
    this.socket.on('error', () => {});
    this.socket.on('close', () => (this.closed = true));
  }
  /** Writes `bytes` unless the server cut the connection. */
  write(bytes: string): void {
    if (!this.closed) this.socket.write(bytes);
  }
}

test('connections: more idle connections than the file limit allows are refused or cut; the server survives and serves again', async (t) => {
  // 256 files: a cap of 192 connections. Without one, the 400 connections below exhaust the
  // files and the next file the process opens (the load sampler's, each second) fails.
  const server = await ServerProcess.start(t, { REDIS_URL: await sharedRedisUrl(), HTTP_HEADERS_TIMEOUT_MS: '60000' }, undefined, 256);
  const port = Number(new URL(server.url).port);
  const conns = Array.from({ length: 400 }, () => new RawConnection(port));
  await waitFor(() => conns.filter((c) => c.closed).length >= 400 - 192, 10_000, 'the excess connections cut');
  await sleep(2500); // the load sampler runs meanwhile, twice
  assert.ok(server.running, `the server is alive:\n${server.output}`);
  assert.ok(conns.filter((c) => !c.closed).length <= 192, 'no more connections than the cap are kept');
  for (const c of conns) c.socket.destroy();
  await waitFor(async () => (await fetch(`${server.url}/readyz`).then((r) => r.status, () => 0)) === 200, 10_000, 'served again');
});

test('connections: idle connections, slow headers and a body trickled byte by byte are cut by their timeouts', async (t) => {
  const server = await ServerProcess.start(t, {
    REDIS_URL: await sharedRedisUrl(),
    HTTP_HEADERS_TIMEOUT_MS: '1500',
    HTTP_BODY_IDLE_TIMEOUT_MS: '1000',
    HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000',
  });
  const port = Number(new URL(server.url).port);
  const started = Date.now();
  const idle = new RawConnection(port);
  const slowHeaders = new RawConnection(port);
  slowHeaders.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const slowBody = new RawConnection(port);
  const path = `/v1/clusters/${uniqueCluster('slow')}/job-results/${randomJobId()}`;
  slowBody.write(`PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Fencing-Token: override\r\nContent-Length: 100\r\n\r\n{`);
  const keptAlive = new RawConnection(port);
  keptAlive.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  const trickle = setInterval(() => {
    slowHeaders.write('X-Slow: 1\r\n');
    slowBody.write(' ');
  }, 1500);
  t.after(() => clearInterval(trickle));
  await waitFor(() => [idle, slowHeaders, slowBody, keptAlive].every((c) => c.closed), 8000, 'every connection cut');
  assert.ok(Date.now() - started < 8000);
  assert.match(keptAlive.answer, /^HTTP\/1.1 200/, 'the kept-alive connection was answered first');
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
});

test('connections: an early 401 to a request with a large body closes the connection', async (t) => {
  const tokens = JSON.stringify([{ name: 'a', token: 'token-a-0123456789abcdef', role: 'admin' }]);
  const server = await ServerProcess.start(t, { REDIS_URL: await sharedRedisUrl(), AUTH_TOKENS: tokens, HTTP_BODY_IDLE_TIMEOUT_MS: '60000' });
  const port = Number(new URL(server.url).port);
  const path = `/v1/clusters/${uniqueCluster('early')}/blobs/${randomJobId()}/b`;
  for (const headers of ['', 'Authorization: Bearer token-a-0123456789abcdef\r\nContent-Type: text/plain\r\n']) {
    const c = new RawConnection(port);
    c.write(`PUT ${path} HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: 100000000\r\n\r\nxx`);
    // Faster than any timeout: only the early answer can end it.
    const trickle = setInterval(() => c.write('x'), 100);
    await waitFor(() => c.closed, 5000, 'the connection closed after the answer').finally(() => clearInterval(trickle));
    assert.match(c.answer, headers ? /^HTTP\/1.1 415/ : /^HTTP\/1.1 401/);
    assert.match(c.answer, /connection: close/i);
  }
});
