/** The package as others use it: `leasehold/client` built to plain JavaScript with types,
 * the `leasehold` bin, the compiled server and what the package and the Docker image hold. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
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
  assert.equal((JSON.parse(cmd[1]) as string[]).join(' '), pkg.scripts.start.replace(/^exec /, ''));
});

test('the Docker image runs compiled JavaScript: built in one stage, run in another without the dev dependencies', async () => {
  const dockerfile = await readFile(`${ROOT}Dockerfile`, 'utf8');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  assert.equal(stages.length, 2, 'a build stage and a runtime stage');
  const [build, runtime] = stages;
  assert.match(build, /^RUN npm ci\b/m);
  assert.match(build, /^RUN npm run build$/m);
  assert.match(runtime, /^RUN npm ci --omit=dev\b/m);
  assert.match(runtime, /^COPY --from=build \/app\/dist \.\/dist$/m);
  // What the compiled server reads beside itself at runtime.
  assert.match(runtime, /^COPY package\.json package-lock\.json \.\/$/m);
  assert.match(runtime, /^COPY openapi\.yaml \.\/$/m);
  assert.doesNotMatch(runtime, /^COPY (--\S+ )*src\b/m, 'no TypeScript in the runtime stage');
  assert.doesNotMatch(runtime, /tsx/, 'no tsx in the runtime stage');
});

test('the Docker image: built and run on a Node LTS that package.json engines names, with the CLI on the PATH', async () => {
  const pkg = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8'));
  const dockerfile = await readFile(`${ROOT}Dockerfile`, 'utf8');
  const majors = [...dockerfile.matchAll(/^FROM node:(\d+)-/gm)].map((m) => Number(m[1]));
  assert.equal(majors.length, 2);
  for (const major of majors) {
    assert.ok([22, 24].includes(major), `node ${major} is a supported LTS`);
    assert.match(pkg.engines.node, new RegExp(`\\^${major}\\.`), `engines names node ${major}`);
  }
  const runtime = dockerfile.split(/^FROM /m)[2];
  assert.match(runtime, /^RUN ln -s \/app\/bin\/leasehold\.js \/usr\/local\/bin\/leasehold$/m);
  assert.match(runtime, /^COPY bin \.\/bin$/m);
});

test('a LICENSE file with the Apache License 2.0 that package.json names', async () => {
  const pkg = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8'));
  assert.equal(pkg.license, 'Apache-2.0');
  const license = await readFile(`${ROOT}LICENSE`, 'utf8');
  assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
  assert.match(license, /END OF TERMS AND CONDITIONS/);
});

/** Every .js file under dist/. */
async function compiled(dir = `${ROOT}dist`): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => `${e.parentPath ?? e.path}/${e.name}`);
}

test('the compiled code imports only node\'s modules, its own files and the runtime dependencies', async () => {
  const pkg = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8'));
  const runtime = new Set(Object.keys(pkg.dependencies));
  assert.ok(!runtime.has('tsx') && !runtime.has('typescript'), 'tsx and typescript are dev dependencies');
  const files = await compiled();
  assert.ok(files.some((f) => f.endsWith('/dist/server.js')) && files.some((f) => f.endsWith('/dist/cli/main.js')));
  const outside: string[] = [];
  for (const file of files) {
    const code = await readFile(file, 'utf8');
    // import … from 'x', export … from 'x', import 'x', import('x'): tsc writes single quotes as
    // written. A specifier has no white space, which tells it from a string that follows "from".
    for (const m of code.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^'\s]+)'|(?:^|\n)\s*import\s+'([^'\s]+)'|\bimport\(\s*'([^'\s]+)'\s*\)/g)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec || spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      if (!runtime.has(name)) outside.push(`${file.slice(ROOT.length)}: ${spec}`);
    }
  }
  assert.deepEqual(outside, [], 'imports of packages that are not runtime dependencies');
});

test('the build copies every Lua script the server reads beside its compiled modules', async () => {
  const lua = async (dir: string) =>
    (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.lua')).sort();
  const sources = await lua(`${ROOT}src/ha/scripts`);
  assert.ok(sources.includes('campaign.lua') && sources.some((f) => f.startsWith('lib')));
  assert.deepEqual(await lua(`${ROOT}dist/ha/scripts`), sources);
});

test('the package holds the compiled server, the CLI, the SDK with its types and the OpenAPI document; no TypeScript sources', async () => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 16 << 20 });
  const files = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path));
  for (const f of ['package.json', 'bin/leasehold.js', 'dist/server.js', 'dist/cli/main.js', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/ha/scripts/campaign.lua', 'dist/ha/scripts/lib/store.lua', 'openapi.yaml']) {
    assert.ok(files.has(f), `${f} is in the package`);
  }
  assert.deepEqual([...files].filter((f) => /^(src|test|bench|chaos|scripts)\//.test(f)), []);
});
