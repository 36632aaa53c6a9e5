/**
 * The redis-server a server starts for itself when no REDIS_URL is given: AOF on, data
 * under the data folder, reached through a unix socket there (so it never collides with
 * another Redis on this machine), stopped when the server stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import type { Logger } from 'pino';

const HOW_TO_GET_REDIS =
  'redis-server was not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), ' +
  'or point REDIS_URL at a Redis you run, or use `docker compose up`';

export class LocalRedisError extends Error {}

export interface LocalRedis {
  socketPath: string;
  stop(): Promise<void>;
}

export async function startLocalRedis(dataDir: string, log: Logger): Promise<LocalRedis> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const socketPath = resolve(dir, 'redis.sock');
  if (socketPath.length > 100) throw new LocalRedisError(`data folder path too long for a unix socket: ${dir}`);
  const pidFile = resolve(dir, 'redis.pid');
  await stopLeftover(pidFile, log);

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
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const failed = new Promise<never>((_, rej) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      rej(new LocalRedisError(err.code === 'ENOENT' ? HOW_TO_GET_REDIS : `could not start redis-server: ${err.message}`)),
    );
    void exited.then((code) =>
      rej(new LocalRedisError(`redis-server exited at start (code ${code}); see ${resolve(dir, 'redis.log')}`)),
    );
  });
  await Promise.race([waitForSocket(socketPath, 10_000), failed]);
  log.info({ socketPath, dataDir: dir }, 'started local redis-server (AOF on)');
  return { socketPath, stop: () => stopChild(child, exited) };
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
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
