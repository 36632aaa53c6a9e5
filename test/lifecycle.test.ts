/**
 * The server and the CLI as a newcomer runs them: `npm start` in the background and a
 * SIGTERM to the PID the shell gives, `npx leasehold … --hold` and a SIGTERM to its PID, a
 * second `npm start` in the same folder, the quick start's own Redis killed under it, and
 * configuration mistakes, each read from the process's own log.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test, type TestContext } from 'node:test';
import { alive } from '../src/localRedis.js';
import { clusterEnv, get, ownRedisUrl, post, serverArgs, ServerProcess, sleep, uniqueCluster, waitFor } from './support/app.js';
import { freePort, RedisProcess, stopAllRedis } from './support/redis.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
after(() => stopAllRedis());

/** Under LEASEHOLD_TEST_REDIS=cluster, the tests that use no Redis of the test's (the
 * server's own local redis-server, or none) would only run again as npm test ran them. */
const onCluster = process.env.LEASEHOLD_TEST_REDIS === 'cluster';
const NOT_THE_TESTS_REDIS = { skip: onCluster ? "no Redis of the test's (the server's own redis-server, or none): as in npm test" : false };

/** A process of the test's, with its output; SIGKILLed (its group too) after the test. */
class Proc {
  output = '';
  readonly exited: Promise<number | null>;
  constructor(
    t: TestContext,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
  }

  static spawn(t: TestContext, cmd: string, args: string[], env: Record<string, string>): Proc {
    const { npm_lifecycle_event: _e, npm_command: _c, ...inherited } = process.env;
    return new Proc(t, spawn(cmd, args, { cwd: ROOT, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  async waitForOutput(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    await waitFor(() => re.test(this.output), timeoutMs, `${re} in:\n${this.output}`);
    return this.output.match(re)!;
  }
}

function dataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-life-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const lockHolder = (dir: string) => (JSON.parse(readFileSync(join(dir, 'leasehold.lock'), 'utf8')) as { pid: number }).pid;
const redisPid = (dir: string) => Number(readFileSync(join(dir, 'redis.pid'), 'utf8'));

async function ready(url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(() => fetch(`${url}/readyz`).then((r) => r.status === 200, () => false), timeoutMs, `${url}/readyz answers 200`);
}

test('npm start & then kill -TERM $!: the server and its own redis-server stop; nothing is left running', { timeout: 120_000 , ...NOT_THE_TESTS_REDIS }, async (t) => {
  const dir = dataDir(t);
  const port = await freePort();
  serverArgs(); // builds dist/ first, as prestart would, outside the timing below
  const npm = Proc.spawn(t, 'npm', ['start'], { DATA_DIR: dir, PORT: String(port), LOG_LEVEL: 'info' });
  await ready(`http://127.0.0.1:${port}`);
  const server = lockHolder(dir);
  const redis = redisPid(dir);
  assert.notEqual(server, npm.child.pid, 'npm runs the server as a child');
  t.after(() => {
    for (const pid of [server, redis]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });

  npm.child.kill('SIGTERM');
  await npm.exited;
  await waitFor(() => !alive(server) && !alive(redis), 15_000, 'the server and its redis-server gone');
  assert.match(npm.output, /"signal":"SIGTERM".*shutting down/);
  const refused = await fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true);
  assert.ok(refused, 'nothing answers on the port');
});

test('npx leasehold leadership campaign --hold, then SIGTERM to its PID: the leadership is resigned', { timeout: 120_000 }, async (t) => {
  const s = await ServerProcess.start(t, { REDIS_URL: await ownRedisUrl() });
  const cluster = uniqueCluster('npx');
  const npx = Proc.spawn(t, 'npx', ['--no', '--', 'leasehold', 'leadership', 'campaign', cluster, '--contender', 'holder', '--ttl', '60000', '--hold', '--url', s.url], {});
  await npx.waitForOutput(/granted the leadership/, 60_000);
  assert.equal((await get(s.url, `/v1/clusters/${cluster}/leadership`)).body.leadership?.contenderId, 'holder');

  npx.child.kill('SIGTERM');
  await npx.exited;
  // The lease's TTL is a minute: only a resignation ends it within seconds.
  await waitFor(async () => (await get(s.url, `/v1/clusters/${cluster}/leadership`)).body.leadership === null, 10_000, 'the leadership released');
});

test('a second npm start in the same folder says which server holds it and exits 1; the first goes on serving', { timeout: 120_000 , ...NOT_THE_TESTS_REDIS }, async (t) => {
  const dir = dataDir(t);
  const first = await ServerProcess.start(t, { DATA_DIR: dir, REDIS_URL: '' });
  const cluster = uniqueCluster('twice');
  assert.equal((await post(first.url, `/v1/clusters/${cluster}/leaders/dispatcher/campaign`, { contenderId: 'a', ttlMs: 60_000 })).status, 200);
  const redis = redisPid(dir);

  const second = spawnSync(process.execPath, serverArgs(), {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dir, REDIS_URL: '', PORT: String(await freePort()), LOG_LEVEL: 'info' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(second.status, 1);
  assert.match(second.stderr, new RegExp(`leasehold: DATA_DIR .* is in use by another leasehold server \\(process ${first.pid}, since .*\\): stop that one first`));
  assert.ok(alive(redis), "the first server's redis-server still runs");
  const read = await get(first.url, `/v1/clusters/${cluster}/leaders/dispatcher`);
  assert.equal(read.status, 200);
  assert.equal(read.body.leader?.contenderId, 'a');
  assert.equal((await fetch(`${first.url}/readyz`)).status, 200);
  assert.equal(await first.signal('SIGTERM'), 0);
  assert.equal(alive(redis), false, 'its redis-server stopped with it');
});

test('a lock left by a server that is gone is taken over', { timeout: 60_000 , ...NOT_THE_TESTS_REDIS }, async (t) => {
  const dir = dataDir(t);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const stale = JSON.stringify({ pid: Number(dead.stdout), since: '2026-01-01T00:00:00.000Z' });
  writeFileSync(join(dir, 'leasehold.lock'), stale);
  const s = await ServerProcess.start(t, { DATA_DIR: dir, REDIS_URL: '' });
  assert.equal(lockHolder(dir), s.pid);
  assert.equal(await s.signal('SIGTERM'), 0);
  assert.throws(() => readFileSync(join(dir, 'leasehold.lock')), /ENOENT/, 'released on a graceful stop');
});

test('the local redis-server killed: it is started again on its AOF and the server serves again within seconds', { timeout: 120_000 , ...NOT_THE_TESTS_REDIS }, async (t) => {
  const dir = dataDir(t);
  const s = await ServerProcess.start(t, { DATA_DIR: dir, REDIS_URL: '' });
  const cluster = uniqueCluster('respawn');
  const g = (await post(s.url, `/v1/clusters/${cluster}/leaders/dispatcher/campaign`, { contenderId: 'a', ttlMs: 120_000 })).body;
  assert.equal(g.granted, true);
  await sleep(1500); // appendfsync everysec
  const before = redisPid(dir);
  process.kill(before, 'SIGKILL');
  const t0 = Date.now();
  await waitFor(async () => (await get(s.url, `/v1/clusters/${cluster}/leaders/dispatcher`)).status === 200 && redisPid(dir) !== before, 15_000, 'reads answer again');
  await ready(s.url, 15_000);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 15_000, `served again after ${elapsed} ms`);
  assert.equal((await get(s.url, `/v1/clusters/${cluster}/leaders/dispatcher`)).body.leader?.sessionId, g.leader.sessionId, 'the lease came back from the AOF');
  assert.ok(s.running, 'the server did not exit');
  const restarted = redisPid(dir);
  assert.ok(alive(restarted));
  assert.equal(await s.signal('SIGTERM'), 0);
  assert.equal(alive(restarted), false, 'the restarted redis-server stopped with the server');
});

test('the local redis-server killed and unable to start again: the server exits 1', { timeout: 120_000 , ...NOT_THE_TESTS_REDIS }, async (t) => {
  const dir = dataDir(t);
  const port = await freePort();
  const s = Proc.spawn(t, process.execPath, serverArgs(), { DATA_DIR: dir, REDIS_URL: '', PORT: String(port) });
  await ready(`http://127.0.0.1:${port}`);
  process.kill(redisPid(dir), 'SIGKILL');
  // A folder where its socket goes: redis-server cannot listen there, so it exits at start.
  await waitFor(() => !alive(redisPid(dir)), 5000, 'redis gone');
  rmSync(join(dir, 'redis.sock'), { force: true });
  mkdirSync(join(dir, 'redis.sock'));
  assert.equal(await s.exited, 1, 'the server exited 1');
  assert.match(s.output, /could not be started again/);
  assert.ok(await fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true), 'no /healthz answers 200 for a server that cannot serve');
});

/** Runs dist/server.js with env until it logs what `re` matches (or exits); answers its output. */
async function serverLog(t: TestContext, env: Record<string, string>, re: RegExp): Promise<{ proc: Proc; match: RegExpMatchArray }> {
  const proc = Proc.spawn(t, process.execPath, serverArgs(), { LOG_LEVEL: 'info', ...env });
  const match = await proc.waitForOutput(re);
  return { proc, match };
}

test('REDIS_URL to a closed port: the log names the address (no password) and the cause, once', { timeout: 60_000 , ...NOT_THE_TESTS_REDIS }, async (t) => {
  const port = await freePort();
  const { proc } = await serverLog(t, { REDIS_URL: `redis://app:s3cret-pass@127.0.0.1:${port}/2`, PORT: '0' }, /redis unavailable at/);
  await sleep(3000); // many retries
  const lines = proc.output.split('\n').filter((l) => l.includes('redis unavailable at'));
  // One line per change of state or cause, not per retry. On a loaded machine the first
  // connect may time out before the refusal arrives: a cause of its own, logged once too.
  const causes = lines.map((l) => JSON.parse(l).cause as string);
  assert.equal(new Set(causes).size, causes.length, `one line per change, not per retry:\n${lines.join('\n')}`);
  const refused = lines.filter((l) => l.includes('ECONNREFUSED'));
  assert.equal(refused.length, 1, lines.join('\n'));
  assert.match(refused[0], new RegExp(`redis unavailable at redis://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/2: .*ECONNREFUSED`));
  assert.doesNotMatch(proc.output, /s3cret-pass/);
  assert.match(proc.output, new RegExp(`"redis":"redis://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/2"`), 'the start log names the Redis');
});

test('REDIS_URL with a database the Redis does not have: refused at start', { timeout: 60_000, skip: onCluster ? 'a Redis Cluster has database 0 only (REDIS_CLUSTER_NODES names none)' : false }, async () => {
  const redis = await RedisProcess.start();
  const r = spawnSync(process.execPath, serverArgs(), {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: `${redis.url}/99`, PORT: '0', LOG_LEVEL: 'info' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /leasehold: invalid configuration: REDIS_URL names database 99, which the Redis at redis:\/\/\S+ does not have \(it has 16: 0 to 15\)/);
});

test('the start log names the URL it listens on (PORT=0 too) and the Redis it uses', { timeout: 60_000 }, async (t) => {
  const redisUrl = await ownRedisUrl();
  // On a Redis Cluster, REDIS_CLUSTER_NODES, named as such.
  const cluster = await clusterEnv(redisUrl);
  const { proc, match } = await serverLog(t, { REDIS_URL: redisUrl, ...cluster, PORT: '0' }, /leasehold listening on (http:\/\/127\.0\.0\.1:(\d+)), Redis ([^"]+)"/);
  assert.notEqual(match[2], '0');
  assert.equal(match[3], cluster ? `redis://Redis Cluster via ${cluster.REDIS_CLUSTER_NODES}` : redisUrl);
  assert.equal((await fetch(`${match[1]}/healthz`)).status, 200, 'it does listen there');
  proc.child.kill('SIGTERM');
  assert.equal(await proc.exited, 0);
});

for (const [what, dir, why] of [
  ['a path under /proc', '/proc/nope', /cannot create \/proc\/nope: ENOENT/],
  ['a file', '/etc/hostname', /cannot use \/etc\/hostname: not a folder/],
] as const) {
  test(`DATA_DIR ${what}: one line, exit 1, at once`, { timeout: 30_000 , ...NOT_THE_TESTS_REDIS }, () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, serverArgs(), {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: '', DATA_DIR: dir, PORT: '0' },
      encoding: 'utf8',
      timeout: 15_000,
    });
    assert.equal(r.status, 1, `exit 1 (signal ${r.signal})`);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^leasehold: DATA_DIR ${dir}: ${why.source}`));
  });
}
