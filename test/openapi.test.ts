/**
 * openapi.yaml (docs/design.md §7): a valid OpenAPI 3 document that describes exactly the routes
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
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { generate } from '../scripts/openapi/generate.js';
import type { App } from '../src/http/types.js';
import type { Static } from 'typebox';
import type * as schemas from '../src/http/schemas.js';
import type * as storeSchemas from '../src/http/storeSchemas.js';
import type * as wire from '../src/client/wire.js';
import { readyEverywhere, appRedis, randomJobId, sharedRedisUrl, startApp, testConfig, uniqueCluster, waitFor } from './support/app.js';
import { freePort, stopAllRedis } from './support/redis.js';

after(() => stopAllRedis());

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TEXT = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8');
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Spec {
  paths: Record<string, Record<string, { operationId?: string }>>;
}

async function app(t: TestContext, onRoute?: AppOptions['onRoute']) {
  const a = await buildApp({ ...(await appRedis(await sharedRedisUrl())), logger: false, onRoute });
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
  await waitFor(() => readyEverywhere(a), 10_000);
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

// ---------------------------------------------------------------------------------------
// The document is generated, lints clean, and documents every answer the server gives

test('openapi.yaml and src/client/wire.ts are what the wire model generates (npm run openapi)', async () => {
  const generated = await generate();
  assert.ok(generated.document === TEXT, 'openapi.yaml differs from what the routes\' schemas generate: run npm run openapi');
  const wire = readFileSync(new URL('../src/client/wire.ts', import.meta.url), 'utf8');
  assert.ok(generated.clientTypes === wire, 'src/client/wire.ts differs from what the routes\' schemas generate: run npm run openapi');
});

test("openapi.yaml lints with no errors under Redocly's recommended rules", async () => {
  const cli = fileURLToPath(new URL('../node_modules/@redocly/cli/bin/cli.js', import.meta.url));
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, 'lint', '--extends=recommended', '--format=json', 'openapi.yaml'], { cwd: ROOT, env }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  const report = JSON.parse(out.stdout.slice(out.stdout.indexOf('{')));
  const errors = (report.problems as Array<{ severity: string; ruleId: string; message: string }>).filter((p) => p.severity === 'error');
  assert.deepEqual(errors, [], out.stderr);
  assert.equal(report.totals.errors, 0);
  assert.equal(out.code, 0, out.stderr);
});

/** An answer, from inject or from a socket. */
interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

const SPEC: Json = parse(TEXT);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const specAjv = new Ajv2020({ strict: false, allErrors: true });
formats.default(specAjv);
specAjv.addSchema({ ...JSON.parse(JSON.stringify(SPEC).replaceAll('"$ref":"#/', '"$ref":"openapi#/')), $id: 'openapi' });
const derefSpec = (o: Json): Json => (o?.$ref ? derefSpec(o.$ref.slice(2).split('/').reduce((x: Json, k: string) => x[k], SPEC)) : o);
const compiled = new Map<object, ReturnType<typeof specAjv.compile>>();
function validatorOf(schema: Json) {
  let v = compiled.get(schema);
  if (!v) compiled.set(schema, (v = specAjv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', '"$ref":"openapi#/')))));
  return v;
}

/** The operation of the document a request goes to: the path template that matches, the
 * one with most literal segments first (as the router picks). */
function operationFor(method: string, url: string): { path: string; op: Json } {
  const segments = url.split('?')[0].split('/');
  let best: { path: string; op: Json; literals: number } | null = null;
  for (const [path, item] of Object.entries(SPEC.paths as Record<string, Json>)) {
    const template = path.split('/');
    if (template.length !== segments.length || !item[method.toLowerCase()]) continue;
    if (!template.every((t, i) => /^\{\w+\}$/.test(t) || t === segments[i])) continue;
    const literals = template.filter((t) => !t.startsWith('{')).length;
    if (!best || literals > best.literals) best = { path, op: item[method.toLowerCase()], literals };
  }
  assert.ok(best, `no operation of openapi.yaml serves ${method} ${url}`);
  return best;
}

/** operationId → the statuses it was seen to answer. */
const replayed = new Map<string, Set<number>>();

/** Asserts that openapi.yaml documents the answer: its status, its content type, and (for
 * JSON) that the body matches the schema. */
function documented(method: string, url: string, res: Answer): void {
  const { path, op } = operationFor(method, url);
  const where = `${method} ${path} (${op.operationId}) answered ${res.status}: ${res.body.toString().slice(0, 300)}`;
  const r = derefSpec(op.responses[String(res.status)]);
  assert.ok(r, `${where}\n  which openapi.yaml does not document`);
  const statuses = replayed.get(op.operationId) ?? new Set();
  statuses.add(res.status);
  replayed.set(op.operationId, statuses);
  // Switching protocols: what follows are websocket messages (checked by their test).
  if (res.status === 101) return;
  if (!r.content) {
    assert.equal(res.body.length, 0, `${where}\n  with a body, where openapi.yaml documents none`);
    return;
  }
  const type = res.contentType.split(';')[0].trim();
  const media = r.content[type];
  assert.ok(media, `${where}\n  as ${type}, which openapi.yaml does not document (${Object.keys(r.content).join(', ')})`);
  if (type !== 'application/json') return;
  const validate = validatorOf(derefSpec(media.schema));
  assert.ok(validate(JSON.parse(res.body.toString())), `${where}\n  ${specAjv.errorsText(validate.errors)}`);
}

/** Writes a request as it is, and reads the answer until the server closes. */
function overSocket(base: string, request: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(new URL(base).port), '127.0.0.1', () => socket.write(request));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks);
      const end = raw.indexOf('\r\n\r\n');
      const head = raw.subarray(0, end).toString('latin1').split('\r\n');
      const type = head.find((l) => /^content-type:/i.test(l))?.split(':')[1].trim() ?? '';
      resolve({ status: Number(head[0].split(' ')[1]), contentType: type, body: raw.subarray(end + 4) });
    });
  });
}

function answerOf(res: LightMyRequestResponse): Answer {
  return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), body: res.rawPayload };
}

/** Sends a request to the app and checks its answer against the document. */
async function replay(app: App, req: InjectOptions & { method: string; url: string }): Promise<Answer> {
  const res = answerOf(await app.inject(req));
  documented(req.method, req.url, res);
  return res;
}

/** Every operation of the document, as a request that the server would take: its path
 * parameters filled in, a valid body, the owning leader's token. */
interface Op {
  id: string;
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  path: string;
  params: string[];
  body: 'json' | 'octets' | null;
  bodySchema: string | null;
  fenced: boolean;
}

const OPS: Op[] = Object.entries(SPEC.paths as Record<string, Json>).flatMap(([path, item]) =>
  ['get', 'put', 'post', 'delete']
    .filter((m) => item[m])
    .map((m): Op => {
      const op = item[m];
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(derefSpec);
      const content = op.requestBody ? derefSpec(op.requestBody).content : null;
      const json = content?.['application/json'];
      return {
        id: op.operationId,
        method: m.toUpperCase() as Op['method'],
        path,
        params: params.filter((p: Json) => p.in === 'path').map((p: Json) => p.name),
        body: json ? 'json' : content ? 'octets' : null,
        bodySchema: json?.schema?.$ref?.split('/').pop() ?? null,
        fenced: params.some((p: Json) => p.name === 'X-Fencing-Token'),
      };
    }),
);

interface Fixture {
  cluster: string;
  job: string;
  /** The dispatcher's and the job manager's leases. */
  dispatcher: { contenderId: string; sessionId: string; token: string };
  jobManager: { contenderId: string; sessionId: string; token: string };
}

function bodyOf(op: Op, fx: Fixture): { payload?: string | Buffer; headers: Record<string, string> } {
  if (op.body === 'octets') return { payload: Buffer.from('bytes'), headers: { 'content-type': 'application/octet-stream' } };
  if (op.body !== 'json') return { headers: {} };
  const lease = op.params.includes('component') ? fx.dispatcher : fx.jobManager;
  const bodies: Record<string, object> = {
    CampaignRequest: { contenderId: lease.contenderId },
    RenewRequest: { contenderId: lease.contenderId, sessionId: lease.sessionId },
    ConfirmRequest: { contenderId: lease.contenderId, sessionId: lease.sessionId, address: 'http://a:1' },
    ResignRequest: { contenderId: lease.contenderId, sessionId: lease.sessionId },
    JobResultRequest: { applicationStatus: 'SUCCEEDED' },
    ResourceRequirements: { slots: 1 },
    CheckpointRequest: { checkpointId: 1, timestamp: 1, externalPointer: 's3://c/1' },
    ShutdownRequest: { jobStatus: 'RUNNING' },
    CounterValueRequest: { value: 1 },
    LeadershipCampaignRequest: { contenderId: lease.contenderId },
    LeadershipRenewRequest: { contenderId: lease.contenderId, sessionId: lease.sessionId },
    LeadershipResignRequest: { contenderId: lease.contenderId, sessionId: lease.sessionId },
    PublishRequest: { sessionId: lease.sessionId, component: 'rest', address: 'http://a:1' },
    UnpublishRequest: { sessionId: lease.sessionId, component: 'rest' },
    RevokeRequest: { sessionId: lease.sessionId },
  };
  const body = bodies[op.bodySchema!];
  assert.ok(body, `a valid body of ${op.bodySchema} (${op.id})`);
  return { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
}

function urlOf(op: Op, fx: Fixture, values: Record<string, string> = {}): string {
  const defaults: Record<string, string> = { clusterId: fx.cluster, component: 'dispatcher', jobId: fx.job, blobKey: 'k', file: 'app.js' };
  return op.path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? defaults[name]);
}

function requestOf(op: Op, fx: Fixture, headers: Record<string, string> = {}): InjectOptions & { method: string; url: string } {
  const { payload, headers: bodyHeaders } = bodyOf(op, fx);
  const owner = op.path.includes('/jobs/{jobId}/checkpoint') ? fx.jobManager : fx.dispatcher;
  const fence = op.fenced ? { 'x-fencing-token': owner.token } : {};
  return { method: op.method, url: urlOf(op, fx), payload, headers: { ...bodyHeaders, ...fence, ...headers } };
}

async function fixture(a: App): Promise<Fixture> {
  const cluster = uniqueCluster('replay');
  const job = randomJobId();
  const lease = async (component: string, contenderId: string) => {
    const res = await a.inject({ method: 'POST', url: `/v1/clusters/${cluster}/leaders/${component}/campaign`, payload: { contenderId, ttlMs: 300_000 } });
    assert.equal(res.statusCode, 200, res.body);
    const { leader } = res.json();
    return { contenderId, sessionId: leader.sessionId as string, token: String(leader.fencingToken) };
  };
  return { cluster, job, dispatcher: await lease('dispatcher', 'd'), jobManager: await lease(`jobmanager/${job}`, 'jm') };
}

const LIMITS = { STORE_BODY_MAX_BYTES: '1024', PLAN_MAX_BYTES: '1024', BLOB_MAX_BYTES: '1024' };

test('every route answers only what openapi.yaml documents, errors included, in the shapes it documents', async (t) => {
  const url = await sharedRedisUrl();
  const a = await buildApp({ ...(await appRedis(url, LIMITS)), logger: false });
  t.after(() => a.close());
  await waitFor(() => readyEverywhere(a), 10_000);
  const fx = await fixture(a);

  // Every operation, taken: the stores are written first, so that reads find something.
  const order = (op: Op) =>
    op.id === 'cleanupAllData' ? 5 : op.id.startsWith('resign') ? 4 : op.id === 'globalCleanupJob' ? 3 : op.method === 'DELETE' ? 2 : op.method === 'GET' ? 1 : 0;
  for (const op of [...OPS].sort((x, y) => order(x) - order(y))) {
    if (op.id === 'putJobResourceRequirements') continue; // after the plan, below
    await replay(a, requestOf(op, fx));
    if (op.id === 'putExecutionPlan') await replay(a, requestOf(OPS.find((o) => o.id === 'putJobResourceRequirements')!, fx));
  }
  // What else a plain request gets: 304, 404 of the stores, 409 of the fences and leases.
  const leaders = `/v1/clusters/${fx.cluster}/leaders`;
  const etag = String((await a.inject(leaders)).headers.etag);
  await replay(a, { method: 'GET', url: leaders, headers: { 'if-none-match': etag } });
  const other = { ...fx, job: randomJobId() };
  for (const op of OPS.filter((o) => o.method === 'GET' && o.params.includes('jobId'))) await replay(a, requestOf(op, other));
  for (const op of OPS.filter((o) => o.fenced)) await replay(a, requestOf(op, fx, { 'x-fencing-token': '1' }));
  for (const op of OPS.filter((o) => /^(renew|confirm|resign)/.test(o.id))) {
    await replay(a, { ...requestOf(op, fx), payload: JSON.stringify({ contenderId: 'x', sessionId: fx.dispatcher.sessionId, address: 'http://x' }) });
  }

  // The leadership, in a cluster of its own: none is granted beside per-component leases.
  const lc = `/v1/clusters/${uniqueCluster('replay')}/leadership`;
  const json = { 'content-type': 'application/json' };
  const won = await a.inject({ method: 'POST', url: `${lc}/campaign`, payload: { contenderId: 'p' } });
  const sessionId = won.json().leadership.sessionId as string;
  const steps: Array<[string, object]> = [
    ['campaign', { contenderId: 'p' }],
    ['renew', { contenderId: 'p', sessionId }],
    ['publish', { sessionId, component: 'rest', address: 'http://p' }],
    ['unpublish', { sessionId, component: 'rest' }],
    ['revoke', {}],
  ];
  for (const [step, body] of steps) await replay(a, { method: 'POST', url: `${lc}/${step}`, payload: JSON.stringify(body), headers: json });

  // Fastify's own answers, and the schemas': for every operation that can get them.
  for (const op of OPS) {
    if (op.params.length) {
      await replay(a, { ...requestOf(op, fx), url: urlOf(op, fx, { clusterId: 'bad$cluster' }) });
      await replay(a, { ...requestOf(op, fx), url: urlOf(op, fx, { clusterId: 'c'.repeat(1100) }) });
    }
    if (op.method !== 'GET') {
      await replay(a, { ...requestOf(op, fx), payload: 'text', headers: { ...requestOf(op, fx).headers, 'content-type': 'text/plain' } });
      const big = op.body === 'octets' ? Buffer.alloc(70_000) : JSON.stringify({ x: 'y'.repeat(70_000) });
      const type = op.body === 'octets' ? 'application/octet-stream' : 'application/json';
      await replay(a, { ...requestOf(op, fx), payload: big, headers: { ...requestOf(op, fx).headers, 'content-type': type } });
      if (op.body === 'json') await replay(a, { ...requestOf(op, fx), payload: '{"x":' });
    }
  }
  // The watch: a plain GET answers 426; an upgrade, 101 and messages in the documented shapes.
  const server = await startApp(t, url, LIMITS);
  const watch = `/v1/clusters/${fx.cluster}/watch`;
  const messages = await new Promise<unknown[]>((resolve, reject) => {
    const got: unknown[] = [];
    const ws = new WebSocket(server.wsUrl + watch);
    ws.on('upgrade', (res) => documented('GET', watch, { status: res.statusCode!, contentType: '', body: Buffer.alloc(0) }));
    ws.on('message', (data) => {
      got.push(JSON.parse(String(data)));
      if (got.length === 1) void a.inject({ method: 'POST', url: `${leaders}/rest/campaign`, payload: { contenderId: 'w' } });
      if (got.length === 2) {
        ws.close();
        resolve(got);
      }
    });
    ws.on('error', reject);
  });
  // Headers over Node's limit: Fastify answers 431 before any route.
  for (const op of OPS) {
    const raw = await overSocket(server.url, `${op.method} ${urlOf(op, fx)} HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(raw.status, 431, op.id);
    documented(op.method, urlOf(op, fx), raw);
  }
  const message = validatorOf(derefSpec(SPEC.paths['/v1/clusters/{clusterId}/watch'].get.responses['101'].content['application/json'].schema));
  for (const m of messages) assert.ok(message(m), `a watch message: ${specAjv.errorsText(message.errors)}\n${JSON.stringify(m)}`);
  assert.deepEqual(messages.map((m) => (m as { type: string }).type), ['snapshot', 'change']);

  // The renewal stream: 101, and a renewal in the documented shape, answered with its id.
  const renewal = { id: 1, clusterId: fx.cluster, component: 'rest', contenderId: 'w', sessionId: '3b241101-e2bb-4255-8caf-4136c566a962' };
  const inShape = validatorOf(derefSpec(SPEC.paths['/v1/renewals'].get.responses['101'].content['application/json'].schema));
  assert.ok(inShape(renewal), specAjv.errorsText(inShape.errors));
  const answer = await new Promise<{ id: number; error: string }>((resolve, reject) => {
    const ws = new WebSocket(server.wsUrl + '/v1/renewals');
    ws.on('upgrade', (res) => documented('GET', '/v1/renewals', { status: res.statusCode!, contentType: '', body: Buffer.alloc(0) }));
    ws.on('open', () => ws.send(JSON.stringify(renewal)));
    ws.on('message', (data) => {
      ws.close();
      resolve(JSON.parse(String(data)));
    });
    ws.on('error', reject);
  });
  assert.equal(answer.id, 1);
  assert.equal(answer.error, 'NotLeader', 'not that session');

  // Every operation was replayed, and taken at least once.
  const untaken = OPS.filter((op) => ![...(replayed.get(op.id) ?? [])].some((s) => s < 300)).map((op) => op.id);
  assert.deepEqual(untaken, [], 'operations never answered with a success');
  t.diagnostic([...replayed].map(([id, statuses]) => `${id} ${[...statuses].sort().join(',')}`).join('; '));
});

test('401, 403, 429 and 503 answers of every route are documented', async (t) => {
  const url = await sharedRedisUrl();
  const cluster = uniqueCluster('replay');
  const reader = 'reader-token-0123456789';
  const tokens = JSON.stringify([{ name: 'reader', token: reader, role: 'read', clusters: [cluster] }]);
  const guarded = await buildApp({ ...(await appRedis(url, { AUTH_TOKENS: tokens })), logger: false });
  const limited = await buildApp({ ...(await appRedis(url, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '3600000' })), logger: false });
  // A Redis that is not there: every cluster route answers 503.
  const down = await buildApp({
    config: testConfig({ REDIS_COMMAND_TIMEOUT_MS: '100' }),
    redis: `redis://127.0.0.1:${await freePort()}`,
    logger: false,
  });
  t.after(() => Promise.all([guarded.close(), limited.close(), down.close()]));
  const lease = { contenderId: 'd', sessionId: '3b241101-e2bb-4255-8caf-4136c566a962', token: '1' };
  const fx: Fixture = { cluster, job: randomJobId(), dispatcher: lease, jobManager: lease };

  await replay(down, { method: 'GET', url: '/readyz' });
  for (const [i, op] of OPS.entries()) {
    const inCluster = op.path.startsWith('/v1/clusters/');
    if (!inCluster) continue;
    // No token, then one that may only read this cluster (and another cluster, for reads).
    assert.equal((await replay(guarded, requestOf(op, fx))).status, 401, op.id);
    const other = op.method === 'GET' ? { ...fx, cluster: uniqueCluster('other') } : fx;
    assert.equal((await replay(guarded, requestOf(op, other, { authorization: `Bearer ${reader}` }))).status, 403, op.id);
    // Over the rate limit (elections never are).
    const client = { authorization: `Bearer client-${i}` };
    await replay(limited, requestOf(op, fx, client));
    const second = await replay(limited, requestOf(op, fx, client));
    const election = op.path.includes('/leaders/') || (op.path.includes('/leadership/') && !op.path.endsWith('/revoke'));
    if (!election || op.method === 'GET') assert.equal(second.status, 429, op.id);
    assert.equal((await replay(down, requestOf(op, fx))).status, 503, op.id);
  }
});

// The SDK's types are the wire model's: checked by the compiler, both ways.
type Fits<A, B> = [A] extends [B] ? true : false;
type Same<A, B> = Fits<A, B> extends true ? Fits<B, A> : false;
const sdkTypesAreTheSchemas: [
  Same<wire.Leader, Static<typeof schemas.LeaderObject>>,
  Same<wire.LeaderResponse, Static<typeof schemas.LeaderResponse>>,
  Same<wire.LeadersResponse, Static<typeof schemas.LeadersResponse>>,
  Same<wire.CampaignResponse, Static<typeof schemas.CampaignResponse>>,
  Same<wire.WatchMessage, Static<typeof schemas.WatchMessage>>,
  Same<wire.JobResultRequest, Static<typeof storeSchemas.JobResultBody>>,
  Same<wire.JobResult, Static<typeof storeSchemas.JobResultEntry>>,
  Same<wire.Checkpoint, Static<typeof storeSchemas.Checkpoint>>,
  Same<wire.CheckpointAdded, Static<typeof storeSchemas.CheckpointAdded>>,
  Same<wire.BlobsResponse, Static<typeof storeSchemas.BlobsResponse>>,
  // Their part names are built at run time, so TypeBox's type knows them only as strings.
  Fits<wire.JobCleanupReport, Static<typeof storeSchemas.JobCleanupResponse>>,
  Fits<wire.ClusterCleanupReport, Static<typeof storeSchemas.ClusterCleanupResponse>>,
] = [true, true, true, true, true, true, true, true, true, true, true, true];
void sdkTypesAreTheSchemas;
