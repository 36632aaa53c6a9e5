/** Telemetry an operator can use: leadership events in the log, error codes in the request
 * log, and Prometheus metrics with bounded cluster labels. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { buildApp } from '../src/app.js';
import { stopAllRedis } from './support/redis.js';
import { readyEverywhere, appRedis, get, post, randomJobId, sharedRedisUrl, uniqueCluster, waitFor } from './support/app.js';

after(() => stopAllRedis());

/** An app listening on a free port whose log lines are collected. */
async function loggedApp(t: { after: (fn: () => Promise<void>) => void }, env: Record<string, string> = {}) {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const app = await buildApp({ ...(await appRedis(await sharedRedisUrl(), env)), logger: { level: 'info', stream } });
  t.after(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  await waitFor(() => readyEverywhere(app), 10_000);
  return { app, url, lines };
}

const events = (lines: any[], event: string) => lines.filter((l) => l.msg === 'leadership event' && l.event === event);

test('grants, refused renewals, resignations and expiries are logged at info, each by one server only', async (t) => {
  const a = await loggedApp(t);
  const b = await loggedApp(t);
  const c = uniqueCluster();
  const L = `/v1/clusters/${c}/leaders`;
  // Both servers follow the cluster, and time its leases.
  for (const s of [a, b]) assert.equal((await get(s.url, L)).status, 200);

  const granted = await post(a.url, `${L}/dispatcher/campaign`, { contenderId: 'jm-1', ttlMs: 1000 });
  assert.equal(granted.status, 200);
  const token = granted.body.leader.fencingToken;
  const [grant] = events(a.lines, 'granted');
  assert.ok(grant, 'the grant is logged');
  assert.equal(grant.level, 30, 'at info');
  assert.deepEqual(
    { clusterId: grant.clusterId, component: grant.component, contenderId: grant.contenderId, fencingToken: grant.fencingToken },
    { clusterId: c, component: 'dispatcher', contenderId: 'jm-1', fencingToken: token },
  );
  assert.equal(events(b.lines, 'granted').length, 0, 'the other server made no grant');

  // The lease runs out: both servers time it, one records the expiry, and only that one logs it.
  await waitFor(() => events(a.lines, 'expired').length + events(b.lines, 'expired').length > 0, 10_000, 'an expiry logged');
  await new Promise((r) => setTimeout(r, 500));
  const expiries = [...events(a.lines, 'expired'), ...events(b.lines, 'expired')];
  assert.equal(expiries.length, 1, 'one server logs the expiry');
  assert.deepEqual(
    { clusterId: expiries[0].clusterId, component: expiries[0].component, contenderId: expiries[0].contenderId, fencingToken: expiries[0].fencingToken },
    { clusterId: c, component: 'dispatcher', contenderId: 'jm-1', fencingToken: token },
  );

  const refused = await post(a.url, `${L}/dispatcher/renew`, { contenderId: 'jm-1', sessionId: granted.body.leader.sessionId });
  assert.equal(refused.status, 409);
  assert.equal(events(a.lines, 'renewFailed').length, 1);
  assert.equal(events(a.lines, 'renewFailed')[0].contenderId, 'jm-1');

  const again = await post(b.url, `${L}/dispatcher/campaign`, { contenderId: 'jm-2', ttlMs: 60_000 });
  // The token of a resigned lease comes from the server's view (the script does not answer it).
  await waitFor(async () => (await get(b.url, `${L}/dispatcher`)).body.leader?.fencingToken === again.body.leader.fencingToken, 5000, 'b sees its grant');
  assert.equal((await post(b.url, `${L}/dispatcher/resign`, { contenderId: 'jm-2', sessionId: again.body.leader.sessionId })).status, 200);
  const [resigned] = events(b.lines, 'resigned');
  assert.equal(resigned?.contenderId, 'jm-2');
  assert.equal(resigned?.fencingToken, again.body.leader.fencingToken);

  // A leadership: its grant and an admin's revocation, with what was published under it.
  const LS = `/v1/clusters/${c}/leadership`;
  const ls = await post(a.url, `${LS}/campaign`, { contenderId: 'jm-3', ttlMs: 60_000 });
  assert.equal(ls.status, 200);
  const lsGrant = events(a.lines, 'granted').find((l) => l.component === null);
  assert.equal(lsGrant?.fencingToken, ls.body.leadership.token);
  assert.equal(lsGrant?.contenderId, 'jm-3');
  const publish = await post(a.url, `${LS}/publish`, { sessionId: ls.body.leadership.sessionId, component: 'dispatcher', address: 'http://jm-3' });
  assert.equal(publish.status, 200);
  await waitFor(async () => (await get(a.url, `${L}/dispatcher`)).body.leader?.fencingToken === ls.body.leadership.token, 5000, 'a sees the publication');
  assert.equal((await post(a.url, `${LS}/revoke`, {})).status, 200);
  const [revoked] = events(a.lines, 'revoked');
  assert.equal(revoked?.fencingToken, ls.body.leadership.token);
  assert.equal(revoked?.contenderId, 'jm-3');
  assert.deepEqual(revoked?.components, ['dispatcher']);
  assert.ok(!JSON.stringify([...a.lines, ...b.lines]).includes(ls.body.leadership.sessionId), 'session ids stay out of the log');
});

test('request logs carry the error code of every 4xx and 5xx answer', async (t) => {
  const a = await loggedApp(t);
  const c = uniqueCluster();
  const L = `/v1/clusters/${c}/leaders`;
  const g = await post(a.url, `${L}/dispatcher/campaign`, { contenderId: 'jm-1', ttlMs: 60_000 });
  a.lines.length = 0;
  assert.equal((await post(a.url, `${L}/dispatcher/renew`, { contenderId: 'jm-1', sessionId: randomUUID() })).status, 409);
  const stale = await fetch(`${a.url}/v1/clusters/${c}/jobs/${randomJobId()}/checkpoint-id-counter/increment`, {
    method: 'POST',
    headers: { 'x-fencing-token': String(g.body.leader.fencingToken - 1) },
  });
  assert.equal(stale.status, 409);
  assert.equal((await get(a.url, `/v1/clusters/${c}/nope`)).status, 404);
  assert.equal((await get(a.url, L)).status, 200);
  const logged = a.lines.filter((l) => l.msg === 'request').map((l) => [l.statusCode, l.code]);
  assert.deepEqual(logged, [
    [409, 'NotLeader'],
    [409, 'FencingTokenStale'],
    [404, 'NotFound'],
    [200, undefined],
  ]);
});

/** The value of one sample in Prometheus text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const m = /^([^{ ]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

test('metrics: requests, errors by code, latency per route pattern, leases held, fencing refusals, watchers and long-polls, with cluster labels capped', async (t) => {
  const a = await loggedApp(t, { METRICS_CLUSTER_LABELS_MAX: '2' });
  const [c1, c2, c3] = [uniqueCluster(), uniqueCluster(), uniqueCluster()];
  for (const c of [c1, c2, c3]) {
    assert.equal((await get(a.url, `/v1/clusters/${c}/leaders`)).status, 200);
  }
  const g = await post(a.url, `/v1/clusters/${c1}/leaders/dispatcher/campaign`, { contenderId: 'jm-1', ttlMs: 60_000 });
  assert.equal(g.status, 200);
  const fence = (c: string) =>
    fetch(`${a.url}/v1/clusters/${c}/jobs/${randomJobId()}/checkpoint-id-counter/increment`, {
      method: 'POST',
      headers: { 'x-fencing-token': String(g.body.leader.fencingToken + 1) },
    });
  assert.equal((await fence(c1)).status, 409);
  assert.equal((await fence(c3)).status, 409);
  // A long-poll and a websocket watcher, open while the metrics are read.
  const poll = fetch(`${a.url}/v1/clusters/${c2}/leaders?index=9999999999999999&wait=3s`);
  const ws = new WebSocket(`${a.url.replace('http', 'ws')}/v1/clusters/${c3}/watch`);
  t.after(() => ws.close());
  await new Promise((resolve, reject) => ws.once('message', resolve).once('error', reject));

  let text = '';
  await waitFor(async () => {
    text = await (await fetch(`${a.url}/metrics`)).text();
    return sample(text, 'leasehold_long_polls', { cluster: c2 }) === 1;
  }, 5000, 'the long-poll counted');
  const route = '/v1/clusters/:clusterId/leaders';
  assert.equal(sample(text, 'leasehold_http_requests_total', { method: 'GET', route, cluster: c1 }), 1);
  assert.equal(sample(text, 'leasehold_http_requests_total', { method: 'GET', route, cluster: c2 }), 1);
  assert.equal(sample(text, 'leasehold_http_requests_total', { method: 'GET', route, cluster: '_other' }), 1, 'a third cluster is _other');
  assert.equal(sample(text, 'leasehold_http_requests_total', { method: 'GET', route, cluster: c3 }), undefined);
  assert.ok(!text.includes(c3), 'the third cluster is never a label');
  assert.equal(sample(text, 'leasehold_http_request_duration_seconds_count', { method: 'GET', route }), 3);
  assert.equal(sample(text, 'leasehold_http_request_duration_seconds_bucket', { method: 'GET', route, le: '+Inf' }), 3);
  const incr = '/v1/clusters/:clusterId/jobs/:jobId/checkpoint-id-counter/increment';
  assert.equal(sample(text, 'leasehold_http_errors_total', { method: 'POST', route: incr, code: 'FencingTokenStale', cluster: c1 }), 1);
  assert.equal(sample(text, 'leasehold_http_errors_total', { method: 'POST', route: incr, code: 'FencingTokenStale', cluster: '_other' }), 1);
  assert.equal(sample(text, 'leasehold_fencing_refusals_total', { cluster: c1 }), 1);
  assert.equal(sample(text, 'leasehold_fencing_refusals_total', { cluster: '_other' }), 1);
  assert.equal(sample(text, 'leasehold_leases_held', { cluster: c1 }), 1);
  assert.equal(sample(text, 'leasehold_websocket_watchers', { cluster: '_other' }), 1);
  assert.equal(sample(text, 'leasehold_leadership_events_total', { event: 'granted' }), 1);

  ws.close();
  await (await poll).arrayBuffer();
  await waitFor(async () => {
    text = await (await fetch(`${a.url}/metrics`)).text();
    return sample(text, 'leasehold_long_polls', { cluster: c2 }) === 0 && sample(text, 'leasehold_websocket_watchers', { cluster: '_other' }) === 0;
  }, 10_000, 'watchers and long-polls gone');
  assert.equal(sample(text, 'leasehold_http_request_duration_seconds_count', { method: 'GET', route }), 3, 'a long-poll is not timed');
});

test('LOG_PRETTY without pino-pretty installed: JSON lines, and a warning that says so', async (t) => {
  let resolvable = true;
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
  } catch {
    resolvable = false;
  }
  if (resolvable) return t.skip('pino-pretty is installed here');
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', "const m = await import('./src/telemetry.ts'); m.serverLogger({ level: 'info', pretty: true }).info('hello');"], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
  });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l));
  assert.match(lines[0].msg, /pino-pretty/);
  assert.equal(lines[1].msg, 'hello');
});
