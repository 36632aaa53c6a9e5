/**
 * The Redis connections of a server (leases, pub/sub apart from them, and the stores apart
 * from both)
 * and what it knows of Redis's health: whether commands and pub/sub are usable, and
 * whether Redis lost its data.
 *
 * No connection has an offline queue, and commands have a short timeout, so that an
 * outage is an immediate error rather than a hidden wait. Every second it reads a marker
 * key that the servers write once: a marker that vanished or changed means Redis lost its
 * data (a restart without persistence, a failover to a replica that lagged, a flush). It
 * also counts its own checks in a key of its own (the beat): a beat found below the last
 * one written means Redis went back in time (a restored backup, a replica that lagged),
 * though the marker is still there. It also reads Redis's `maxmemory-policy` at every (re)connection and every few seconds:
 * any policy but `noeviction` lets Redis drop leases and stores to make room, which is a
 * configuration problem that readiness reports (docs/design.md §9).
 *
 * Every check also reads the primary's replication id, to tell a failover or a restart,
 * and Redis's clock (`TIME`), to tell a clock that stepped (redisClock.ts). When the Redis
 * now serving may have lost leases this server acknowledged (a failover, or lost data),
 * `primaryLost` starts the grace before the link counts as healthy again.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { performance } from 'node:perf_hooks';
import type { Log } from './log.js';
import { MARKER_KEY } from './ids.js';
import type { PrimaryLoss } from './acknowledgedLeases.js';
import { clockStep, timeMs, type ClockReading } from './redisClock.js';

export interface RedisLinkOptions {
  /** A redis:// or rediss:// URL, or ioredis options (a unix socket path, say). */
  redis: string | RedisOptions;
  commandTimeoutMs: number;
  healthIntervalMs: number;
  /** How long a write waits for replicas to hold it (WAIT), on the `acked` connection. */
  ackTimeoutMs: number;
  logger: Log;
}

export interface DataLossReport {
  count: number;
  lastDetectedAt: string | null;
  /** The clusters found rolled back, most recent last (at most ROLLBACK_CLUSTERS_KEPT). */
  clusters: string[];
}

export interface ClockStepReport {
  count: number;
  /** The last step: when it was seen, and by how much Redis's clock moved (ms; negative:
   * back), or null if never. */
  last: { detectedAt: string; stepMs: number } | null;
}

/** How many rolled-back clusters a data loss report names. */
const ROLLBACK_CLUSTERS_KEPT = 20;

interface LinkEvents {
  up: [];
  down: [];
  dataLoss: [];
  /** A new primary, or a restart: what this server answered is written back into it
   * (floorsWriteback.ts), whatever the marker and the beat say. */
  primaryChanged: [];
  rollback: [clusterId: string];
  clockStep: [stepMs: number];
  message: [channel: string, message: string];
}

const reconnectDelay = (attempt: number) => Math.min(50 * attempt, 1000);

/** The stores' commands may take this many times a lease's (REDIS_COMMAND_TIMEOUT_MS). */
const BULK_TIMEOUT_FACTOR = 10;

/** Where a link goes, for logs: the URL without its password, the socket, or the Sentinels. */
export function describeRedis(redis: string | RedisOptions): string {
  if (typeof redis === 'string') {
    const url = new URL(redis);
    if (url.password) url.password = '***';
    return url.href;
  }
  const db = redis.db ? `/${redis.db}` : '';
  if (redis.path) return `unix:${redis.path}${db}`;
  const user = redis.username ? `${encodeURIComponent(redis.username)}${redis.password ? ':***' : ''}@` : redis.password ? ':***@' : '';
  const scheme = redis.tls ? 'rediss' : 'redis';
  if (redis.sentinels) return `${scheme}://${user}${redis.name ?? 'mymaster'}${db} via Sentinels ${redis.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  const host = (redis.host ?? 'localhost').includes(':') ? `[${redis.host}]` : (redis.host ?? 'localhost');
  return `${scheme}://${user}${host}:${redis.port ?? 6379}${db}`;
}

/** The memory policy is read again every this many health checks (and at every recovery),
 * since a CONFIG SET can change it under a running server (and a failover, which the
 * replication id read at every check tells, reads it at once). */
const POLICY_CHECK_EVERY = 20;

/** How long a server's beat outlives it: a Redis restored from a backup older than this
 * has no beat of a live server, which reads as a loss too. */
const BEAT_TTL_MS = 3_600_000;

export class RedisLink extends EventEmitter<LinkEvents> {
  /** Leases: elections, renewals, the views' syncs, and the health check. Nothing a tenant
   * stores goes over it, so that no renewal waits in a queue behind someone's 32 MiB plan
   * (Redis answers each connection in order). */
  readonly cmd: Redis;
  readonly sub: Redis;
  /** The stores, their reads and writes (job results, plans, checkpoints, blobs and their
   * chunks): a connection of their own, which bulk traffic may fill without delaying
   * a lease. */
  readonly bulk: Redis;
  /** Writes of leases that replicas must hold before they are acknowledged run here, each
   * followed by WAIT, which blocks its connection until the replicas answer: never the
   * connection of reads, renewals without replicas, or the health check. */
  readonly acked: Redis;
  /** The same for store writes, apart from the leases' for the reason `bulk` is. */
  readonly bulkAcked: Redis;
  private healthy = false;
  private marker: string | null = null;
  private readonly dataLoss: DataLossReport = { count: 0, lastDetectedAt: null, clusters: [] };
  /** Redis's maxmemory-policy when it lets Redis evict keys; null for noeviction. */
  private evicting: string | null = null;
  private checks = 0;
  /** Replicas connected to the primary, as of the last check. */
  private replicaCount = 0;
  /** The primary's replication id: another one means another primary, or a restart. */
  private replid: string | null = null;
  /** The address the commands' connection reached it at: another is another Redis. */
  private address: string | null = null;
  private primaryChangeCount = 0;
  /** Losses found whose grace `primaryLost` has not yet started. */
  private readonly pendingLosses = new Set<PrimaryLoss>();
  /** The beat: this server's own key, and the last value it wrote there (0: none yet). */
  private readonly beatKey = `leasehold:beat:${randomUUID()}`;
  private beat = 0;
  /** Starts the grace after a loss of this kind (HaServices sets it). Until it succeeds the
   * link is not healthy again, so that this server grants nothing meanwhile. */
  primaryLost: (loss: PrimaryLoss) => Promise<void> = async () => {};
  /** The last reading of Redis's clock, null after an outage or a change of primary. */
  private clock: ClockReading | null = null;
  private readonly clockSteps: ClockStepReport = { count: 0, last: null };
  private readonly timer: NodeJS.Timeout;
  private checking = false;
  private closed = false;
  private readonly log: Log;
  private readonly pingTimeoutMs: number;
  /** For logs: where Redis is, without credentials. */
  readonly where: string;
  /** The last connection error (ECONNREFUSED …), the cause logged with an outage. */
  private connError: string | null = null;
  /** The cause last logged while Redis is unavailable: an outage is logged when it starts
   * (at start too) and when its cause changes, not at every retry. */
  private loggedCause: string | null = null;
  /** Set when Redis refused to SELECT the configured database: ioredis would go on in
   * database 0, so the link stays down until a connection selects it. */
  private wrongDb: string | null = null;

  constructor(opts: RedisLinkOptions) {
    super();
    this.log = opts.logger;
    this.where = describeRedis(opts.redis);
    // A paused Redis keeps its connections open: only an unanswered read tells.
    this.pingTimeoutMs = Math.min(opts.commandTimeoutMs, opts.healthIntervalMs);
    const base: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: reconnectDelay,
      connectTimeout: Math.max(opts.commandTimeoutMs, 1000),
    };
    const make = (name: string, extra: RedisOptions) =>
      typeof opts.redis === 'string'
        ? new Redis(opts.redis, { ...base, ...extra, connectionName: name })
        : new Redis({ ...opts.redis, ...base, ...extra, connectionName: name });
    this.cmd = make('leasehold', { commandTimeout: opts.commandTimeoutMs });
    this.sub = make('leasehold-sub', {});
    // A store's answer of megabytes may queue behind others' on its connection: it gets
    // longer than a lease's command. An outage is answered fast all the same: the health
    // check (on `cmd`) marks Redis down, and the stores refuse while it is.
    const bulkTimeoutMs = BULK_TIMEOUT_FACTOR * opts.commandTimeoutMs;
    this.bulk = make('leasehold-bulk', { commandTimeout: bulkTimeoutMs });
    this.acked = make('leasehold-acked', { commandTimeout: opts.commandTimeoutMs + opts.ackTimeoutMs });
    this.bulkAcked = make('leasehold-bulk-acked', { commandTimeout: bulkTimeoutMs + opts.ackTimeoutMs });
    for (const conn of [this.bulk, this.acked, this.bulkAcked]) conn.on('error', (err) => this.log.debug({ err }, 'redis connection error'));
    for (const conn of [this.cmd, this.sub]) {
      conn.on('error', (err) => {
        this.log.debug({ err }, 'redis connection error');
        this.connError = err.message;
        if (/DB index/i.test(err.message)) this.wrongDb = err.message;
      });
      conn.on('connect', () => (this.wrongDb = null));
      conn.on('close', () => this.markDown('connection closed'));
      conn.on('ready', () => void this.check());
    }
    this.sub.on('message', (channel, message) => this.emit('message', channel, message));
    this.timer = setInterval(() => void this.check(), opts.healthIntervalMs);
    this.timer.unref();
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  get dataLossReport(): DataLossReport {
    return { ...this.dataLoss, clusters: [...this.dataLoss.clusters] };
  }

  /** Replicas connected to the primary, as of the last check. */
  get replicas(): number {
    return this.replicaCount;
  }

  /** Times the primary changed (a failover, or a restart), as its replication id tells. */
  get primaryChanges(): number {
    return this.primaryChangeCount;
  }

  get clockStepReport(): ClockStepReport {
    return { count: this.clockSteps.count, last: this.clockSteps.last && { ...this.clockSteps.last } };
  }

  /** Redis's `maxmemory-policy` when it evicts keys (anything but `noeviction`), else null. */
  get evictionPolicy(): string | null {
    return this.evicting;
  }

  /** Reads the marker; a failure marks Redis down, a success after one marks it up. */
  async check(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      if (this.sub.status !== 'ready') throw new Error('pub/sub connection not ready');
      if (this.wrongDb) throw new Error(this.wrongDb);
      // Answered after any (re)subscription sent before it on that connection.
      await withTimeout(this.sub.ping(), this.pingTimeoutMs);
      const seen = await withTimeout(this.cmd.get(MARKER_KEY), this.pingTimeoutMs);
      let lost: string | null = null;
      if (seen === null || (this.marker !== null && seen !== this.marker)) {
        if (this.marker !== null) lost = seen === null ? 'marker vanished' : 'marker changed';
        await this.cmd.set(MARKER_KEY, randomUUID(), 'NX');
        this.marker = await this.cmd.get(MARKER_KEY);
      } else {
        this.marker = seen;
      }
      const beat = await withTimeout(this.cmd.get(this.beatKey), this.pingTimeoutMs);
      if (this.beat > 0 && !lost && (beat === null || Number(beat) < this.beat)) lost = 'went back in time';
      // Counted only once written: a write that failed unseen leaves the key above, not below.
      // A full Redis (noeviction) refuses it: the beat waits, Redis is not down for that.
      try {
        await withTimeout(this.cmd.set(this.beatKey, this.beat + 1, 'PX', BEAT_TTL_MS), this.pingTimeoutMs);
        this.beat++;
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('OOM')) throw err;
      }
      if (lost) {
        this.reportDataLoss(lost);
        this.pendingLosses.add('dataLoss');
      }
      // One round trip for both, so that a busy Redis gets no more chances to miss the
      // check's timeout than before they were read at every check.
      const sent = performance.now();
      const [info, time] = await withTimeout(Promise.all([this.cmd.info('replication'), this.cmd.time()]), this.pingTimeoutMs);
      const received = performance.now();
      const primaryChanged = this.checkReplication(info);
      if (!this.healthy || primaryChanged || this.checks++ % POLICY_CHECK_EVERY === 0) await this.checkEvictionPolicy();
      if (primaryChanged && !this.pendingLosses.has('dataLoss')) this.emit('primaryChanged');
      const rttMs = received - sent;
      this.checkClock({ redisMs: timeMs(time as unknown as [string, string]), monoMs: sent + rttMs / 2, rttMs });
      for (const loss of this.pendingLosses) {
        await this.primaryLost(loss);
        this.pendingLosses.delete(loss);
        // The views resync once the grace is in place, right before the link is healthy
        // again: what they push to watchers is then also what reads answer.
        if (loss === 'dataLoss') this.emit('dataLoss');
      }
      if (!this.healthy) {
        this.healthy = true;
        this.connError = null;
        this.loggedCause = null;
        this.log.info({ redis: this.where }, 'redis available');
        this.emit('up');
      }
    } catch (err) {
      this.markDown((err as Error).message);
    } finally {
      this.checking = false;
    }
  }

  /** Reads `maxmemory_policy` from INFO (allowed to the least-privilege user, unlike CONFIG)
   * and logs an error each time it turns to one that evicts. */
  private async checkEvictionPolicy(): Promise<void> {
    const info = await withTimeout(this.cmd.info('memory'), this.pingTimeoutMs);
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'noeviction';
    const evicting = policy === 'noeviction' ? null : policy;
    if (evicting !== null && evicting !== this.evicting) {
      this.log.error(
        { maxmemoryPolicy: evicting },
        `redis maxmemory-policy is ${evicting}: Redis may evict leases and stored data to make room, which can grant a lease twice and lose recovery data; set maxmemory-policy noeviction`,
      );
    } else if (evicting === null && this.evicting !== null) {
      this.log.info('redis maxmemory-policy is noeviction again');
    }
    this.evicting = evicting;
  }

  /** Reads the primary's replicas and replication id from INFO. A new replication id is a
   * new primary (a failover) or a restart: logged, and counted for /readyz. A failover is
   * another Redis at another address, or one whose previous replication id (replid2, kept
   * by a replica promoted) is the old primary's; it may lack leases acknowledged without a
   * replica, so their grace is due. A restart of the same Redis lost nothing if its data
   * survived (AOF); if it did not, the marker tells. Answers whether the primary changed. */
  private checkReplication(info: string): boolean {
    this.replicaCount = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
    const replid = /^master_replid:(\S+)/m.exec(info)?.[1] ?? null;
    const replid2 = /^master_replid2:(\S+)/m.exec(info)?.[1] ?? null;
    const address = `${this.cmd.stream?.remoteAddress}:${this.cmd.stream?.remotePort}`;
    let changed = false;
    if (replid && this.replid && replid !== this.replid) {
      changed = true;
      this.primaryChangeCount++;
      this.clock = null;
      const failover = replid2 === this.replid || address !== this.address;
      if (failover) this.pendingLosses.add('failover');
      this.log.warn(
        { replicas: this.replicaCount, primaryChanges: this.primaryChangeCount },
        failover ? 'the redis primary changed (a failover)' : 'redis restarted',
      );
    }
    if (replid) this.replid = replid;
    this.address = address;
    return changed;
  }

  /** Compares a reading of Redis's clock with the last one (redisClock.ts). */
  private checkClock(reading: ClockReading): void {
    const step = this.clock && clockStep(this.clock, reading);
    this.clock = reading;
    if (step === null || step === undefined) return;
    this.clockSteps.count++;
    this.clockSteps.last = { detectedAt: new Date().toISOString(), stepMs: step };
    this.log.error(
      { stepMs: step, clockSteps: this.clockSteps.count },
      `redis's clock stepped ${step > 0 ? 'forward' : 'back'} by ${Math.abs(step)} ms: leases run out by it, so they ended ${step > 0 ? 'early (a leader may have been replaced while it still believed it led)' : 'late'}; make the Redis host slew its clock (chrony, ntpd), not step it`,
    );
    this.emit('clockStep', step);
  }

  private markDown(reason: string): void {
    if (this.closed) return;
    const cause = this.connError ?? reason;
    // At start, connections not yet open are no outage (a failure to connect has its error).
    const starting = !this.healthy && this.loggedCause === null && this.connError === null && /not ready|connection closed/.test(reason);
    if (this.healthy || (cause !== this.loggedCause && !starting)) {
      this.loggedCause = cause;
      this.log.warn({ redis: this.where, reason, cause }, `redis unavailable at ${this.where}: ${cause}`);
    }
    if (!this.healthy) return;
    this.healthy = false;
    this.clock = null;
    this.emit('down');
  }

  private reportDataLoss(how: string): void {
    this.dataLoss.count++;
    this.dataLoss.lastDetectedAt = new Date().toISOString();
    this.log.error(
      { how, dataLossCount: this.dataLoss.count },
      'redis lost data (a restart without persistence, a restored backup, a failover to a replica that lagged, a flush): what this server answered is written back, and no lease is granted until every lease that may have been lost has run out',
    );
  }

  /** A cluster's state in Redis was found below what this server had answered: Redis went
   * back in time (a failover to a replica that lagged, a restored backup). The sync that
   * found it has repaired it; this reports it. */
  reportRollback(clusterId: string, counted = false): void {
    if (!counted) this.dataLoss.count++;
    this.dataLoss.lastDetectedAt = new Date().toISOString();
    const named = this.dataLoss.clusters.filter((c) => c !== clusterId);
    named.push(clusterId);
    this.dataLoss.clusters = named.slice(-ROLLBACK_CLUSTERS_KEPT);
    this.log.error(
      { clusterId, dataLossCount: this.dataLoss.count },
      'redis went back in time for this cluster (a failover to a replica that lagged, or a restored backup): its index was raised above every one answered, leases from the older data ended, and no lease is granted until every lease that may have been lost has run out',
    );
    this.emit('rollback', clusterId);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.healthy = false;
    clearInterval(this.timer);
    const conns = [this.cmd, this.sub, this.bulk, this.acked, this.bulkAcked];
    await Promise.allSettled(conns.map((c) => c.quit()));
    for (const c of conns) c.disconnect();
  }
}

/** Rejects when `p` has not settled within `ms`. When the timer fires, an answer may
 * already wait in the socket, unread because this process was busy (a flood of large
 * reads, a starved CPU): timers run before I/O in a turn of the event loop, so it gets
 * that turn's I/O first (setImmediate runs after it); only a Redis that did not answer
 * counts as down. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  let late: NodeJS.Immediate;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = setImmediate(() => reject(new Error(`no answer from redis within ${ms} ms`)));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
    clearImmediate(late);
  });
}
