/** Configuration from the environment, validated at start with a clear message. */
import { readFileSync } from 'node:fs';
import envSchema from 'env-schema';
import type { RedisOptions } from 'ioredis';
import type { Quotas } from './ha/index.js';

export const ROLES = ['read', 'contend', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenGrant {
  /** Names the token in logs and errors; the token itself is never logged. */
  name: string;
  token: string;
  role: Role;
  /** Cluster ids it may touch; `*` for all. */
  clusters: string[];
}

export interface ProtectionOptions {
  /** Shed when the event loop's mean delay passes this (ms); 0: never. */
  shedEventLoopDelayMs: number;
  /** Shed when the event loop is busier than this share of the time (0–1); 0: never. */
  shedEventLoopUtilization: number;
  /** Requests per client (its token's name, else its address) per window; 0: no limit. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** Heavy reads (store lists, plans, blobs) one client (its token's name, else its
   * address) may have running at once; 0: no limit (heavyReads.ts). */
  heavyReadsPerClient: number;
  /** How long a heavy read beyond that waits for a slot before it is refused (429). */
  heavyReadWaitMs: number;
  /** Bytes a second one client's heavy reads are sent at, all of them together (a token
   * bucket; answers are paced, never refused); 0: no limit (heavyReads.ts). */
  heavyReadBytesPerSec: number;
}

/** What one client connection may hold of the server (docs/operations.md, Connections). */
export interface ConnectionOptions {
  /** The most open connections; 0: derived from the process's file limit at start. Never
   * more than that limit allows. */
  maxConnections: number;
  /** Until a request's headers are complete, from the moment the connection opens. */
  headersTimeoutMs: number;
  /** Until a request (headers and body) is complete. */
  requestTimeoutMs: number;
  /** An idle kept-alive connection between requests. */
  keepAliveTimeoutMs: number;
  /** The longest pause within a request's body. */
  bodyIdleTimeoutMs: number;
}

const MIB = 1024 * 1024;
/** Quotas travel to the scripts as Lua numbers, which print exactly up to 1e14. */
const MAX_QUOTA = 1e14;
/** The most checkpoints a job may retain. */
export const MAX_RETAINED = 1000;

const schema = {
  type: 'object',
  properties: {
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    REDIS_URL: { type: 'string', pattern: '^(redis|rediss)://' },
    DATA_DIR: { type: 'string', minLength: 1, default: './data' },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    LOG_PRETTY: { type: 'string', enum: ['', '0', '1', 'false', 'true'], default: '' },
    NODE_ENV: { type: 'string', default: '' },
    METRICS_CLUSTER_LABELS_MAX: { type: 'integer', minimum: 0, maximum: 10_000, default: 100 },
    LEASE_TTL_DEFAULT_MS: { type: 'integer', minimum: 1, default: 10_000 },
    LEASE_TTL_MIN_MS: { type: 'integer', minimum: 1, default: 1_000 },
    LEASE_TTL_MAX_MS: { type: 'integer', minimum: 1, default: 300_000 },
    CHANGE_LOG_SIZE: { type: 'integer', minimum: 10, maximum: 100_000, default: 1_000 },
    HISTORY_MAX_ENTRIES: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 10_000 },
    HISTORY_MAX_AGE_MS: { type: 'integer', minimum: 1000, maximum: 10 * 365 * 86_400_000, default: 30 * 86_400_000 },
    REDIS_COMMAND_TIMEOUT_MS: { type: 'integer', minimum: 50, maximum: 60_000, default: 750 },
    REDIS_HEALTH_INTERVAL_MS: { type: 'integer', minimum: 50, maximum: 60_000, default: 500 },
    REDIS_MIN_REPLICAS_ACK: { type: 'string', pattern: '^(auto|[0-9]{1,2})$', default: 'auto' },
    REDIS_ACK_TIMEOUT_MS: { type: 'integer', minimum: 10, maximum: 60_000, default: 500 },
    WS_HEARTBEAT_MS: { type: 'integer', minimum: 100, maximum: 600_000, default: 15_000 },
    LONG_POLL_DEFAULT_WAIT_MS: { type: 'integer', minimum: 0, maximum: 300_000, default: 30_000 },
    SHUTDOWN_GRACE_MS: { type: 'integer', minimum: 0, maximum: 600_000, default: 10_000 },
    PLAN_MAX_BYTES: { type: 'integer', minimum: 1, maximum: 512 * MIB, default: 32 * MIB },
    BLOB_MAX_BYTES: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 1024 * MIB },
    STORE_BODY_MAX_BYTES: { type: 'integer', minimum: 1024, maximum: 512 * MIB, default: 4 * MIB },
    CHECKPOINTS_MAX_RETAINED: { type: 'integer', minimum: 1, maximum: MAX_RETAINED, default: 1 },
    CHECKPOINTS_MAX_RETAINED_BY_CLUSTER: { type: 'string', default: '' },
    IDEMPOTENCY_TTL_MS: { type: 'integer', minimum: 1000, maximum: 30 * 86_400_000, default: 86_400_000 },
    QUOTA_JOB_RESULTS: { type: 'integer', minimum: 1, maximum: MAX_QUOTA, default: 100_000 },
    QUOTA_EXECUTION_PLANS: { type: 'integer', minimum: 1, maximum: MAX_QUOTA, default: 10_000 },
    QUOTA_BLOBS: { type: 'integer', minimum: 1, maximum: MAX_QUOTA, default: 100_000 },
    QUOTA_BLOB_BYTES: { type: 'integer', minimum: 1, maximum: MAX_QUOTA, default: 8 * 1024 * MIB },
    QUOTA_IDEMPOTENCY_RECORDS: { type: 'integer', minimum: 1, maximum: MAX_QUOTA, default: 100_000 },
    QUOTA_JOB_MANAGERS: { type: 'integer', minimum: 1, maximum: MAX_QUOTA, default: 1000 },
    VIEWS_MAX: { type: 'integer', minimum: 1, maximum: 10_000_000, default: 10_000 },
    ADMIN_TOKENS: { type: 'string', pattern: '^([\\x21-\\x2B\\x2D-\\x7E]{16,})?(,[\\x21-\\x2B\\x2D-\\x7E]{16,})*$', default: '' },
    AUTH_TOKENS: { type: 'string', default: '' },
    AUTH_TOKENS_FILE: { type: 'string', default: '' },
    WS_ALLOWED_ORIGINS: { type: 'string', default: '' },
    TLS_CERT_FILE: { type: 'string', default: '' },
    TLS_KEY_FILE: { type: 'string', default: '' },
    REDIS_TLS_CA_FILE: { type: 'string', default: '' },
    REDIS_SENTINELS: { type: 'string', pattern: '^([^,:]+:[0-9]{1,5})?(,[^,:]+:[0-9]{1,5})*$', default: '' },
    REDIS_SENTINEL_NAME: { type: 'string', minLength: 1, default: 'mymaster' },
    REDIS_SENTINEL_PASSWORD: { type: 'string', default: '' },
    SHED_EVENT_LOOP_DELAY_MS: { type: 'integer', minimum: 0, maximum: 60_000, default: 1000 },
    SHED_EVENT_LOOP_UTILIZATION: { type: 'number', minimum: 0, maximum: 1, default: 0 },
    RATE_LIMIT_MAX: { type: 'integer', minimum: 0, default: 0 },
    RATE_LIMIT_WINDOW_MS: { type: 'integer', minimum: 1, maximum: 3_600_000, default: 1000 },
    HEAVY_READS_PER_CLIENT: { type: 'integer', minimum: 0, maximum: 10_000, default: 4 },
    HEAVY_READ_WAIT_MS: { type: 'integer', minimum: 0, maximum: 600_000, default: 2000 },
    HEAVY_READ_BYTES_PER_SEC: { type: 'integer', minimum: 0, default: 16 * 1024 * 1024 },
    MAX_CONNECTIONS: { type: 'integer', minimum: 0, default: 0 },
    HTTP_HEADERS_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 600_000, default: 10_000 },
    HTTP_REQUEST_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 86_400_000, default: 300_000 },
    HTTP_KEEP_ALIVE_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 600_000, default: 10_000 },
    HTTP_BODY_IDLE_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 600_000, default: 5_000 },
  },
} as const;

interface Env {
  PORT: number;
  HOST: string;
  REDIS_URL?: string;
  DATA_DIR: string;
  LOG_LEVEL: string;
  LOG_PRETTY: string;
  NODE_ENV: string;
  METRICS_CLUSTER_LABELS_MAX: number;
  LEASE_TTL_DEFAULT_MS: number;
  LEASE_TTL_MIN_MS: number;
  LEASE_TTL_MAX_MS: number;
  CHANGE_LOG_SIZE: number;
  HISTORY_MAX_ENTRIES: number;
  HISTORY_MAX_AGE_MS: number;
  REDIS_COMMAND_TIMEOUT_MS: number;
  REDIS_HEALTH_INTERVAL_MS: number;
  REDIS_MIN_REPLICAS_ACK: string;
  REDIS_ACK_TIMEOUT_MS: number;
  WS_HEARTBEAT_MS: number;
  LONG_POLL_DEFAULT_WAIT_MS: number;
  SHUTDOWN_GRACE_MS: number;
  PLAN_MAX_BYTES: number;
  BLOB_MAX_BYTES: number;
  STORE_BODY_MAX_BYTES: number;
  CHECKPOINTS_MAX_RETAINED: number;
  CHECKPOINTS_MAX_RETAINED_BY_CLUSTER: string;
  IDEMPOTENCY_TTL_MS: number;
  QUOTA_JOB_RESULTS: number;
  QUOTA_EXECUTION_PLANS: number;
  QUOTA_BLOBS: number;
  QUOTA_BLOB_BYTES: number;
  QUOTA_IDEMPOTENCY_RECORDS: number;
  QUOTA_JOB_MANAGERS: number;
  VIEWS_MAX: number;
  ADMIN_TOKENS: string;
  AUTH_TOKENS: string;
  AUTH_TOKENS_FILE: string;
  WS_ALLOWED_ORIGINS: string;
  TLS_CERT_FILE: string;
  TLS_KEY_FILE: string;
  REDIS_TLS_CA_FILE: string;
  REDIS_SENTINELS: string;
  REDIS_SENTINEL_NAME: string;
  REDIS_SENTINEL_PASSWORD: string;
  SHED_EVENT_LOOP_DELAY_MS: number;
  SHED_EVENT_LOOP_UTILIZATION: number;
  RATE_LIMIT_MAX: number;
  RATE_LIMIT_WINDOW_MS: number;
  HEAVY_READS_PER_CLIENT: number;
  HEAVY_READ_WAIT_MS: number;
  HEAVY_READ_BYTES_PER_SEC: number;
  MAX_CONNECTIONS: number;
  HTTP_HEADERS_TIMEOUT_MS: number;
  HTTP_REQUEST_TIMEOUT_MS: number;
  HTTP_KEEP_ALIVE_TIMEOUT_MS: number;
  HTTP_BODY_IDLE_TIMEOUT_MS: number;
}

export interface Config {
  port: number;
  host: string;
  /** How to reach Redis (URL, TLS, Sentinel); null: the server starts its own
   * redis-server, keeping its data under dataDir. */
  redis: RedisOptions | null;
  /** The HTTP server's certificate and key (PEM); null: plain HTTP. */
  tls: { cert: string; key: string } | null;
  dataDir: string;
  logLevel: string;
  /** Human-readable log lines (pino-pretty) instead of JSON: LOG_PRETTY=1, or in development. */
  logPretty: boolean;
  /** The most clusters with a label of their own in the metrics; the rest are `_other`. */
  metricsClusterLabelsMax: number;
  leaseTtl: { defaultMs: number; minMs: number; maxMs: number };
  changeLogSize: number;
  /** The leadership history's retention per cluster (0 entries: none kept). */
  history: { maxEntries: number; maxAgeMs: number };
  /** The most cluster views a server keeps in memory (views.ts). */
  viewsMax: number;
  redisCommandTimeoutMs: number;
  redisHealthIntervalMs: number;
  /** How many replicas must hold a grant, a renewal or a store write before it is
   * acknowledged: 'auto' for one when the primary has any, else a fixed number. */
  redisReplicaAck: { replicas: 'auto' | number; timeoutMs: number };
  wsHeartbeatMs: number;
  longPollDefaultWaitMs: number;
  shutdownGraceMs: number;
  planMaxBytes: number;
  blobMaxBytes: number;
  /** The JSON bodies of the stores: job results, checkpoints, resource requirements. */
  storeBodyMaxBytes: number;
  /** Completed checkpoints kept per job, unless a request says otherwise. */
  checkpointsMaxRetained: { default: number; byCluster: Map<string, number> };
  idempotencyTtlMs: number;
  /** What one cluster may hold (docs/operations.md, Quotas). */
  quotas: Quotas;
  /** Bearer tokens with their roles and clusters; none: the API is open to all, as admin. */
  tokens: TokenGrant[];
  /** Origins a browser's websocket may come from (`*`: any); empty: any when tokens are
   * configured, else the server's own only. */
  wsAllowedOrigins: string[];
  protection: ProtectionOptions;
  connections: ConnectionOptions;
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
  if (e.HTTP_HEADERS_TIMEOUT_MS > e.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('invalid configuration: HTTP_HEADERS_TIMEOUT_MS <= HTTP_REQUEST_TIMEOUT_MS must hold');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    redis: redisOptions(e),
    tls: e.TLS_CERT_FILE || e.TLS_KEY_FILE ? { cert: readFile(e.TLS_CERT_FILE, 'TLS_CERT_FILE'), key: readFile(e.TLS_KEY_FILE, 'TLS_KEY_FILE') } : null,
    dataDir: e.DATA_DIR,
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY === '1' || e.LOG_PRETTY === 'true' || (e.LOG_PRETTY === '' && e.NODE_ENV === 'development'),
    metricsClusterLabelsMax: e.METRICS_CLUSTER_LABELS_MAX,
    leaseTtl: { defaultMs: e.LEASE_TTL_DEFAULT_MS, minMs: e.LEASE_TTL_MIN_MS, maxMs: e.LEASE_TTL_MAX_MS },
    changeLogSize: e.CHANGE_LOG_SIZE,
    history: { maxEntries: e.HISTORY_MAX_ENTRIES, maxAgeMs: e.HISTORY_MAX_AGE_MS },
    viewsMax: e.VIEWS_MAX,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    redisHealthIntervalMs: e.REDIS_HEALTH_INTERVAL_MS,
    redisReplicaAck: {
      replicas: e.REDIS_MIN_REPLICAS_ACK === 'auto' ? 'auto' : Number(e.REDIS_MIN_REPLICAS_ACK),
      timeoutMs: e.REDIS_ACK_TIMEOUT_MS,
    },
    wsHeartbeatMs: e.WS_HEARTBEAT_MS,
    longPollDefaultWaitMs: e.LONG_POLL_DEFAULT_WAIT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    planMaxBytes: e.PLAN_MAX_BYTES,
    blobMaxBytes: e.BLOB_MAX_BYTES,
    storeBodyMaxBytes: e.STORE_BODY_MAX_BYTES,
    checkpointsMaxRetained: {
      default: e.CHECKPOINTS_MAX_RETAINED,
      byCluster: parseRetained(e.CHECKPOINTS_MAX_RETAINED_BY_CLUSTER),
    },
    idempotencyTtlMs: e.IDEMPOTENCY_TTL_MS,
    quotas: {
      jobResults: e.QUOTA_JOB_RESULTS,
      executionPlans: e.QUOTA_EXECUTION_PLANS,
      blobs: e.QUOTA_BLOBS,
      blobBytes: e.QUOTA_BLOB_BYTES,
      idempotencyRecords: e.QUOTA_IDEMPOTENCY_RECORDS,
      jobManagers: e.QUOTA_JOB_MANAGERS,
    },
    tokens: [
      ...e.ADMIN_TOKENS.split(',')
        .filter(Boolean)
        .map((token, i): TokenGrant => ({ name: `ADMIN_TOKENS[${i}]`, token, role: 'admin', clusters: ['*'] })),
      ...parseTokens(e.AUTH_TOKENS, 'AUTH_TOKENS'),
      ...(e.AUTH_TOKENS_FILE ? parseTokens(readFile(e.AUTH_TOKENS_FILE, 'AUTH_TOKENS_FILE'), 'AUTH_TOKENS_FILE') : []),
    ],
    wsAllowedOrigins: e.WS_ALLOWED_ORIGINS.split(',').map((s) => s.trim()).filter(Boolean),
    protection: {
      shedEventLoopDelayMs: e.SHED_EVENT_LOOP_DELAY_MS,
      shedEventLoopUtilization: e.SHED_EVENT_LOOP_UTILIZATION,
      rateLimitMax: e.RATE_LIMIT_MAX,
      rateLimitWindowMs: e.RATE_LIMIT_WINDOW_MS,
      heavyReadsPerClient: e.HEAVY_READS_PER_CLIENT,
      heavyReadWaitMs: e.HEAVY_READ_WAIT_MS,
      heavyReadBytesPerSec: e.HEAVY_READ_BYTES_PER_SEC,
    },
    connections: {
      maxConnections: e.MAX_CONNECTIONS,
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      bodyIdleTimeoutMs: e.HTTP_BODY_IDLE_TIMEOUT_MS,
    },
  };
}

/** `id=n,id=n` into a map of cluster ids to counts. */
function parseRetained(text: string): Map<string, number> {
  const byCluster = new Map<string, number>();
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})=([0-9]{1,4})$/.exec(item);
    const n = m ? Number(m[2]) : 0;
    if (!m || n < 1 || n > MAX_RETAINED) {
      throw new ConfigError(
        `invalid configuration: CHECKPOINTS_MAX_RETAINED_BY_CLUSTER must be clusterId=n,… with n from 1 to ${MAX_RETAINED}; got '${item}'`,
      );
    }
    byCluster.set(m[1], n);
  }
  return byCluster;
}

function readFile(path: string, name: string): string {
  if (!path) throw new ConfigError(`invalid configuration: ${name} is needed too`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${name} cannot be read: ${(err as Error).message}`);
  }
}

/** ioredis options from REDIS_URL (user, password, database, `rediss:` for TLS), the CA
 * of Redis's certificate, and Sentinel; null when neither URL nor Sentinel is given. */
function redisOptions(e: Env): RedisOptions | null {
  if (!e.REDIS_URL && !e.REDIS_SENTINELS) return null;
  const url = new URL(e.REDIS_URL ?? 'redis://localhost');
  const tls = url.protocol === 'rediss:' || e.REDIS_TLS_CA_FILE !== '';
  const options: RedisOptions = {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 6379),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: Number(url.pathname.slice(1) || 0),
    tls: tls ? (e.REDIS_TLS_CA_FILE ? { ca: readFile(e.REDIS_TLS_CA_FILE, 'REDIS_TLS_CA_FILE') } : {}) : undefined,
  };
  if (!Number.isInteger(options.db)) throw new ConfigError('invalid configuration: REDIS_URL must end with a database number, if anything');
  if (!e.REDIS_SENTINELS) return options;
  const { host: _host, port: _port, ...rest } = options;
  return {
    ...rest,
    sentinels: e.REDIS_SENTINELS.split(',').map((hp) => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: Number(hp.slice(hp.lastIndexOf(':') + 1)) })),
    name: e.REDIS_SENTINEL_NAME,
    sentinelPassword: e.REDIS_SENTINEL_PASSWORD || undefined,
    enableTLSForSentinelMode: tls,
  };
}

/** A JSON array of `{name, token, role, clusters?}`; `clusters` defaults to all (`["*"]`). */
function parseTokens(text: string, source: string): TokenGrant[] {
  if (!text.trim()) return [];
  const fail = (why: string): never => {
    throw new ConfigError(`invalid configuration: ${source} ${why}`);
  };
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    fail('must be JSON: [{"name": …, "token": …, "role": …, "clusters": […]}]');
  }
  if (!Array.isArray(list)) fail('must be a JSON array of tokens');
  return (list as Record<string, unknown>[]).map((t, i) => {
    const where = `[${i}]`;
    if (typeof t !== 'object' || t === null) fail(`${where} must be an object`);
    const { name, token, role, clusters = ['*'], ...rest } = t;
    if (Object.keys(rest).length) fail(`${where} has unknown fields: ${Object.keys(rest).join(', ')}`);
    if (typeof name !== 'string' || !/^[\x21-\x7E]{1,64}$/.test(name)) fail(`${where}.name must be 1 to 64 visible characters`);
    if (typeof token !== 'string' || !/^[\x21-\x7E]{16,}$/.test(token)) fail(`${where}.token must be at least 16 visible characters`);
    if (!ROLES.includes(role as TokenGrant['role'])) fail(`${where}.role must be one of: ${ROLES.join(', ')}`);
    if (!Array.isArray(clusters) || !clusters.length || !clusters.every((c) => typeof c === 'string' && c)) {
      fail(`${where}.clusters must be a non-empty array of cluster ids, or ["*"]`);
    }
    return { name: name as string, token: token as string, role: role as TokenGrant['role'], clusters: clusters as string[] };
  });
}
