/** The package as others use it: `leasehold/client` built to plain JavaScript with types,
 * and the `leasehold` bin. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const run = promisify(execFile);

test('leasehold/client imports in plain node (no tsx), with its classes', async () => {
  const script = `const m = await import('leasehold/client'); console.log(Object.keys(m).sort().join(','));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  const names = stdout.trim().split(',');
  for (const name of ['LeaseholdClient', 'LeaderElection', 'LeaderRetrieval', 'NotLeaderError', 'FencingError', 'UnavailableError', 'LeadershipLostError']) {
    assert.ok(names.includes(name), `${name} is exported (got ${stdout.trim()})`);
  }
});

test('the package declares the client export with types, and the bin', async () => {
  const pkg = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8'));
  const types = pkg.exports['./client'].types as string;
  assert.match(await readFile(ROOT + types, 'utf8'), /export \{ LeaseholdClient/);
  assert.equal(pkg.bin.leasehold, 'bin/leasehold.js');
});

test('npx leasehold runs the package\'s bin', async () => {
  const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
  const { stdout } = await run(npx, ['--no', '--', 'leasehold', '--help'], { cwd: ROOT });
  assert.match(stdout, /^Usage: leasehold \[options\] \[command\]/);
  assert.match(stdout, /Exit codes:/);
});

test('the Docker image runs the server with the command of npm start (its V8 flags too)', async () => {
  const pkg = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8'));
  const cmd = (await readFile(`${ROOT}Dockerfile`, 'utf8')).match(/^CMD (\[.*\])$/m);
  assert.ok(cmd, 'the Dockerfile has a CMD in exec form');
  assert.equal((JSON.parse(cmd[1]) as string[]).join(' '), pkg.scripts.start);
});
