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
import { sharedRedisUrl, testConfig, uniqueCluster, waitFor } from './support/app.js';
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
  const base = `/v1/clusters/${uniqueCluster('spec')}/leaders`;
  const post = (url: string, body: object): InjectOptions => ({ method: 'POST', url, payload: body });
  const granted = (await a.inject(post(`${base}/dispatcher/campaign`, { contenderId: 'a', address: 'http://a' }))).json();
  const session = { contenderId: 'a', sessionId: granted.leader.sessionId };

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
    ['/v1/clusters/{clusterId}/leaders/{component}/resign', 'post', 200, post(`${base}/dispatcher/resign`, session)],
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
