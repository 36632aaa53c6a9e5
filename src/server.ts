/**
 * Starts a leasehold server: reads the configuration, starts a local redis-server when no
 * REDIS_URL is given, listens, and on SIGTERM/SIGINT shuts down gracefully (websockets
 * closed with 1001, requests in flight finished, Redis connections closed; nothing
 * deleted).
 */
import pino from 'pino';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { LocalRedisError, startLocalRedis, type LocalRedis } from './localRedis.js';

async function main(config: Config): Promise<void> {
  const log = pino({ level: config.logLevel, redact: ['req.headers.authorization'] });
  let local: LocalRedis | undefined;
  if (!config.redis) local = await startLocalRedis(config.dataDir, log);

  const app = await buildApp({
    config,
    redis: local ? { path: local.socketPath } : undefined,
    logger: log,
  });
  if (config.tokens.length === 0) log.warn('no access tokens are configured: the API is open to anyone who can reach it, as admin');
  else log.info({ tokens: config.tokens.map((t) => ({ name: t.name, role: t.role, clusters: t.clusters })) }, 'access tokens');

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
    await app.close();
    await local?.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    log.error({ err }, 'could not listen');
    await app.close();
    await local?.stop();
    process.exit(1);
  }
}

try {
  await main(loadConfig());
} catch (err) {
  if (err instanceof ConfigError || err instanceof LocalRedisError) {
    console.error(`leasehold: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
