/**
 * A leasehold server as a process: `startServer(config)` starts a local redis-server when no
 * REDIS_URL is given, builds the app and listens; `runServer(config)` does the same and
 * shuts down gracefully on SIGTERM/SIGINT (websockets closed with 1001, requests in flight
 * finished, Redis connections closed; nothing deleted), and exits 1 if its local
 * redis-server dies for good. Run directly, this module is the server `npm start` runs.
 */
import { pathToFileURL } from 'node:url';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { serverLogger as telemetryLogger } from './telemetry.js';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { describeRedis, type RedisConfig } from './ha/redisLink.js';
import type { App } from './http/types.js';
import { LocalRedisError, startLocalRedis, type LocalRedis } from './localRedis.js';
import { stopWithNpm } from './npmParent.js';

export interface RunningServer {
  app: App;
  /** Where it listens, e.g. http://127.0.0.1:8080 (the real port when PORT is 0). */
  url: string;
  /** Closes the app, then stops the local redis-server if it started one. */
  stop(): Promise<void>;
  /** Rejects if the local redis-server died and could not be started again; never settles
   * otherwise. */
  failed: Promise<never>;
}

export async function startServer(config: Config, log: Logger = serverLogger(config)): Promise<RunningServer> {
  if (config.redis) await checkDatabase(config.redis);
  let local: LocalRedis | undefined;
  if (!config.redis) local = await startLocalRedis(config.dataDir, log);
  const redis: RedisConfig = local ? { path: local.socketPath } : config.redis!;

  let app: App | undefined;
  const stop = async () => {
    await app?.close();
    await local?.stop();
  };
  try {
    app = await buildApp({ config, redis, logger: log });
    if (config.tokens.length === 0) log.warn('no access tokens are configured: the API is open to anyone who can reach it, as admin');
    else log.info({ tokens: config.tokens.map((t) => ({ name: t.name, role: t.role, clusters: t.clusters })) }, 'access tokens');
    const url = await app.listen({ port: config.port, host: config.host });
    log.info({ url, redis: describeRedis(redis), localRedis: Boolean(local) }, `leasehold listening on ${url}, Redis ${describeRedis(redis)}`);
    return { app, url, stop, failed: local?.failed ?? new Promise<never>(() => {}) };
  } catch (err) {
    log.error({ err }, 'could not start');
    await stop();
    throw err;
  }
}

/** Starts a server and owns the process: exits 0 after a graceful stop on a signal, 1 when
 * its local redis-server is gone for good. */
export async function runServer(config: Config): Promise<void> {
  const log = serverLogger(config);
  let server: RunningServer | undefined;
  let stopping: string | null = null;
  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = why;
    log.info({ signal: why }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown grace period over: exiting');
      process.exit(1);
    }, config.shutdownGraceMs);
    force.unref();
    await server?.stop();
    process.exit(code);
  };
  // Installed before the start, so that a signal during it (a local redis-server starting)
  // still stops what was started rather than leave it behind.
  process.on('SIGTERM', () => void (server ? stop('SIGTERM', 0) : (stopping ??= 'SIGTERM')));
  process.on('SIGINT', () => void (server ? stop('SIGINT', 0) : (stopping ??= 'SIGINT')));
  stopWithNpm();
  server = await startServer(config, log);
  if (stopping) {
    const signal = stopping;
    stopping = null;
    await stop(signal, 0);
  }
  server.failed.catch((err: Error) => {
    log.fatal({ err: err.message }, 'giving up: the local redis-server is gone');
    void stop('local redis-server gone', 1);
  });
  // Running out of files is a passing state (connections close; the cap keeps it rare), not
  // a reason to drop every client: whatever threw it (a timer, a stat of a file) is logged and
  // the process goes on. Anything else thrown out of a callback ends it, as by default.
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') {
      log.error({ err }, 'out of file descriptors; going on');
      return;
    }
    log.fatal({ err }, 'uncaught exception: exiting');
    process.exit(1);
  });
}

function serverLogger(config: Config): Logger {
  return telemetryLogger({ level: config.logLevel, pretty: config.logPretty, redact: ['req.headers.authorization'] });
}

/** Runs the server from the environment's configuration; a bad configuration exits 1. */
export async function main(): Promise<void> {
  try {
    await runServer(loadConfig());
  } catch (err) {
    if (err instanceof ConfigError || err instanceof LocalRedisError) console.error(`leasehold: ${err.message}`);
    // Anything else was logged by startServer ('could not start').
    process.exit(1);
  }
}

/** A database number the Redis does not have is refused at start: ioredis would go on in
 * database 0 (with an error event only). A Redis not reachable yet is left to the link,
 * which logs why and keeps trying. */
async function checkDatabase(redis: RedisOptions): Promise<void> {
  if (!redis.db) return;
  const probe = new Redis({ ...redis, db: 0, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000, commandTimeout: 3000 });
  probe.on('error', () => {});
  try {
    // Bounded: through Sentinels that do not answer, connect() would wait for good.
    await Promise.race([probe.connect(), new Promise((_, rej) => setTimeout(rej, 5000).unref())]);
  } catch {
    probe.disconnect();
    return;
  }
  try {
    await probe.select(redis.db);
  } catch (err) {
    const message = (err as Error).message;
    if (/DB index/i.test(message)) {
      const databases = await probe.config('GET', 'databases').then((r) => (r as string[])[1], () => null);
      throw new ConfigError(
        `invalid configuration: REDIS_URL names database ${redis.db}, which the Redis at ${describeRedis({ ...redis, db: 0 })} does not have${databases ? ` (it has ${databases}: 0 to ${Number(databases) - 1})` : ''}: ${message}`,
      );
    }
  } finally {
    probe.disconnect();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
