#!/usr/bin/env node
/**
 * `npm run build`: compiles src/ to dist/ (tsconfig.build.json: the server, the CLI and the
 * SDK with its types) and copies beside the modules the files they read at runtime (the Lua
 * scripts of src/ha/scripts), and bundles the operator console (ui/) into dist/ui. dist/ is
 * emptied first, so nothing of a removed source lingers; dist/.built is written last, once everything else is in place.
 *
 * `--if-stale` (npm start's prestart; bin/leasehold.js and the tests' server processes do
 * the same in a checkout): builds only when dist/.built is missing or older than a file under
 * src/ or a tsconfig, so that nothing runs JavaScript older than its sources, and costs a few
 * milliseconds when the build is current. tsc writes to stderr here, never to stdout, which
 * may be a CLI's output.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.built');
/** Held (by process id) while a build runs: CLI processes started together share one build. */
const LOCK = join(ROOT, '.build.lock');
/** Folders of src/ read at runtime that hold more than TypeScript: copied to dist/, less the .ts. */
const ASSETS = ['ha/scripts'];
/** What the build depends on. */
const INPUTS = ['src', 'ui', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.js'];
/** The operator console (ui/), bundled by esbuild into dist/ui, which the server serves at /ui. */
const UI = join(ROOT, 'ui');
const UI_OUT = join(DIST, 'ui');
/** The browsers the console is built for: those of the last two years or so. */
const UI_TARGETS = ['chrome110', 'firefox115', 'safari16'];

function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a file removed or renamed changes its folder's mtime
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** Whether dist/ is missing or older than its sources. */
export function stale() {
  if (!existsSync(STAMP)) return true;
  const built = statSync(STAMP).mtimeMs;
  return INPUTS.some((p) => existsSync(join(ROOT, p)) && newestMtime(join(ROOT, p)) > built);
}

/** Builds dist/ from scratch; throws when tsc fails (its errors are on stderr). */
export function build() {
  withLock(compile);
}

/** Builds when stale(); says so on stderr. One that waited for another's build to finish
 * builds only if that one did not. */
export function buildIfStale() {
  if (!stale()) return;
  withLock(() => {
    if (!stale()) return;
    process.stderr.write('leasehold: dist/ is missing or older than src/: building it (npm run build)\n');
    compile();
  });
}

function compile() {
  rmSync(DIST, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  } catch {
    throw new Error('the build failed: tsc -p tsconfig.build.json (its errors are above)');
  }
  for (const dir of ASSETS) {
    cpSync(join(ROOT, 'src', dir), join(DIST, dir), { recursive: true, filter: (src) => statSync(src).isDirectory() || !src.endsWith('.ts') });
  }
  buildUi();
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

/** The console: one minified script (preact included) and one stylesheet, with its page and
 * icon; nothing is fetched from elsewhere at runtime. esbuild does not check types: npm test
 * does (tsc -p ui). */
function buildUi() {
  const esbuild = createRequire(import.meta.url)('esbuild');
  const common = { absWorkingDir: ROOT, bundle: true, minify: true, target: UI_TARGETS, logLevel: 'error', legalComments: 'none' };
  try {
    esbuild.buildSync({ ...common, entryPoints: [join(UI, 'src/main.tsx')], outfile: join(UI_OUT, 'app.js'), format: 'esm', tsconfig: join(UI, 'tsconfig.json') });
    esbuild.buildSync({ ...common, entryPoints: [join(UI, 'style.css')], outfile: join(UI_OUT, 'app.css') });
  } catch {
    throw new Error('the build failed: esbuild could not bundle ui/ (its errors are above)');
  }
  for (const file of ['index.html', 'icon.svg']) cpSync(join(UI, file), join(UI_OUT, file));
}

/** Runs fn holding LOCK; waits while a live process holds it, takes it from a dead one. */
function withLock(fn) {
  for (;;) {
    try {
      writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (abandoned()) rmSync(LOCK, { force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    fn();
  } finally {
    rmSync(LOCK, { force: true });
  }
}

/** Whether LOCK is held by a process that is gone (a lock still without its pid, being
 * written, is not, unless it has been so for seconds). */
function abandoned() {
  try {
    const pid = Number(readFileSync(LOCK, 'utf8'));
    return pid ? !alive(pid) : Date.now() - statSync(LOCK).mtimeMs > 5000;
  } catch (err) {
    if (err.code === 'ENOENT') return false; // released meanwhile: try again
    throw err;
  }
}

function alive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    if (process.argv.includes('--if-stale')) buildIfStale();
    else build();
  } catch (err) {
    console.error(`leasehold: ${err.message}`);
    process.exit(1);
  }
}
