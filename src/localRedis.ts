/**
 * The redis-server a server starts for itself when no REDIS_URL is given: AOF on, data
 * under the data folder, reached through a unix socket there (so it never collides with
 * another Redis on this machine), stopped when the server stops.
 *
 * The data folder is the server's alone while it runs: a lock file there (leasehold.lock,
 * its process id) turns a second server away before it touches anything, and is taken over
 * from a process that is gone. If the redis-server dies, it is started again on the same
 * AOF (the server's Redis link then finds it back, and resynchronises as after any restart
 * of Redis); only when that fails RESTART_ATTEMPTS times in a row is the server told to give
 * up (`failed`), so that a supervisor sees a process that exits rather than one that
 * answers 503 for good.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';

const HOW_TO_GET_REDIS =
  'redis-server was not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), ' +
  'or point REDIS_URL at a Redis you run, or use `docker compose up`';

/** Restarts tried in a row before giving up, and the pause before each (ms, doubled each time). */
const RESTART_ATTEMPTS = 5;
const RESTART_DELAY_MS = 200;
const START_TIMEOUT_MS = 10_000;

export class LocalRedisError extends Error {}

export interface LocalRedis {
  socketPath: string;
  /** Settles (rejects) only if the redis-server died and could not be started again. */
  failed: Promise<never>;
  stop(): Promise<void>;
}

export async function startLocalRedis(dataDir: string, log: Logger): Promise<LocalRedis> {
  const dir = dataFolder(dataDir);
  const socketPath = resolve(dir, 'redis.sock');
  if (socketPath.length > 100) throw new LocalRedisError(`DATA_DIR: the path is too long for a unix socket (${socketPath.length} > 100 characters): ${dir}`);
  const pidFile = resolve(dir, 'redis.pid');
  const unlock = lockDataFolder(dir, log);
  let stopping = false;
  let child: Running;
  try {
    // Ours alone now: a redis-server still running on this AOF was left by a server that was
    // killed (SIGKILL leaves no time to stop it).
    await stopLeftover(pidFile, log);
    child = await launch(dir, socketPath, pidFile);
  } catch (err) {
    unlock();
    throw err;
  }
  log.info({ socketPath, dataDir: dir, pid: child.process.pid }, 'started local redis-server (AOF on)');

  let giveUp: (err: LocalRedisError) => void = () => {};
  const failed = new Promise<never>((_, rej) => (giveUp = rej));
  failed.catch(() => {}); // a server that never asks still must not crash on it

  const supervise = (current: Running): void => {
    void current.exited.then(async ({ code, signal }) => {
      if (stopping) return;
      log.error({ code, signal, log: resolve(dir, 'redis.log') }, 'the local redis-server exited: starting it again on its AOF');
      for (let attempt = 1; attempt <= RESTART_ATTEMPTS && !stopping; attempt++) {
        await new Promise((r) => setTimeout(r, RESTART_DELAY_MS * 2 ** (attempt - 1)));
        if (stopping) return;
        try {
          child = await launch(dir, socketPath, pidFile);
        } catch (err) {
          log.error({ attempt, err: (err as Error).message }, 'could not start the local redis-server again');
          continue;
        }
        if (stopping) {
          await stopChild(child);
          return;
        }
        log.info({ attempt, pid: child.process.pid }, 'local redis-server started again (AOF reloaded)');
        supervise(child);
        return;
      }
      if (!stopping) giveUp(new LocalRedisError(`the local redis-server died and could not be started again (${RESTART_ATTEMPTS} attempts); see ${resolve(dir, 'redis.log')}`));
    });
  };
  supervise(child);

  return {
    socketPath,
    failed,
    stop: async () => {
      stopping = true;
      await stopChild(child);
      unlock();
    },
  };
}

interface Running {
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function launch(dir: string, socketPath: string, pidFile: string): Promise<Running> {
  const child = spawn(
    'redis-server',
    [
      '--port', '0',
      '--unixsocket', socketPath,
      '--unixsocketperm', '700',
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', 'everysec',
      '--save', '',
      '--pidfile', pidFile,
      '--logfile', 'redis.log',
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const failed = new Promise<never>((_, rej) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      rej(new LocalRedisError(err.code === 'ENOENT' ? HOW_TO_GET_REDIS : `could not start redis-server: ${err.message}`)),
    );
    void exited.then(({ code }) =>
      rej(new LocalRedisError(`redis-server exited at start (code ${code}); see ${resolve(dir, 'redis.log')}`)),
    );
  });
  failed.catch(() => {});
  try {
    await Promise.race([waitForSocket(socketPath, START_TIMEOUT_MS), failed]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { process: child, exited };
}

async function stopChild({ process: child, exited }: Running): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The data folder, created if missing; any problem is one line naming DATA_DIR. */
function dataFolder(dataDir: string): string {
  const dir = resolve(dataDir);
  const fail = (path: string, err: unknown, doing = 'use'): never => {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'not a folder' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'not writable' : (code ?? (err as Error).message);
    throw new LocalRedisError(`DATA_DIR ${dataDir}: cannot ${doing} ${path}: ${why}`);
  };
  // One level at a time (mkdirSync's recursive mode loops forever under /proc on Node 20).
  const missing: string[] = [];
  for (let p = dir; ; p = dirname(p)) {
    try {
      if (!statSync(p).isDirectory()) fail(p, { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if (err instanceof LocalRedisError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(p) === p) fail(p, err);
      missing.unshift(p);
    }
  }
  for (const p of missing) {
    try {
      mkdirSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') fail(p, err, 'create');
    }
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    fail(dir, err);
  }
  return dir;
}

interface LockHolder {
  pid: number;
  since: string;
}

/** Takes the data folder's lock, or says who holds it; answers the release. */
function lockDataFolder(dir: string, log: Logger): () => void {
  const path = resolve(dir, 'leasehold.lock');
  const mine = JSON.stringify({ pid: process.pid, since: new Date().toISOString() } satisfies LockHolder);
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(path, mine, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries >= 5) {
        throw new LocalRedisError(`DATA_DIR ${dir}: cannot create its lock file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
    }
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    const holder = parseHolder(text);
    if (holder && holder.pid !== process.pid && isServer(holder.pid)) {
      throw new LocalRedisError(
        `DATA_DIR ${dir} is in use by another leasehold server (process ${holder.pid}, since ${holder.since}): stop that one first, or set DATA_DIR to another folder`,
      );
    }
    const written = statSync(path, { throwIfNoEntry: false })?.mtimeMs;
    if (written === undefined) continue;
    if (!holder && Date.now() - written < 2000) {
      // Being written by a server starting right now: look again.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      continue;
    }
    // Its holder is gone: move the file aside, and put it back if it was not the stale one
    // (another start took it over between our read and the move).
    const aside = `${path}.${process.pid}`;
    try {
      renameSync(path, aside);
    } catch {
      continue;
    }
    if (readFileSync(aside, 'utf8') !== text) {
      try {
        linkSync(aside, path);
      } catch {
        // the other start's lock is back or replaced by a third: either way not ours
      }
      unlinkSync(aside);
      continue;
    }
    unlinkSync(aside);
    log.warn({ stalePid: holder?.pid ?? null }, 'took over the data folder lock of a server that is gone');
  }
  const release = () => {
    try {
      if (readFileSync(path, 'utf8') === mine) unlinkSync(path);
    } catch {
      // gone already
    }
  };
  // process.exit (a forced shutdown) skips stop(): the lock goes with the process anyway.
  process.once('exit', release);
  return () => {
    process.off('exit', release);
    release();
  };
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder;
    return Number.isInteger(h.pid) && h.pid > 0 ? h : null;
  } catch {
    return null;
  }
}

/** Whether pid is a live process that may be a server (node); where /proc tells, a process
 * id reused by another program (after a reboot) is not. */
function isServer(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return true;
  }
}

/** A redis-server left running by a server that was killed would share our AOF: stop it. */
async function stopLeftover(pidFile: string, log: Logger): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  const cmdline = existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : 'redis-server';
  if (!cmdline.includes('redis-server')) return;
  log.warn({ pid }, 'stopping a redis-server left over from an earlier run');
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForSocket(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(path);
      s.once('connect', () => s.write('PING\r\n'));
      s.once('data', (d) => {
        s.destroy();
        res(d.toString().startsWith('+PONG'));
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new LocalRedisError(`redis-server did not answer on ${path}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
