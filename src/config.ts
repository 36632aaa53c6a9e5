/** Configuration from the environment, validated at start with a clear message. */
import envSchema from 'env-schema';

const schema = {
  type: 'object',
  properties: {
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    REDIS_URL: { type: 'string', pattern: '^(redis|rediss)://' },
    DATA_DIR: { type: 'string', minLength: 1, default: './data' },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    LEASE_TTL_DEFAULT_MS: { type: 'integer', minimum: 1, default: 10_000 },
    LEASE_TTL_MIN_MS: { type: 'integer', minimum: 1, default: 1_000 },
    LEASE_TTL_MAX_MS: { type: 'integer', minimum: 1, default: 300_000 },
    CHANGE_LOG_SIZE: { type: 'integer', minimum: 10, maximum: 100_000, default: 1_000 },
    REDIS_COMMAND_TIMEOUT_MS: { type: 'integer', minimum: 50, maximum: 60_000, default: 750 },
    REDIS_HEALTH_INTERVAL_MS: { type: 'integer', minimum: 50, maximum: 60_000, default: 500 },
    WS_HEARTBEAT_MS: { type: 'integer', minimum: 100, maximum: 600_000, default: 15_000 },
    LONG_POLL_DEFAULT_WAIT_MS: { type: 'integer', minimum: 0, maximum: 300_000, default: 30_000 },
    SHUTDOWN_GRACE_MS: { type: 'integer', minimum: 0, maximum: 600_000, default: 10_000 },
  },
} as const;

interface Env {
  PORT: number;
  HOST: string;
  REDIS_URL?: string;
  DATA_DIR: string;
  LOG_LEVEL: string;
  LEASE_TTL_DEFAULT_MS: number;
  LEASE_TTL_MIN_MS: number;
  LEASE_TTL_MAX_MS: number;
  CHANGE_LOG_SIZE: number;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_HEALTH_INTERVAL_MS: number;
  WS_HEARTBEAT_MS: number;
  LONG_POLL_DEFAULT_WAIT_MS: number;
  SHUTDOWN_GRACE_MS: number;
}

export interface Config {
  port: number;
  host: string;
  /** Unset: the server starts its own redis-server, keeping its data under dataDir. */
  redisUrl?: string;
  dataDir: string;
  logLevel: string;
  leaseTtl: { defaultMs: number; minMs: number; maxMs: number };
  changeLogSize: number;
  redisCommandTimeoutMs: number;
  redisHealthIntervalMs: number;
  wsHeartbeatMs: number;
  longPollDefaultWaitMs: number;
  shutdownGraceMs: number;
}

export class ConfigError extends Error {}

/** Reads the configuration; throws ConfigError naming what is wrong. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  let e: Env;
  try {
    // An empty variable counts as unset, as in most env files.
    const data = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
    e = envSchema<Env>({ schema, data, env: false, dotenv: false });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  if (!(e.LEASE_TTL_MIN_MS <= e.LEASE_TTL_DEFAULT_MS && e.LEASE_TTL_DEFAULT_MS <= e.LEASE_TTL_MAX_MS)) {
    throw new ConfigError(
      'invalid configuration: LEASE_TTL_MIN_MS <= LEASE_TTL_DEFAULT_MS <= LEASE_TTL_MAX_MS must hold',
    );
  }
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
    leaseTtl: { defaultMs: e.LEASE_TTL_DEFAULT_MS, minMs: e.LEASE_TTL_MIN_MS, maxMs: e.LEASE_TTL_MAX_MS },
    changeLogSize: e.CHANGE_LOG_SIZE,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    redisHealthIntervalMs: e.REDIS_HEALTH_INTERVAL_MS,
    wsHeartbeatMs: e.WS_HEARTBEAT_MS,
    longPollDefaultWaitMs: e.LONG_POLL_DEFAULT_WAIT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
  };
}
