/** examples/failover/run.ts, run as a user would, against a server of our own. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test, type TestContext } from 'node:test';
import { sharedRedisUrl, startApp, uniqueCluster } from './support/app.js';
import { freePort, stopAllRedis } from './support/redis.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

after(() => stopAllRedis());

/** Runs the example to its end (killed after 60 s): its exit code and all it printed. */
function runExample(t: TestContext, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/failover/run.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the failover example: the leader is killed, the other contender takes over with a larger token', { timeout: 70_000 }, async (t) => {
  const app = await startApp(t, await sharedRedisUrl());
  const { code, output } = await runExample(t, { LEASEHOLD_URL: app.url, LEASEHOLD_CLUSTER: uniqueCluster('example') });
  assert.equal(code, 0, output);

  const first = /^\[(contender-[ab])\] granted token=(\d+)/m.exec(output);
  assert.ok(first, `no grant in:\n${output}`);
  const [, leader, firstToken] = first;
  const survivor = leader === 'contender-a' ? 'contender-b' : 'contender-a';

  const kill = new RegExp(`^\\[run\\] killing ${leader} \\(pid \\d+\\) with SIGKILL$`, 'm').exec(output);
  assert.ok(kill, `no kill of ${leader} in:\n${output}`);
  const after = output.slice(kill.index);
  assert.match(after, new RegExp(`^\\[watcher\\] \\+[\\d.]+s (expired|revoked) dispatcher \\(was ${leader}\\)$`, 'm'));
  const second = new RegExp(`^\\[${survivor}\\] granted token=(\\d+)`, 'm').exec(after);
  assert.ok(second, `no grant of ${survivor} after the kill in:\n${output}`);
  assert.ok(Number(second[1]) > Number(firstToken), `token ${second[1]} should be larger than ${firstToken}`);
  assert.match(after, new RegExp(`^\\[watcher\\] \\+[\\d.]+s granted dispatcher → ${survivor} \\(http://127\\.0\\.0\\.1:\\d+\\) token=${second[1]}$`, 'm'));
  assert.match(after, /^\[run\] takeover [\d.]+ s after the kill/m);

  // The end: the survivor resigns, the watcher sees it, and nothing is left running.
  assert.match(after, new RegExp(`^\\[${survivor}\\] revoked \\(resigned\\)$`, 'm'));
  assert.match(after, new RegExp(`^\\[watcher\\] \\+[\\d.]+s revoked dispatcher \\(was ${survivor}\\)$`, 'm'));
  const pids = [...output.matchAll(/^\[run\] started \S+ \(pid (\d+)\)$/gm)].map((m) => Number(m[1]));
  assert.equal(pids.length, 3);
  assert.deepEqual(pids.filter(alive), []);
});

test('the failover example without a server says how to start one, and exits 2', { timeout: 70_000 }, async (t) => {
  const { code, output } = await runExample(t, { LEASEHOLD_URL: `http://127.0.0.1:${await freePort()}` });
  assert.equal(code, 2, output);
  assert.match(output, /no leasehold server answers at http:\/\/127\.0\.0\.1:\d+ .*\n.*`npm start`/);
});
