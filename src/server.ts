/**
 * A leasehold server as a process: `startServer(config)` starts a local redis-server when no
 * REDIS_URL is given, builds the app and listens; `runServer(config)` does the same and
 * shuts down gracefully on SIGTERM/SIGINT (websockets closed with 1001, requests in flight
 * finished, Redis connections closed; nothing deleted). Run directly, this module is the
 * server `npm start` runs.
 */
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { serverLogger as telemetryLogger } from './telemetry.js';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import type { App } from './http/types.js';
import { LocalRedisError, startLocalRedis, type LocalRedis } from './localRedis.js';

export interface RunningServer {
  app: App;
  /** Where it listens, e.g. http://127.0.0.1:8080 (the real port when PORT is 0). */
  url: string;
  /** Closes the app, then stops the local redis-server if it started one. */
  stop(): Promise<void>;
}

export async function startServer(config: Config, log: Logger = serverLogger(config)): Promise<RunningServer> {
  let local: LocalRedis | undefined;
  if (!config.redis) local = await startLocalRedis(config.dataDir, log);

  let app: App | undefined;
  const stop = async () => {
    await app?.close();
    await local?.stop();
  };
  try {
    app = await buildApp({ config, redis: local ? { path: local.socketPath } : undefined, logger: log });
    if (config.tokens.length === 0) log.warn('no access tokens are configured: the API is open to anyone who can reach it, as admin');
    else log.info({ tokens: config.tokens.map((t) => ({ name: t.name, role: t.role, clusters: t.clusters })) }, 'access tokens');
    const url = await app.listen({ port: config.port, host: config.host });
    return { app, url, stop };
  } catch (err) {
    log.error({ err }, 'could not start');
    await stop();
    throw err;
  }
}

/** Starts a server and owns the process: exits 0 after a graceful stop on a signal. */
export async function runServer(config: Config): Promise<void> {
  const log = serverLogger(config);
  const server = await startServer(config, log);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown grace period over: exiting');
      process.exit(1);
    }, config.shutdownGraceMs);
    force.unref();
    await server.stop();
    process.exit(0);
  };
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
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
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

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
