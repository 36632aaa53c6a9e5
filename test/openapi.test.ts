/**
 * openapi.yaml (design §7): a valid OpenAPI 3 document that describes exactly the routes
 * the app registers, no more and no fewer, and that the app serves as is.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { parse } from 'yaml';
import { buildApp, type AppOptions } from '../src/app.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import type { InjectOptions } from 'fastify';
import { randomJobId, sharedRedisUrl, testConfig, uniqueCluster, waitFor } from './support/app.js';
import { stopAllRedis } from './support/redis.js';

after(() => stopAllRedis());

const TEXT = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8');
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Spec {
  paths: Record<string, Record<string, { operationId?: string }>>;
}

async function app(t: TestContext, onRoute?: AppOptions['onRoute']) {
  const a = await buildApp({ config: testConfig(), redis: await sharedRedisUrl(), logger: false, onRoute });
  t.after(() => a.close());
  await a.ready();
  return a;
}

/** "METHOD /path/{param}" of every operation in the document. */
function operations(spec: Spec): Map<string, string | undefined> {
  const ops = new Map<string, string | undefined>();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const m of HTTP_METHODS) if (item[m]) ops.set(`${m.toUpperCase()} ${path}`, item[m].operationId);
  }
  return ops;
}

test('openapi.yaml is a valid OpenAPI 3 document with unique camelCase operation ids', async () => {
  const validator = new Validator();
  const result = await validator.validate(parse(TEXT));
  assert.ok(result.valid, `openapi.yaml is not valid OpenAPI:\n${JSON.stringify(result.errors, null, 2)}`);
  assert.match(validator.version, /^3\./);

  const ids = [...operations(parse(TEXT) as Spec).values()];
  assert.deepEqual(ids.filter((id) => !id || !/^[a-z][A-Za-z0-9]*$/.test(id)), [], 'operation ids missing or not camelCase');
  assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'operation ids not unique');
});

test('openapi.yaml describes every route the app registers, and nothing else', async (t) => {
  const registered = new Set<string>();
  await app(t, (route) => {
    for (const method of [route.method].flat()) registered.add(`${method} ${route.url.replace(/:(\w+)/g, '{$1}')}`);
  });
  // Fastify adds a HEAD route beside every GET by itself; only the GET is described.
  const routes = [...registered].filter((r) => !(r.startsWith('HEAD ') && registered.has(r.replace(/^HEAD/, 'GET'))));
  const described = operations(parse(TEXT) as Spec);

  const diff = [
    ...routes.filter((r) => !described.has(r)).map((r) => `  served but not in openapi.yaml: ${r}`),
    ...[...described.keys()].filter((o) => !routes.includes(o)).map((o) => `  in openapi.yaml but not served: ${o}`),
  ];
  assert.equal(diff.length, 0, `openapi.yaml and the app's routes differ:\n${diff.join('\n')}`);
  assert.ok(routes.length > 0);
});

test('GET /openapi.yaml serves openapi.yaml', async (t) => {
  const res = await (await app(t)).inject({ method: 'GET', url: '/openapi.yaml' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^application\/yaml/);
  assert.equal(res.body, TEXT);
});

test('answers match the response schemas of openapi.yaml', async (t) => {
  // The document becomes one schema, its local references made absolute.
  const spec = JSON.parse(JSON.stringify(parse(TEXT)).replaceAll('"$ref":"#/', '"$ref":"openapi#/'));
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  formats.default(ajv);
  ajv.addSchema({ ...spec, $id: 'openapi' });
  const deref = (o: any): any => (o?.$ref ? deref(o.$ref.replace('openapi#/', '').split('/').reduce((x: any, k: string) => x[k], spec)) : o);

  const a = await app(t);
  await waitFor(async () => (await a.inject('/readyz')).statusCode === 200, 10_000);
  const v1 = `/v1/clusters/${uniqueCluster('spec')}`;
  const base = `${v1}/leaders`;
  const post = (url: string, body: object): InjectOptions => ({ method: 'POST', url, payload: body });
  const granted = (await a.inject(post(`${base}/dispatcher/campaign`, { contenderId: 'a', address: 'http://a' }))).json();
  const session = { contenderId: 'a', sessionId: granted.leader.sessionId };

  // The stores: writes fenced by the dispatcher's token (d) or the job manager's (jm); 1 is stale.
  const [job, other] = [randomJobId(), randomJobId()];
  const jm = (await a.inject(post(`${base}/jobmanager/${job}/campaign`, { contenderId: 'jm' }))).json().leader.fencingToken;
  const d = granted.leader.fencingToken;
  const P = '/v1/clusters/{clusterId}';
  const [jr, plan, blobs] = [`${v1}/job-results`, `${v1}/execution-plans`, `${v1}/blobs/${job}`];
  const [cps, counter] = [`${v1}/jobs/${job}/checkpoints`, `${v1}/jobs/${job}/checkpoint-id-counter`];
  type Method = 'PUT' | 'POST' | 'DELETE';
  const write = (method: Method, url: string, token?: number, payload?: object | Buffer, headers = {}): InjectOptions => ({
    method,
    url,
    payload,
    headers: {
      ...(token === undefined ? {} : { 'x-fencing-token': String(token) }),
      ...(Buffer.isBuffer(payload) ? { 'content-type': 'application/octet-stream' } : {}),
      ...headers,
    },
  });
  const result = { applicationStatus: 'SUCCEEDED', jobName: 'wc', netRuntimeMs: 5, accumulatorResults: { n: [1] } };
  const cp = (checkpointId: number) => ({ checkpointId, timestamp: 1, externalPointer: `s3://b/${checkpointId}`, properties: { k: 'v' } });
  const key = { 'idempotency-key': `spec-${job}` };

  const checks: Array<[string, string, number, string | InjectOptions]> = [
    ['/readyz', 'get', 200, '/readyz'],
    ['/v1/clusters/{clusterId}/leaders', 'get', 200, base],
    ['/v1/clusters/{clusterId}/leaders/{component}', 'get', 200, `${base}/dispatcher`],
    ['/v1/clusters/{clusterId}/leaders/jobmanager/{jobId}', 'get', 200, `${base}/jobmanager/0123456789abcdef0123456789abcdef`],
    ['/v1/clusters/{clusterId}/leaders/{component}/campaign', 'post', 200, post(`${base}/dispatcher/campaign`, { contenderId: 'b' })],
    ['/v1/clusters/{clusterId}/leaders/{component}/renew', 'post', 200, post(`${base}/dispatcher/renew`, session)],
    ['/v1/clusters/{clusterId}/leaders/{component}/confirm', 'post', 200, post(`${base}/dispatcher/confirm`, { ...session, address: 'http://b' })],
    ['/v1/clusters/{clusterId}/leaders/{component}/renew', 'post', 409, post(`${base}/dispatcher/renew`, { ...session, contenderId: 'b' })],
    ['/v1/clusters/{clusterId}/leaders/{component}/campaign', 'post', 400, post(`${base}/dispatcher/campaign`, {})],
    [`${P}/job-results/{jobId}`, 'put', 201, write('PUT', `${jr}/${job}`, d, result, key)],
    [`${P}/job-results/{jobId}`, 'put', 201, write('PUT', `${jr}/${job}`, d, result, key)],
    [`${P}/job-results/{jobId}`, 'put', 422, write('PUT', `${jr}/${other}`, d, result, key)],
    [`${P}/job-results/{jobId}`, 'put', 409, write('PUT', `${jr}/${job}`, d, result)],
    [`${P}/job-results/{jobId}`, 'get', 200, `${jr}/${job}`],
    [`${P}/job-results/{jobId}`, 'get', 404, `${jr}/${other}`],
    [`${P}/job-results`, 'get', 200, `${jr}?state=dirty`],
    [`${P}/job-results/{jobId}/clean`, 'post', 404, write('POST', `${jr}/${other}/clean`, d)],
    [`${P}/job-results/{jobId}/clean`, 'post', 200, write('POST', `${jr}/${job}/clean`, d)],
    [`${P}/execution-plans/{jobId}`, 'put', 200, write('PUT', `${plan}/${job}`, d, Buffer.from([0, 1, 2]))],
    [`${P}/execution-plans/{jobId}`, 'put', 409, write('PUT', `${plan}/${job}`, 1, Buffer.from([0]))],
    [`${P}/execution-plans/{jobId}/resource-requirements`, 'put', 200, write('PUT', `${plan}/${job}/resource-requirements`, d, { slots: 2 })],
    [`${P}/execution-plans/{jobId}/resource-requirements`, 'put', 404, write('PUT', `${plan}/${other}/resource-requirements`, d, {})],
    [`${P}/execution-plans/{jobId}/resource-requirements`, 'get', 200, `${plan}/${job}/resource-requirements`],
    [`${P}/execution-plans`, 'get', 200, plan],
    [`${P}/jobs/{jobId}/checkpoint-id-counter/increment`, 'post', 200, write('POST', `${counter}/increment`, jm)],
    [`${P}/jobs/{jobId}/checkpoint-id-counter/increment`, 'post', 409, write('POST', `${counter}/increment`)],
    [`${P}/jobs/{jobId}/checkpoint-id-counter`, 'put', 200, write('PUT', counter, jm, { value: 7 })],
    [`${P}/jobs/{jobId}/checkpoint-id-counter`, 'put', 409, write('PUT', counter, jm, { value: 3 })],
    [`${P}/jobs/{jobId}/checkpoint-id-counter`, 'get', 200, counter],
    [`${P}/jobs/{jobId}/checkpoints`, 'post', 200, write('POST', cps, jm, cp(6))],
    [`${P}/jobs/{jobId}/checkpoints`, 'post', 200, write('POST', cps, jm, cp(7))],
    [`${P}/jobs/{jobId}/checkpoints`, 'post', 409, write('POST', cps, jm, cp(7))],
    [`${P}/jobs/{jobId}/checkpoints`, 'get', 200, cps],
    [`${P}/jobs/{jobId}/checkpoints/latest`, 'get', 200, `${cps}/latest`],
    [`${P}/jobs/{jobId}/checkpoints/latest`, 'get', 404, `${v1}/jobs/${other}/checkpoints/latest`],
    [`${P}/jobs/{jobId}/checkpoints/shutdown`, 'post', 200, write('POST', `${cps}/shutdown`, jm, { jobStatus: 'SUSPENDED' })],
    [`${P}/jobs/{jobId}/checkpoint-id-counter/shutdown`, 'post', 200, write('POST', `${counter}/shutdown`, jm, { jobStatus: 'RUNNING' })],
    [`${P}/blobs/{jobId}/{blobKey}`, 'put', 201, write('PUT', `${blobs}/a.jar`, d, Buffer.from('jar'))],
    [`${P}/blobs/{jobId}/{blobKey}`, 'put', 400, write('PUT', `${blobs}/b.jar`, d, Buffer.from('jar'), { 'x-content-sha256': '0'.repeat(64) })],
    [`${P}/blobs/{jobId}/{blobKey}`, 'get', 404, `${blobs}/b.jar`],
    [`${P}/blobs/{jobId}`, 'get', 200, blobs],
    [`${P}/blobs/{jobId}/{blobKey}`, 'delete', 200, write('DELETE', `${blobs}/a.jar`, d)],
    [`${P}/blobs/{jobId}`, 'delete', 409, write('DELETE', blobs, 1)],
    [`${P}/blobs/{jobId}`, 'delete', 200, write('DELETE', blobs, d)],
    [`${P}/jobs/{jobId}`, 'delete', 409, write('DELETE', `${v1}/jobs/${job}`, 1)],
    [`${P}/jobs/{jobId}`, 'delete', 200, write('DELETE', `${v1}/jobs/${job}`, d)],
    ['/v1/clusters/{clusterId}/leaders/{component}/resign', 'post', 200, post(`${base}/dispatcher/resign`, session)],
    [P, 'delete', 200, { method: 'DELETE', url: v1 }],
  ];
  for (const [path, method, status, request] of checks) {
    const res = await a.inject(request);
    assert.equal(res.statusCode, status, `${method} ${path}: ${res.body}`);
    const schema = deref(deref(spec.paths[path][method].responses[String(status)])?.content?.['application/json']?.schema);
    assert.ok(schema, `${method} ${path} ${status} has a JSON schema in openapi.yaml`);
    const validate = ajv.compile(schema);
    assert.ok(validate(res.json()), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${res.body}`);
  }
});
