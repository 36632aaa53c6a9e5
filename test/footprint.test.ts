/**
 * The idle server's footprint (issue 19): what a server that only started holds. Code it
 * has no use for until a feature is used (the rate limit, off by default) is not imported at
 * start, since every module imported stays in the heap. The modules are those the server process resolves, as a loader hook given
 * through NODE_OPTIONS records them.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stopAllRedis } from './support/redis.js';
import { ServerProcess, sharedRedisUrl } from './support/app.js';

after(stopAllRedis);

/** Starts a server that logs every module it resolves; answers it and the log's reader. */
async function recordedServer(t: Parameters<typeof ServerProcess.start>[0], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-footprint-'));
  t?.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'modules.log');
  writeFileSync(log, '');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}`,
  );
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
  const server = await ServerProcess.start(t, {
    REDIS_URL: await sharedRedisUrl(),
    NODE_OPTIONS: `--import ${pathToFileURL(join(dir, 'register.mjs')).href}`,
    ...env,
  });
  return { server, modules: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

const RATE_LIMIT = /\/@fastify\/rate-limit\//;

test('a started server has not imported the rate limit (off by default)', async (t) => {
  const { server, modules } = await recordedServer(t);
  const loaded = modules();
  assert.ok(loaded.some((u) => u.includes('/fastify/')), 'the hook sees the server modules');
  assert.deepEqual(loaded.filter((u) => RATE_LIMIT.test(u)), []);

  // The API description is read when asked for.
  const res = await fetch(`${server.url}/openapi.yaml`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^openapi: /m);
});

test('with a rate limit configured, the server imports it and limits', async (t) => {
  // No shedding: a start on a busy machine can hold the event loop past the 1 s mean.
  const { server, modules } = await recordedServer(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000', SHED_EVENT_LOOP_DELAY_MS: '0' });
  assert.ok(modules().some((u) => RATE_LIMIT.test(u)));
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${server.url}/v1/clusters/fp/leaders`)).status);
  assert.deepEqual(statuses, [200, 200, 429]);
});
