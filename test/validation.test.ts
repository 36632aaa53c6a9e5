/** Malformed input of each kind answers a 4xx with the JSON error shape, and writes nothing. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildApp } from '../src/app.js';
import type { App } from '../src/http/types.js';
import { stopAllRedis } from './support/redis.js';
import { readyEverywhere, appRedis, sharedRedisUrl, uniqueCluster, waitFor } from './support/app.js';

let app: App;
before(async () => {
  app = await buildApp({ ...(await appRedis(await sharedRedisUrl())), logger: false });
  await app.ready();
  await waitFor(() => readyEverywhere(app), 10_000);
});
after(async () => {
  await app.close();
  await stopAllRedis();
});

const SESSION = '3b241101-e2bb-4255-8caf-4136c566a962';
const JOB = '0123456789abcdef0123456789abcdef';

interface Case {
  name: string;
  method?: 'GET' | 'POST';
  url: string;
  body?: unknown;
  payload?: string;
  headers?: Record<string, string>;
  status: number;
}

function campaignUrl(cluster: string, component = 'dispatcher') {
  return `/v1/clusters/${cluster}/leaders/${component}/campaign`;
}

const c = uniqueCluster('v');
const cases: Case[] = [
  { name: 'cluster id starting with a dash', url: '/v1/clusters/-bad/leaders', status: 400 },
  { name: 'cluster id of 65 characters', url: `/v1/clusters/${'a'.repeat(65)}/leaders`, status: 400 },
  { name: 'cluster id with a brace (hash tag injection)', url: '/v1/clusters/a%7Bb%7D/leaders', status: 400 },
  { name: 'unknown component', url: `/v1/clusters/${c}/leaders/taskmanager`, status: 400 },
  { name: 'job manager without a job id', url: `/v1/clusters/${c}/leaders/jobmanager`, status: 400 },
  { name: 'job id of 31 hex digits', url: `/v1/clusters/${c}/leaders/jobmanager/${JOB.slice(1)}`, status: 400 },
  { name: 'job id that is not hex', url: `/v1/clusters/${c}/leaders/jobmanager/${'g'.repeat(32)}`, status: 400 },
  { name: 'negative index', url: `/v1/clusters/${c}/leaders?index=-1`, status: 400 },
  { name: 'index that is not a number', url: `/v1/clusters/${c}/leaders?index=abc`, status: 400 },
  { name: 'wait without a unit', url: `/v1/clusters/${c}/leaders?index=1&wait=10`, status: 400 },
  { name: 'wait over 5 minutes', url: `/v1/clusters/${c}/leaders/dispatcher?index=1&wait=6m`, status: 400 },
  { name: 'wait over 5 minutes without index', url: `/v1/clusters/${c}/leaders?wait=10m`, status: 400 },
  { name: 'a plain GET on the websocket route', url: `/v1/clusters/${c}/watch`, status: 426 },
  { name: 'watch of an unknown component', url: `/v1/clusters/${c}/watch?components=dispatcher,foo`, status: 400 },
  { name: 'a text/plain body', method: 'POST', url: campaignUrl(c), payload: 'contenderId', headers: { 'content-type': 'text/plain' }, status: 415 },
  { name: 'unknown query parameter', url: `/v1/clusters/${c}/leaders?foo=1`, status: 400 },
  { name: 'unknown route', url: '/v2/nothing', status: 404 },
  { name: 'campaign without a body', method: 'POST', url: campaignUrl(c), status: 400 },
  { name: 'campaign without contenderId', method: 'POST', url: campaignUrl(c), body: {}, status: 400 },
  { name: 'empty contenderId', method: 'POST', url: campaignUrl(c), body: { contenderId: '' }, status: 400 },
  { name: 'contenderId over 128 characters', method: 'POST', url: campaignUrl(c), body: { contenderId: 'x'.repeat(129) }, status: 400 },
  { name: 'contenderId with a control character', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a\nb' }, status: 400 },
  { name: 'contenderId with non-ASCII', method: 'POST', url: campaignUrl(c), body: { contenderId: 'é' }, status: 400 },
  // Patterns run without Unicode mode: a character outside the BMP (two code units) is refused too.
  { name: 'contenderId with an emoji', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a\u{1F600}' }, status: 400 },
  { name: 'cluster id with an emoji', url: `/v1/clusters/a${encodeURIComponent('\u{1F600}')}/leaders`, status: 400 },
  { name: 'contenderId of the wrong type', method: 'POST', url: campaignUrl(c), body: { contenderId: 42 }, status: 400 },
  { name: 'ttlMs below the minimum', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a', ttlMs: 999 }, status: 400 },
  { name: 'ttlMs above the maximum', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a', ttlMs: 300_001 }, status: 400 },
  { name: 'ttlMs not an integer', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a', ttlMs: 1500.5 }, status: 400 },
  { name: 'ttlMs as a string', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a', ttlMs: '5000' }, status: 400 },
  { name: 'empty address', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a', address: '' }, status: 400 },
  { name: 'unknown property', method: 'POST', url: campaignUrl(c), body: { contenderId: 'a', ttl: 5000 }, status: 400 },
  { name: '__proto__ property', method: 'POST', url: campaignUrl(c), payload: '{"contenderId":"a","__proto__":{"x":1}}', status: 400 },
  { name: 'body that is an array', method: 'POST', url: campaignUrl(c), body: [{ contenderId: 'a' }], status: 400 },
  { name: 'truncated JSON', method: 'POST', url: campaignUrl(c), payload: '{"contenderId":"a"', status: 400 },
  { name: 'wrong content type', method: 'POST', url: campaignUrl(c), payload: 'contenderId=a', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
  { name: 'body over the limit', method: 'POST', url: campaignUrl(c), payload: JSON.stringify({ contenderId: 'a', address: 'x'.repeat(70_000) }), status: 413 },
  { name: 'renew with a session id that is not a UUID', method: 'POST', url: `/v1/clusters/${c}/leaders/dispatcher/renew`, body: { contenderId: 'a', sessionId: 'abc' }, status: 400 },
  { name: 'renew without a session id', method: 'POST', url: `/v1/clusters/${c}/leaders/dispatcher/renew`, body: { contenderId: 'a' }, status: 400 },
  { name: 'confirm without an address', method: 'POST', url: `/v1/clusters/${c}/leaders/dispatcher/confirm`, body: { contenderId: 'a', sessionId: SESSION }, status: 400 },
  { name: 'resign on an unknown component', method: 'POST', url: `/v1/clusters/${c}/leaders/jobmanager/xyz/resign`, body: { contenderId: 'a', sessionId: SESSION }, status: 400 },
  { name: 'GET on an operation', url: `/v1/clusters/${c}/leaders/dispatcher/campaign`, status: 404 },
];

for (const k of cases) {
  test(`${k.name} → ${k.status}`, async () => {
    const res = await app.inject({
      method: k.method ?? 'GET',
      url: k.url,
      headers: k.payload !== undefined || k.body !== undefined ? { 'content-type': 'application/json', ...k.headers } : k.headers,
      payload: k.payload ?? (k.body === undefined ? undefined : JSON.stringify(k.body)),
    });
    assert.equal(res.statusCode, k.status, res.body);
    const body = res.json();
    assert.equal(body.statusCode, k.status);
    assert.equal(typeof body.error, 'string');
    assert.equal(typeof body.message, 'string');
    assert.ok(body.message.length > 0);
    assert.match(String(res.headers['content-type']), /^application\/json/);
  });
}

test('an unknown component is named in the message', async () => {
  const res = await app.inject(`/v1/clusters/${c}/leaders/taskmanager`);
  assert.match(res.json().message, /component must be one of: resourcemanager, dispatcher, rest/);
});

test('nothing was written by the refused requests', async () => {
  const res = await app.inject(`/v1/clusters/${c}/leaders`);
  assert.equal(res.statusCode, 200);
  assert.ok(res.json().leaders.every((l: { leader: unknown }) => l.leader === null));
});
