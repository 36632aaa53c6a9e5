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
import { sharedRedisUrl, testConfig } from './support/app.js';
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
