/**
 * Admin acts (design §5–§6): an unfenced write (`X-Fencing-Token: override`) and
 * cleanupAllData. With ADMIN_TOKENS set they need one of them as a bearer token; a fenced
 * write never does.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { post, randomJobId, sharedRedisUrl, startApp, uniqueCluster } from './support/app.js';
import { stopAllRedis } from './support/redis.js';

after(() => stopAllRedis());

const ADMIN = 'admin-token-0123456789';

async function putResult(base: string, cluster: string, headers: Record<string, string>) {
  const res = await fetch(`${base}/v1/clusters/${cluster}/job-results/${randomJobId()}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ applicationStatus: 'SUCCEEDED' }),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

async function deleteCluster(base: string, cluster: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/v1/clusters/${cluster}`, { method: 'DELETE', headers });
  return { status: res.status, body: await res.json() };
}

test('with ADMIN_TOKENS, override needs an admin bearer token: 401 without one, 403 with another; nothing written', async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { ADMIN_TOKENS: `other-token-0123456789,${ADMIN}` });
  const c = uniqueCluster('admin');

  const none = await putResult(app.url, c, { 'x-fencing-token': 'override' });
  assert.equal(none.status, 401);
  assert.equal(none.body.error, 'Unauthorized');
  assert.equal(none.headers.get('www-authenticate'), 'Bearer');
  const wrong = await putResult(app.url, c, { 'x-fencing-token': 'override', authorization: 'Bearer not-an-admin-token' });
  assert.equal(wrong.status, 403);
  assert.equal(wrong.body.error, 'Forbidden');
  assert.deepEqual((await (await fetch(`${app.url}/v1/clusters/${c}/job-results`)).json()).jobResults, []);
  // Routes in scopes of their own (bytes bodies) are checked too.
  for (const path of [`execution-plans/${randomJobId()}`, 'blobs/_/k']) {
    const res = await fetch(`${app.url}/v1/clusters/${c}/${path}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'x-fencing-token': 'override' },
      body: 'bytes',
    });
    assert.equal(res.status, 401, path);
  }

  assert.equal((await putResult(app.url, c, { 'x-fencing-token': 'override', authorization: `Bearer ${ADMIN}` })).status, 201);

  // A leader's own token needs no admin.
  const d = await post(app.url, `/v1/clusters/${c}/leaders/dispatcher/campaign`, { contenderId: 'd' });
  assert.equal((await putResult(app.url, c, { 'x-fencing-token': String(d.body.leader.fencingToken) })).status, 201);
});

test('with ADMIN_TOKENS, deleting a cluster needs an admin bearer token', async (t) => {
  const app = await startApp(t, await sharedRedisUrl(), { ADMIN_TOKENS: ADMIN });
  const c = uniqueCluster('admin');
  await putResult(app.url, c, { 'x-fencing-token': 'override', authorization: `Bearer ${ADMIN}` });

  assert.equal((await deleteCluster(app.url, c)).status, 401);
  assert.equal((await deleteCluster(app.url, c, { authorization: 'Bearer someone-else-entirely' })).status, 403);
  const done = await deleteCluster(app.url, c, { authorization: `Bearer ${ADMIN}` });
  assert.equal(done.status, 200);
  assert.equal(done.body.deleted.jobResults, 1);
});

test('without ADMIN_TOKENS every caller is admin, but an unfenced write must still say override', async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const c = uniqueCluster('open');
  const missing = await putResult(app.url, c, {});
  assert.equal(missing.status, 409);
  assert.equal(missing.body.error, 'FencingTokenRequired');
  assert.equal((await putResult(app.url, c, { 'x-fencing-token': 'override' })).status, 201);
  assert.equal((await deleteCluster(app.url, c)).status, 200);
});
