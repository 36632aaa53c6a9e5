/** The quick start: `npm start` (the compiled server, dist/server.js) with no configuration
 * runs on a redis-server it starts itself, with AOF under the data folder, and stops it on
 * exit. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { alive } from '../src/localRedis.js';
import { post, get, serverArgs, ServerProcess } from './support/app.js';

test('npm start runs the compiled server, without tsx', () => {
  const args = serverArgs();
  assert.equal(args.at(-1), 'dist/server.js');
  assert.ok(!args.includes('tsx') && !args.includes('--import'), `no loader: ${args.join(' ')}`);
});

test('without REDIS_URL the server starts its own Redis, keeps data across restarts, and stops it on SIGTERM', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'leasehold-data-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { DATA_DIR: dataDir, REDIS_URL: '' };

  const first = await ServerProcess.start(t, env);
  const g = await post(first.url, '/v1/clusters/qs/leaders/dispatcher/campaign', { contenderId: 'a', ttlMs: 60_000 });
  assert.equal(g.body.granted, true);
  const redisPid = Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8'));
  assert.ok(alive(redisPid));
  assert.equal(await first.signal('SIGTERM'), 0);
  assert.equal(alive(redisPid), false, 'the local redis-server stopped with the server');

  const second = await ServerProcess.start(t, env);
  // Until its Redis has loaded the AOF (and on a loaded machine) a read may answer 503.
  let read = await get(second.url, '/v1/clusters/qs/leaders/dispatcher');
  for (let i = 0; read.status === 503 && i < 50; i++) read = await new Promise((r) => setTimeout(r, 200)).then(() => get(second.url, '/v1/clusters/qs/leaders/dispatcher'));
  assert.equal(read.status, 200, JSON.stringify(read.body));
  assert.equal(read.body.leader?.sessionId, g.body.leader.sessionId, 'the lease survived in the AOF');
  assert.equal(await second.signal('SIGTERM'), 0);
});

test('without redis-server on PATH it says in one line how to get it', () => {
  const r = spawnSync(process.execPath, serverArgs(), {
    cwd: new URL('..', import.meta.url),
    env: { PATH: '/nonexistent', DATA_DIR: mkdtempSync(join(tmpdir(), 'leasehold-data-')), LOG_LEVEL: 'error' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /redis-server was not found on PATH: install it \(Debian\/Ubuntu: apt-get install redis-server.*REDIS_URL.*docker compose up/);
});

test('bad configuration stops the start with a clear message', () => {
  const r = spawnSync(process.execPath, serverArgs(), {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, PORT: 'eighty' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /leasehold: invalid configuration: .*PORT/);
});
