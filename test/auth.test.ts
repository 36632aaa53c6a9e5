/**
 * Access (docs/design.md §7): bearer tokens with roles (`read` < `contend` < `write` < `admin`) and
 * the clusters they may touch; 401 without a valid token, 403 with one that may not. The
 * same for websocket upgrades, which are refused before the upgrade. With no tokens the
 * server is open and everyone is admin.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { buildApp } from '../src/app.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { appRedis, randomJobId, sharedRedisUrl, startApp, uniqueCluster } from './support/app.js';
import { stopAllRedis } from './support/redis.js';

after(() => stopAllRedis());

const T = {
  read: 'read-token-000000000001',
  contend: 'contend-token-00000001',
  write: 'write-token-0000000001',
  admin: 'admin-token-0000000001',
  other: 'other-cluster-token-001',
};
const A = uniqueCluster('auth');
const B = uniqueCluster('auth');
const TOKENS = JSON.stringify([
  { name: 'reader', token: T.read, role: 'read', clusters: [A] },
  { name: 'contender', token: T.contend, role: 'contend', clusters: [A] },
  { name: 'writer', token: T.write, role: 'write', clusters: [A] },
  { name: 'root', token: T.admin, role: 'admin' },
  { name: 'elsewhere', token: T.other, role: 'write', clusters: [B] },
]);

async function call(base: string, method: string, path: string, token?: string, init: { body?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...init.headers,
    },
    body: init.body,
  });
  const text = await res.text();
  return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text, headers: res.headers };
}

/** The HTTP status of a websocket upgrade: 101, or the status it was refused with. */
function upgrade(wsBase: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsBase + path, { headers });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

test('without a valid token every cluster route answers 401 with WWW-Authenticate, websocket upgrades included', async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { AUTH_TOKENS: TOKENS });
  for (const token of [undefined, 'not-a-configured-token']) {
    for (const [method, path, body] of [
      ['GET', `/v1/clusters/${A}/leaders`],
      ['GET', `/v1/clusters/${A}/leaders/dispatcher`],
      ['POST', `/v1/clusters/${A}/leaders/dispatcher/campaign`, '{"contenderId":"x"}'],
      ['PUT', `/v1/clusters/${A}/job-results/${randomJobId()}`, '{"applicationStatus":"SUCCEEDED"}'],
      ['DELETE', `/v1/clusters/${A}`],
    ] as const) {
      const res = await call(app.url, method, path, token, { body });
      assert.equal(res.status, 401, `${method} ${path} with ${token}`);
      assert.equal(res.body.error, 'Unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
    assert.equal(await upgrade(app.wsUrl, `/v1/clusters/${A}/watch`, token ? { authorization: `Bearer ${token}` } : {}), 401);
  }
  // Probes, metrics and the API description stay open, for orchestrators and scrapers.
  for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.yaml']) assert.equal((await call(app.url, 'GET', path)).status, 200, path);
});

test('each role may do its own and the lower roles\' work, and gets 403 above it; nothing is written by a refused call', async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { AUTH_TOKENS: TOKENS });
  const jobId = randomJobId();
  const campaign = (token: string) => call(app.url, 'POST', `/v1/clusters/${A}/leaders/dispatcher/campaign`, token, { body: '{"contenderId":"d"}' });
  const put = (token: string, fence: string) =>
    call(app.url, 'PUT', `/v1/clusters/${A}/job-results/${jobId}`, token, {
      body: '{"applicationStatus":"SUCCEEDED"}',
      headers: { 'x-fencing-token': fence },
    });

  // read: reads and watches, nothing else
  assert.equal((await call(app.url, 'GET', `/v1/clusters/${A}/leaders`, T.read)).status, 200);
  assert.equal(await upgrade(app.wsUrl, `/v1/clusters/${A}/watch`, { authorization: `Bearer ${T.read}` }), 101);
  const refused = await campaign(T.read);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error, 'Forbidden');
  assert.match(refused.body.message, /reader.*contend/);
  assert.equal((await call(app.url, 'GET', `/v1/clusters/${A}/leaders/dispatcher`, T.read)).body.leader, null);

  // contend: elections, but no store writes
  const granted = await campaign(T.contend);
  assert.equal(granted.status, 200);
  const token = String(granted.body.leader.fencingToken);
  assert.equal((await put(T.contend, token)).status, 403);

  // write: fenced writes, but no override and no cluster deletion
  assert.equal((await put(T.write, 'override')).status, 403);
  assert.equal((await call(app.url, 'GET', `/v1/clusters/${A}/job-results/${jobId}`, T.write)).status, 404, 'nothing was written');
  assert.equal((await put(T.write, token)).status, 201);
  assert.equal((await call(app.url, 'DELETE', `/v1/clusters/${A}`, T.write)).status, 403);
  // Bytes routes are checked before their body is read.
  const blob = await fetch(`${app.url}/v1/clusters/${A}/blobs/_/k`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': token, authorization: `Bearer ${T.contend}` },
    body: Buffer.alloc(1024 * 1024),
  });
  assert.equal(blob.status, 403);

  // admin: everything, on every cluster
  const plan = await call(app.url, 'PUT', `/v1/clusters/${A}/execution-plans/${jobId}`, T.admin, {
    body: 'plan',
    headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': 'override' },
  });
  assert.equal(plan.status, 200);
  const deleted = await call(app.url, 'DELETE', `/v1/clusters/${A}`, T.admin);
  assert.equal(deleted.status, 200);
  assert.equal(deleted.body.deleted.jobResults, 1);
});

test('a token may touch only its clusters: 403 elsewhere, for HTTP and websocket alike', async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { AUTH_TOKENS: TOKENS });
  const other = await call(app.url, 'GET', `/v1/clusters/${A}/leaders`, T.other);
  assert.equal(other.status, 403);
  assert.match(other.body.message, new RegExp(`elsewhere.*${A}`));
  assert.equal(await upgrade(app.wsUrl, `/v1/clusters/${A}/watch`, { authorization: `Bearer ${T.other}` }), 403);
  assert.equal((await call(app.url, 'GET', `/v1/clusters/${B}/leaders`, T.other)).status, 200);
  assert.equal(await upgrade(app.wsUrl, `/v1/clusters/${B}/watch`, { authorization: `Bearer ${T.other}` }), 101);
  assert.equal((await call(app.url, 'GET', `/v1/clusters/${B}/leaders`, T.read)).status, 403);
});

test('ADMIN_TOKENS are admin tokens on every cluster; AUTH_TOKENS_FILE is read at start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'leasehold-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'tokens.json');
  await writeFile(file, JSON.stringify([{ name: 'from-file', token: T.read, role: 'read' }]));
  const app = await startApp(t, await sharedRedisUrl(), { ADMIN_TOKENS: T.admin, AUTH_TOKENS_FILE: file });
  assert.equal((await call(app.url, 'GET', `/v1/clusters/${B}/leaders`, T.read)).status, 200);
  assert.equal((await call(app.url, 'POST', `/v1/clusters/${B}/leaders/rest/campaign`, T.read, { body: '{"contenderId":"r"}' })).status, 403);
  assert.equal((await call(app.url, 'DELETE', `/v1/clusters/${B}`, T.admin)).status, 200);
});

test('bad token configuration stops the server at start with a message naming the entry', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ AUTH_TOKENS: 'not json' }, /AUTH_TOKENS must be JSON/],
    [{ AUTH_TOKENS: '{}' }, /must be a JSON array/],
    [{ AUTH_TOKENS: '[{"name":"a","token":"short","role":"read"}]' }, /\[0\]\.token must be at least 16/],
    [{ AUTH_TOKENS: `[{"name":"a","token":"${T.read}","role":"root"}]` }, /\[0\]\.role must be one of: read, contend, write, admin/],
    [{ AUTH_TOKENS: `[{"name":"a","token":"${T.read}","role":"read","clusters":[]}]` }, /clusters must be a non-empty array/],
    [{ AUTH_TOKENS: `[{"name":"a","token":"${T.read}","role":"read","cluster":"x"}]` }, /unknown fields: cluster/],
    [{ AUTH_TOKENS_FILE: '/nonexistent/tokens.json' }, /AUTH_TOKENS_FILE cannot be read/],
  ];
  for (const [env, message] of bad) assert.throws(() => loadConfig(env), (err) => err instanceof ConfigError && message.test(err.message));
});

test('tokens never reach the log', async (t) => {
  let logged = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      logged += chunk;
      done();
    },
  });
  const app = await buildApp({ ...(await appRedis(await sharedRedisUrl(), { AUTH_TOKENS: TOKENS, LOG_LEVEL: 'debug' })), logger: { level: 'debug', stream } });
  t.after(() => app.close());
  for (const token of [T.read, T.write, 'wrong-token-but-still-secret']) {
    await app.inject({ method: 'GET', url: `/v1/clusters/${A}/leaders`, headers: { authorization: `Bearer ${token}` } });
    await app.inject({ method: 'POST', url: `/v1/clusters/${A}/leaders/x/campaign`, headers: { authorization: `Bearer ${token}` }, payload: {} });
  }
  assert.match(logged, /request/, 'requests were logged');
  for (const token of [T.read, T.write, 'wrong-token-but-still-secret']) assert.ok(!logged.includes(token), `${token} is not in the log`);
});

test('WS_ALLOWED_ORIGINS: a browser from another origin is refused before the upgrade; clients without Origin are not', async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { WS_ALLOWED_ORIGINS: 'https://console.example.com' });
  const path = `/v1/clusters/${A}/watch`;
  assert.equal(await upgrade(app.wsUrl, path, { origin: 'https://evil.example.com' }), 403);
  assert.equal(await upgrade(app.wsUrl, path, { origin: 'https://console.example.com' }), 101);
  assert.equal(await upgrade(app.wsUrl, path, {}), 101);
});

test('open (no tokens): the watch takes browsers of its own origin only, unless WS_ALLOWED_ORIGINS says otherwise', async (t) => {
  const open = await startApp(t, await sharedRedisUrl());
  const path = `/v1/clusters/${A}/watch`;
  const own = open.url; // http://127.0.0.1:port, as the Host header says
  assert.equal(await upgrade(open.wsUrl, path, { origin: 'https://evil.example.com' }), 403, 'a page of another site');
  assert.equal(await upgrade(open.wsUrl, path, { origin: 'null' }), 403, 'a sandboxed page');
  assert.equal(await upgrade(open.wsUrl, path, { origin: own }), 101, 'a page of the server itself');
  assert.equal(await upgrade(open.wsUrl, path, {}), 101, 'a client that is no browser');
  const any = await startApp(t, await sharedRedisUrl(), { WS_ALLOWED_ORIGINS: '*' });
  assert.equal(await upgrade(any.wsUrl, path, { origin: 'https://evil.example.com' }), 101, '* allows any');
  const listed = await startApp(t, await sharedRedisUrl(), { WS_ALLOWED_ORIGINS: 'https://console.example.com' });
  assert.equal(await upgrade(listed.wsUrl, path, { origin: 'https://console.example.com' }), 101);
  assert.equal(await upgrade(listed.wsUrl, path, { origin: listed.url }), 403, 'the list replaces the same-origin rule');
  // With tokens, a browser cannot send one on a websocket: the token decides, not the origin.
  const closed = await startApp(t, await sharedRedisUrl(), { AUTH_TOKENS: TOKENS });
  assert.equal(await upgrade(closed.wsUrl, path, { origin: 'https://evil.example.com', authorization: `Bearer ${T.read}` }), 101);
});

test('with no tokens the API is open and everyone is admin, but an unfenced write must still say override', async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const c = uniqueCluster('open');
  const path = `/v1/clusters/${c}/job-results/${randomJobId()}`;
  const missing = await call(app.url, 'PUT', path, undefined, { body: '{"applicationStatus":"SUCCEEDED"}' });
  assert.equal(missing.status, 409);
  assert.equal(missing.body.error, 'FencingTokenRequired');
  assert.equal((await call(app.url, 'PUT', path, undefined, { body: '{"applicationStatus":"SUCCEEDED"}', headers: { 'x-fencing-token': 'override' } })).status, 201);
  assert.equal((await call(app.url, 'DELETE', `/v1/clusters/${c}`)).status, 200);
});
