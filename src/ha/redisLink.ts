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
 *
 * On a Redis Cluster (REDIS_CLUSTER_NODES) every connection is an ioredis `Cluster`, which
 * follows MOVED and ASK, and all of the above is done per shard: each primary serving slots
 * is checked over its own connection, with a marker and a beat whose hash tag lands on the
 * first slot it serves, so that one shard down or losing its data affects only the clusters
 * whose hash tag it serves (`isHealthyFor`), and /readyz lists each (`shards`).
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { performance } from 'node:perf_hooks';
import type { Log } from './log.js';
import { MARKER_KEY } from './ids.js';
import type { PrimaryLoss } from './acknowledgedLeases.js';
import { clockStep, timeMs, type ClockReading } from './redisClock.js';
import { keySlot, SLOTS } from './keySlot.js';
import { RedisUnavailableError } from './errors.js';

/** Where Redis is: a URL, ioredis options, or those with the nodes of a Redis Cluster
 * (user, password and TLS then apply to every node). */
export type RedisConfig = RedisOptions & { clusterNodes?: Array<{ host: string; port: number }> };

/** A connection of the link: to one Redis, or to a Redis Cluster (MOVED and ASK followed). */
export type RedisClient = Redis | Cluster;

/** One shard of a Redis Cluster, as /readyz reports it. */
export interface ShardHealth {
  /** The first slot it serves, and how many it serves. */
  firstSlot: number;
  slots: number;
  /** host:port of its primary. */
  primary: string;
  redis: 'up' | 'down';
  replicas: number;
}

export interface RedisLinkOptions {
  /** A redis:// or rediss:// URL, or ioredis options (a unix socket path, say), or a cluster's nodes. */
  redis: string | RedisConfig;
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

/** Which clusters an event concerns, on a Redis Cluster: those of one shard. Absent: all. */
export type ClusterFilter = (clusterId: string) => boolean;

interface LinkEvents {
  up: [only?: ClusterFilter];
  down: [only?: ClusterFilter];
  /** Redis lost data: on a Redis Cluster, that of the clusters `only` keeps (one shard's). */
  dataLoss: [only?: ClusterFilter];
  /** A new primary, or a restart: what this server answered is written back into it
   * (floorsWriteback.ts), whatever the marker and the beat say. */
  primaryChanged: [];
  rollback: [clusterId: string];
  clockStep: [stepMs: number];
  message: [channel: string, message: string];
  /** On a cluster: ioredis subscribed a shard's channels anew (a failover, a slot moved);
   * what was published before it took may be lost. */
  resubscribed: [];
}

const reconnectDelay = (attempt: number) => Math.min(50 * attempt, 1000);

/** The stores' commands may take this many times a lease's (REDIS_COMMAND_TIMEOUT_MS). */
const BULK_TIMEOUT_FACTOR = 10;

/** Where a link goes, for logs: the URL without its password, the socket, or the Sentinels. */
export function describeRedis(redis: string | RedisConfig): string {
  if (typeof redis === 'string') {
    const url = new URL(redis);
    if (url.password) url.password = '***';
    return url.href;
  }
  const db = redis.db ? `/${redis.db}` : '';
  if (redis.path) return `unix:${redis.path}${db}`;
  const user = redis.username ? `${encodeURIComponent(redis.username)}${redis.password ? ':***' : ''}@` : redis.password ? ':***@' : '';
  const scheme = redis.tls ? 'rediss' : 'redis';
  if (redis.clusterNodes) return `${scheme}://${user}Redis Cluster via ${redis.clusterNodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',')}`;
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

/** What the link knows of one Redis primary: the only one, or one shard of a cluster. */
class Shard {
  healthy = false;
  marker: string | null = null;
  /** The last value of the beat written (0: none yet). */
  beat = 0;
  /** Redis's maxmemory-policy when it lets Redis evict keys; null for noeviction. */
  evicting: string | null = null;
  checks = 0;
  /** Replicas connected to the primary, as of the last check. */
  replicaCount = 0;
  /** The primary's replication id: another one means another primary, or a restart. */
  replid: string | null = null;
  /** The address the check's connection reached it at: another is another Redis. */
  address: string | null = null;
  /** The last reading of Redis's clock, null after an outage or a change of primary. */
  clock: ClockReading | null = null;
  /** Losses found whose grace `primaryLost` has not yet started. */
  readonly pendingLosses = new Set<PrimaryLoss>();
  /** On a cluster: the primary's host:port, and how many slots it serves. */
  primary = '';
  slots = 0;

  constructor(
    readonly markerKey: string,
    readonly beatKey: string,
    /** On a cluster: the first slot it serves (the slot of its marker). */
    readonly firstSlot = 0,
  ) {}
}

/** A hash tag for each slot, found once: the marker and beat of the shard that serves it. */
const slotTags = new Map<number, string>();
function tagOfSlot(slot: number): string {
  let tag = slotTags.get(slot);
  for (let i = 0; tag === undefined; i++) if (keySlot(`{s${i}}`) === slot) tag = `s${i}`;
  slotTags.set(slot, tag);
  return tag;
}

export class RedisLink extends EventEmitter<LinkEvents> {
  /** Leases: elections, renewals, the views' syncs, and the health check. Nothing a tenant
   * stores goes over it, so that no renewal waits in a queue behind someone's 32 MiB plan
   * (Redis answers each connection in order). */
  readonly cmd: RedisClient;
  readonly sub: RedisClient;
  /** The stores, their reads and writes (job results, plans, checkpoints, blobs and their
   * chunks): a connection of their own, which bulk traffic may fill without delaying
   * a lease. */
  readonly bulk: RedisClient;
  /** Writes of leases that replicas must hold before they are acknowledged run here, each
   * followed by WAIT, which blocks its connection until the replicas answer: never the
   * connection of reads, renewals without replicas, or the health check. */
  readonly acked: RedisClient;
  /** The same for store writes, apart from the leases' for the reason `bulk` is. */
  readonly bulkAcked: RedisClient;
  /** A Redis Cluster's connections (REDIS_CLUSTER_NODES), else null. */
  readonly cluster: Cluster | null;
  private healthy = false;
  /** The one Redis; on a cluster, null (`shards`). */
  private readonly single: Shard | null;
  /** On a cluster: its shards by the first slot each serves, and by their primary's address. */
  private readonly shards = new Map<number, Shard>();
  private byPrimary = new Map<string, Shard>();
  /** On a cluster: the node connection its pub/sub is subscribed on (checkSubscriber). */
  private activeSubscriber: object | null = null;
  private readonly dataLoss: DataLossReport = { count: 0, lastDetectedAt: null, clusters: [] };
  private primaryChangeCount = 0;
  /** This server's beat: its own key (per shard on a cluster). */
  private readonly beatId = randomUUID();
  /** Starts the grace after a loss of this kind (HaServices sets it), for the clusters
   * `only` keeps (on a Redis Cluster, those of the shard that lost it; absent: all). Until
   * it succeeds the link (the shard) is not healthy again, so that this server grants
   * nothing meanwhile. */
  primaryLost: (loss: PrimaryLoss, only?: ClusterFilter) => Promise<void> = async () => {};
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
    const clusterNodes = typeof opts.redis === 'string' ? undefined : opts.redis.clusterNodes;
    const make = (name: string, extra: RedisOptions): RedisClient => {
      if (clusterNodes) return makeCluster(clusterNodes, opts.redis as RedisConfig, { ...base, ...extra, connectionName: name });
      return typeof opts.redis === 'string'
        ? new Redis(opts.redis, { ...base, ...extra, connectionName: name })
        : new Redis({ ...opts.redis, ...base, ...extra, connectionName: name });
    };
    this.cmd = make('leasehold', { commandTimeout: opts.commandTimeoutMs });
    this.cluster = clusterNodes ? (this.cmd as Cluster) : null;
    this.single = clusterNodes ? null : new Shard(MARKER_KEY, `leasehold:beat:${this.beatId}`);
    // On a cluster, ioredis keeps one subscriber connection per primary for sharded pub/sub
    // (SSUBSCRIBE), which the changes of each cluster use (follow, lib/pubsub.lua).
    this.sub = clusterNodes ? makeCluster(clusterNodes, opts.redis as RedisConfig, { ...base, connectionName: 'leasehold-sub' }, true) : make('leasehold-sub', {});
    // A store's answer of megabytes may queue behind others' on its connection: it gets
    // longer than a lease's command. An outage is answered fast all the same: the health
    // check (on `cmd`) marks Redis down, and the stores refuse while it is.
    const bulkTimeoutMs = BULK_TIMEOUT_FACTOR * opts.commandTimeoutMs;
    this.bulk = make('leasehold-bulk', { commandTimeout: bulkTimeoutMs });
    this.acked = make('leasehold-acked', { commandTimeout: opts.commandTimeoutMs + opts.ackTimeoutMs });
    this.bulkAcked = make('leasehold-bulk-acked', { commandTimeout: bulkTimeoutMs + opts.ackTimeoutMs });
    for (const conn of [this.bulk, this.acked, this.bulkAcked]) conn.on('error', (err) => this.log.debug({ err }, 'redis connection error'));
    for (const conn of [this.cmd, this.sub]) {
      conn.on('error', (err: Error) => {
        this.log.debug({ err }, 'redis connection error');
        this.connError = err.message;
        if (/DB index/i.test(err.message)) this.wrongDb = err.message;
      });
      conn.on('connect', () => (this.wrongDb = null));
      // A cluster's connection closes only when every node is gone; its shards' checks tell.
      if (!this.cluster) conn.on('close', () => this.markDown('connection closed'));
      conn.on('ready', () => void this.check());
    }
    this.sub.on('message', (channel: string, message: string) => this.emit('message', channel, message));
    if (this.cluster) {
      this.sub.on('smessage', (channel: string, message: string) => this.emit('message', channel, message));
      // ioredis made a shard's subscriber anew, and subscribed it again, after a failover or
      // a slot that moved: what was published meanwhile is lost, so the views read again.
      this.sub.on('subscribersReady', () => void this.resubscribed());
    }
    this.timer = setInterval(() => void this.check(), opts.healthIntervalMs);
    this.timer.unref();
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  /** Subscribes to a cluster's channel of changes: on a Redis Cluster on the shard that owns
   * it (SSUBSCRIBE), as its scripts SPUBLISH there; on one Redis, SUBSCRIBE. */
  async follow(channel: string): Promise<void> {
    await (this.cluster ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel));
  }

  async unfollow(channel: string): Promise<void> {
    await (this.cluster ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel));
  }

  /** After ioredis renewed the sharded subscribers (ClusterSubscriberGroup.reset, which
   * sends their SSUBSCRIBEs without waiting), waits until each answered a PING, which comes
   * after its SSUBSCRIBE on the same connection; then the views resync (views.ts), so that a
   * change published between the old subscription and the new one is read from the log. ioredis
   * keeps those connections private: this reads them as they are in ioredis 6. */
  private async resubscribed(): Promise<void> {
    if (this.closed) return;
    const group = (this.sub as unknown as { shardedSubscribers?: { shardedSubscribers?: Map<string, { getInstance(): Redis | null }> } }).shardedSubscribers;
    const conns = [...(group?.shardedSubscribers?.values() ?? [])].map((s) => s.getInstance()).filter((c): c is Redis => c !== null && c.status === 'ready');
    await Promise.allSettled(conns.map((c) => withTimeout(c.ping(), this.pingTimeoutMs)));
    if (this.closed) return;
    this.log.info({ redis: this.where }, 'redis sharded pub/sub subscribed anew: every cluster is read again');
    this.emit('resubscribed');
  }

  /** Whether the Redis that holds this cluster's keys is usable: on a cluster, its shard. */
  isHealthyFor(clusterId: string): boolean {
    if (!this.cluster) return this.healthy;
    return this.shardOf(clusterId)?.healthy === true;
  }

  /** On a cluster, the shard serving the cluster's hash tag now (ids.ts: `{clusterId}`). */
  private shardOf(clusterId: string): Shard | undefined {
    const primary = this.cluster!.slots[keySlot(`{${clusterId}}`)]?.[0];
    return primary === undefined ? undefined : this.byPrimary.get(primary);
  }

  /** On a cluster, each shard; null on one Redis. */
  get shardReport(): ShardHealth[] | null {
    if (!this.cluster) return null;
    return [...this.shards.values()]
      .sort((a, b) => a.firstSlot - b.firstSlot)
      .map((s) => ({ firstSlot: s.firstSlot, slots: s.slots, primary: s.primary, redis: s.healthy ? 'up' : 'down', replicas: s.replicaCount }));
  }

  get dataLossReport(): DataLossReport {
    return { ...this.dataLoss, clusters: [...this.dataLoss.clusters] };
  }

  /** Replicas connected to the primary, as of the last check (on a cluster, the fewest any
   * shard's primary has). */
  get replicas(): number {
    if (this.single) return this.single.replicaCount;
    const counts = [...this.shards.values()].map((s) => s.replicaCount);
    return counts.length ? Math.min(...counts) : 0;
  }

  /** Replicas connected to the primary that holds `key`, as of the last check: on a
   * cluster, the primary of the shard serving its slot (0 while none is known). */
  replicasFor(key: string): number {
    if (this.single) return this.single.replicaCount;
    const primary = this.cluster!.slots[keySlot(key)]?.[0];
    return (primary === undefined ? undefined : this.byPrimary.get(primary))?.replicaCount ?? 0;
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
    if (this.single) return this.single.evicting;
    for (const s of this.shards.values()) if (s.evicting) return s.evicting;
    return null;
  }

  /** Reads the marker; a failure marks Redis down, a success after one marks it up. */
  async check(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      if (this.cluster) {
        await this.checkCluster(this.cluster);
        return;
      }
      const sub = this.sub as Redis;
      if (sub.status !== 'ready') throw new Error('pub/sub connection not ready');
      if (this.wrongDb) throw new Error(this.wrongDb);
      // Answered after any (re)subscription sent before it on that connection.
      await withTimeout(sub.ping(), this.pingTimeoutMs);
      await this.checkShard(this.cmd as Redis, this.single!);
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

  /** Checks one Redis primary over `conn`: its marker and beat (a loss), its replication
   * (a failover), its memory policy and its clock; then starts the grace its losses call
   * for. Throws when it does not answer. */
  private async checkShard(conn: Redis, shard: Shard): Promise<void> {
    const seen = await withTimeout(conn.get(shard.markerKey), this.pingTimeoutMs);
    let lost: string | null = null;
    if (seen === null || (shard.marker !== null && seen !== shard.marker)) {
      if (shard.marker !== null) lost = seen === null ? 'marker vanished' : 'marker changed';
      await conn.set(shard.markerKey, randomUUID(), 'NX');
      shard.marker = await conn.get(shard.markerKey);
    } else {
      shard.marker = seen;
    }
    const beat = await withTimeout(conn.get(shard.beatKey), this.pingTimeoutMs);
    if (shard.beat > 0 && !lost && (beat === null || Number(beat) < shard.beat)) lost = 'went back in time';
    // Counted only once written: a write that failed unseen leaves the key above, not below.
    // A full Redis (noeviction) refuses it: the beat waits, Redis is not down for that.
    try {
      await withTimeout(conn.set(shard.beatKey, shard.beat + 1, 'PX', BEAT_TTL_MS), this.pingTimeoutMs);
      shard.beat++;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('OOM')) throw err;
    }
    if (lost) {
      this.reportDataLoss(lost, shard);
      shard.pendingLosses.add('dataLoss');
    }
    // One round trip for both, so that a busy Redis gets no more chances to miss the
    // check's timeout than before they were read at every check.
    const sent = performance.now();
    const [info, time] = await withTimeout(Promise.all([conn.info('replication'), conn.time()]), this.pingTimeoutMs);
    const received = performance.now();
    const primaryChanged = this.checkReplication(conn, shard, info);
    if (!shard.healthy || primaryChanged || shard.checks++ % POLICY_CHECK_EVERY === 0) await this.checkEvictionPolicy(conn, shard);
    if (primaryChanged && !shard.pendingLosses.has('dataLoss')) this.emit('primaryChanged');
    const rttMs = received - sent;
    this.checkClock(shard, { redisMs: timeMs(time as unknown as [string, string]), monoMs: sent + rttMs / 2, rttMs });
    // On a cluster, another shard's primary lost nothing: its clusters keep granting.
    const only: ClusterFilter | undefined = this.cluster ? (clusterId) => this.shardOf(clusterId) === shard : undefined;
    for (const loss of shard.pendingLosses) {
      await this.primaryLost(loss, only);
      shard.pendingLosses.delete(loss);
      // The views resync once the grace is in place, right before the link is healthy
      // again: what they push to watchers is then also what reads answer.
      if (loss === 'dataLoss') this.emit('dataLoss', only);
    }
  }

  /** A Redis Cluster: each primary that serves slots, as the client's slot table has it,
   * is checked as one Redis is; the link is healthy when all are. */
  private async checkCluster(cluster: Cluster): Promise<void> {
    const served = new Map<string, { first: number; slots: number }>();
    if (cluster.status === 'ready') {
      for (let slot = 0; slot < SLOTS; slot++) {
        const primary = cluster.slots[slot]?.[0];
        if (primary === undefined) continue;
        const s = served.get(primary);
        if (s) s.slots++;
        else served.set(primary, { first: slot, slots: 1 });
      }
    }
    const byPrimary = new Map<string, Shard>();
    for (const [primary, { first, slots }] of served) {
      let shard = this.shards.get(first);
      if (!shard) {
        const tag = tagOfSlot(first);
        shard = new Shard(`${MARKER_KEY}:{${tag}}`, `leasehold:beat:{${tag}}:${this.beatId}`, first);
        this.shards.set(first, shard);
      }
      shard.primary = primary;
      shard.slots = slots;
      byPrimary.set(primary, shard);
    }
    // A shard whose first slot moved away (a reshard) is one no more: its marker stays
    // with that slot, and the shard that serves it now checks it.
    for (const [first, shard] of this.shards) {
      if (byPrimary.get(shard.primary) !== shard || !served.has(shard.primary)) this.shards.delete(first);
    }
    this.byPrimary = byPrimary;
    await Promise.all(
      [...byPrimary.values()].map(async (shard) => {
        try {
          await this.checkShard(connectionFor(cluster, `{${tagOfSlot(shard.firstSlot)}}`), shard);
          if (!shard.healthy) {
            shard.healthy = true;
            this.log.info({ redis: this.where, shard: shard.primary, firstSlot: shard.firstSlot }, 'redis shard available');
            this.emit('up', (clusterId) => this.shardOf(clusterId) === shard);
          }
        } catch (err) {
          if (shard.healthy) {
            shard.healthy = false;
            shard.clock = null;
            this.log.warn({ redis: this.where, shard: shard.primary, firstSlot: shard.firstSlot, reason: (err as Error).message }, `redis shard unavailable at ${shard.primary}: ${(err as Error).message}`);
            this.emit('down', (clusterId) => this.shardOf(clusterId) === shard);
          }
        }
      }),
    );
    this.checkSubscriber(this.sub as Cluster);
    const whole = served.size > 0 && [...served.values()].reduce((n, s) => n + s.slots, 0) === SLOTS;
    const healthy = whole && [...byPrimary.values()].every((s) => s.healthy);
    if (healthy && !this.healthy) {
      this.healthy = true;
      this.connError = null;
      this.loggedCause = null;
      this.log.info({ redis: this.where, shards: byPrimary.size }, 'redis available');
    } else if (!healthy) {
      this.markDown(whole ? 'a shard is unavailable' : 'the cluster serves not every slot', false);
    }
  }

  /** ioredis subscribes a cluster's pub/sub on one node, and when that node goes away, on
   * another, subscribing again to every channel: what was published in between is lost.
   * Once the new one has subscribed (ioredis then makes it `lastActiveSubscriber`), every
   * view reads its cluster again, as after an outage. ioredis keeps that connection private
   * (the `subscriber` of a Cluster): this reads it as it is in ioredis 6. */
  private checkSubscriber(sub: Cluster): void {
    const active = (sub as unknown as { subscriber?: { lastActiveSubscriber?: object } }).subscriber?.lastActiveSubscriber ?? null;
    if (active === this.activeSubscriber) return;
    const replaced = this.activeSubscriber !== null;
    this.activeSubscriber = active;
    if (replaced && active !== null) {
      this.log.info({ redis: this.where }, 'redis pub/sub moved to another node: every cluster is read again');
      this.emit('up');
    }
  }

  /** Reads `maxmemory_policy` from INFO (allowed to the least-privilege user, unlike CONFIG)
   * and logs an error each time it turns to one that evicts. */
  private async checkEvictionPolicy(conn: Redis, shard: Shard): Promise<void> {
    const info = await withTimeout(conn.info('memory'), this.pingTimeoutMs);
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'noeviction';
    const evicting = policy === 'noeviction' ? null : policy;
    if (evicting !== null && evicting !== shard.evicting) {
      this.log.error(
        { maxmemoryPolicy: evicting, ...(this.cluster && { shard: shard.primary }) },
        `redis maxmemory-policy is ${evicting}: Redis may evict leases and stored data to make room, which can grant a lease twice and lose recovery data; set maxmemory-policy noeviction`,
      );
    } else if (evicting === null && shard.evicting !== null) {
      this.log.info('redis maxmemory-policy is noeviction again');
    }
    shard.evicting = evicting;
  }

  /** Reads the primary's replicas and replication id from INFO. A new replication id is a
   * new primary (a failover) or a restart: logged, and counted for /readyz. A failover is
   * another Redis at another address, or one whose previous replication id (replid2, kept
   * by a replica promoted) is the old primary's; it may lack leases acknowledged without a
   * replica, so their grace is due. A restart of the same Redis lost nothing if its data
   * survived (AOF); if it did not, the marker tells. Answers whether the primary changed. */
  private checkReplication(conn: Redis, shard: Shard, info: string): boolean {
    shard.replicaCount = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
    const replid = /^master_replid:(\S+)/m.exec(info)?.[1] ?? null;
    const replid2 = /^master_replid2:(\S+)/m.exec(info)?.[1] ?? null;
    const address = `${conn.stream?.remoteAddress}:${conn.stream?.remotePort}`;
    let changed = false;
    if (replid && shard.replid && replid !== shard.replid) {
      changed = true;
      this.primaryChangeCount++;
      shard.clock = null;
      const failover = replid2 === shard.replid || address !== shard.address;
      if (failover) shard.pendingLosses.add('failover');
      this.log.warn(
        { replicas: shard.replicaCount, primaryChanges: this.primaryChangeCount, ...(this.cluster && { shard: shard.primary }) },
        failover ? 'the redis primary changed (a failover)' : 'redis restarted',
      );
    }
    if (replid) shard.replid = replid;
    shard.address = address;
    return changed;
  }

  /** Compares a reading of Redis's clock with the last one (redisClock.ts). */
  private checkClock(shard: Shard, reading: ClockReading): void {
    const step = shard.clock && clockStep(shard.clock, reading);
    shard.clock = reading;
    if (step === null || step === undefined) return;
    this.clockSteps.count++;
    this.clockSteps.last = { detectedAt: new Date().toISOString(), stepMs: step };
    this.log.error(
      { stepMs: step, clockSteps: this.clockSteps.count },
      `redis's clock stepped ${step > 0 ? 'forward' : 'back'} by ${Math.abs(step)} ms: leases run out by it, so they ended ${step > 0 ? 'early (a leader may have been replaced while it still believed it led)' : 'late'}; make the Redis host slew its clock (chrony, ntpd), not step it`,
    );
    this.emit('clockStep', step);
  }

  /** Redis (on a cluster: not all of it) is not usable; `all` false on a cluster, whose
   * shards were told down one by one. */
  private markDown(reason: string, all = true): void {
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
    if (this.single) this.single.clock = null;
    if (all) this.emit('down');
  }

  private reportDataLoss(how: string, shard: Shard): void {
    this.dataLoss.count++;
    this.dataLoss.lastDetectedAt = new Date().toISOString();
    this.log.error(
      { how, dataLossCount: this.dataLoss.count, ...(this.cluster && { shard: shard.primary }) },
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
    const conns: RedisClient[] = [this.cmd, this.sub, this.bulk, this.acked, this.bulkAcked];
    // QUIT lets Redis answer what was sent; a Redis that does not answer (paused, or a shard
    // gone) is waited for no longer than a health check would: a close does not hang on it.
    await Promise.allSettled(conns.map((c) => withTimeout(c.quit(), this.pingTimeoutMs)));
    for (const c of conns) c.disconnect();
    await Promise.all(conns.map((c) => (c instanceof Cluster ? stopSlotRefresh(c) : undefined)));
  }
}

/** The connection to run a command that names no key but is about `key` (SCAN of its
 * prefix): on a cluster, the primary serving the key's slot as the client knows it. */
export function connectionFor(client: RedisClient, key: string): Redis {
  if (!(client instanceof Cluster)) return client;
  const primary = client.slots[keySlot(key)]?.[0];
  const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === primary);
  if (!node) throw new RedisUnavailableError(new Error(`no connection to the primary serving ${key}`));
  return node;
}

/** ioredis 6 refreshes a Cluster's slots every `slotsRefreshInterval` by a timer that the
 * end of each refresh arms again, whatever ended it: a refresh still in flight when the
 * Cluster quits (one node slow to answer, a busy process) arms a timer after quit() cleared
 * it, and from then on one every second, for ever, which keeps the process alive after the
 * server closed. This waits for such a refresh to end (it does within ioredis's
 * slotsRefreshTimeout per node it asks; bounded here all the same) and clears the timer it
 * armed. ioredis keeps both private: this reads them as they are in ioredis 6. */
async function stopSlotRefresh(cluster: Cluster): Promise<void> {
  const internal = cluster as unknown as { isRefreshing?: boolean; _refreshSlotsCacheCallbacks?: Array<() => void>; clearNodesRefreshInterval?: () => void };
  if (internal.isRefreshing && internal._refreshSlotsCacheCallbacks) {
    // Called after the callback that arms the timer, which was queued first.
    const ended = new Promise<void>((resolve) => internal._refreshSlotsCacheCallbacks!.push(() => resolve()));
    await withTimeout(ended, SLOT_REFRESH_WAIT_MS).catch(() => {});
  }
  internal.clearNodesRefreshInterval?.();
}

/** The longest a close waits for a refresh of a Cluster's slots in flight (stopSlotRefresh). */
const SLOT_REFRESH_WAIT_MS = 10_000;

/** One connection of the link to a Redis Cluster: the options of a connection to one Redis
 * apply to each node (user, password, TLS, timeouts); the cluster's own queue is off, as
 * one Redis's is, and a node that goes away is found again by refreshing the slots. */
function makeCluster(nodes: Array<{ host: string; port: number }>, config: RedisConfig, options: RedisOptions, shardedSubscribers = false): Cluster {
  const { clusterNodes: _nodes, host: _host, port: _port, path: _path, sentinels: _sentinels, retryStrategy, enableOfflineQueue: _queue, ...redisOptions } = { ...config, ...options };
  return new Cluster(nodes, {
    redisOptions,
    enableOfflineQueue: false,
    clusterRetryStrategy: (times) => retryStrategy?.(times) ?? null,
    // A failover or a slot moved is followed within a second; MOVED and ASK at once.
    slotsRefreshInterval: 1000,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    maxRedirections: 8,
    shardedSubscribers,
  });
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
