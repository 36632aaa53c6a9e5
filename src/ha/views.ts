/** The cluster views of a server: opened on first use, fed from pub/sub, resynchronised
 * after every Redis outage or data loss, and dropped when nobody used them for a while, or
 * when there are more than `maxViews` (the least recently used first).
 *
 * A view of a cluster that has no data (unborn) subscribes to nothing of its own: it
 * hears of the cluster's first write on BORN_CHANNEL, one channel for every cluster, and
 * only then subscribes to the cluster's channel (issue 16: reads create no state).
 *
 * On a Redis Cluster a cluster's channel is sharded (RedisLink.follow): a change reaches only
 * the shard that owns it. When ioredis subscribes a shard again (a failover, a slot moved),
 * every view resyncs (`resubscribed`), which reads what the gap missed. Births
 * stay on plain pub/sub, broadcast to every node: they are rare, one per cluster. */
import type { Log } from './log.js';
import { messageOrigin, parseMessage, type Change, type Leader } from './changes.js';
import { ClusterView } from './clusterView.js';
import { RedisUnavailableError } from './errors.js';
import { BORN_CHANNEL, ClusterKeys, type Component } from './ids.js';
import type { LeaseStore } from './leaseStore.js';
import type { RedisLink } from './redisLink.js';
import { leaseSyncStore, type SyncStore } from './syncStore.js';
import type { Floors } from './floors.js';
import { reportingStore, type LeaseEvents } from './events.js';

export interface ViewRegistryOptions {
  link: RedisLink;
  store: LeaseStore;
  /** What this server has answered; every change it sees raises them. */
  floors: Floors;
  idleMs: number;
  /** The most views kept: past it, the least recently used go, but never one with
   * watchers or long-polls, nor one that times a live lease (VIEWS_MAX). */
  maxViews: number;
  onChange: (change: Change) => void;
  /** A sync found that Redis went back in time for this cluster (and repaired it). */
  onRollback: (clusterId: string) => void;
  /** Told of the expiries this server's own scripts record. */
  events?: LeaseEvents;
  /** A leader this server believed held, which Redis lost (a rollback, a failover, lost
   * data), as the first sync after the loss found: for the history (history.ts). */
  onLost?: (clusterId: string, component: Component, leader: Leader) => void;
  logger: Log;
}

export class ViewRegistry {
  private readonly views = new Map<string, ClusterView>();
  private readonly opening = new Map<string, Promise<ClusterView>>();
  /** The clusters whose own channel this server subscribes to. */
  private readonly subscribed = new Set<string>();
  /** Clusters born (first written) while their view was being opened. */
  private readonly bornWhileOpening = new Set<string>();
  /** Clusters where Redis may have lost leases this server acknowledged (a failover, lost
   * data): their next sync tells which (lostLeaders). */
  private readonly lossSuspects = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;
  constructor(private readonly opts: ViewRegistryOptions) {
    const { link } = opts;
    link.on('message', (channel, message) => (channel === BORN_CHANNEL ? this.onBorn(message) : this.onMessage(channel, message)));
    link.on('down', (only) => this.views.forEach((v, id) => (!only || only(id)) && v.suspend()));
    // On every return of the link: the pub/sub connection may be a new one (a failover), and
    // the views resync, which catches up on a birth missed meanwhile.
    link.on('up', (only) => {
      this.followBirths();
      this.views.forEach((v, id) => (!only || only(id)) && void v.resync());
    });
    // Sharded pub/sub subscribed anew (a Redis Cluster's failover or moved slot): the views
    // whose shard serves resync now, the others when their shard is up again.
    link.on('resubscribed', () => this.views.forEach((v, id) => link.isHealthyFor(id) && void v.resync()));
    if (link.isHealthy) this.followBirths();
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, opts.idleMs / 4));
    this.sweeper.unref();
  }

  /** Subscribes to BORN_CHANNEL (again: harmless). A failure is no loss of correctness:
   * every view resyncs when the link is up again. */
  private followBirths(): void {
    this.opts.link.sub.subscribe(BORN_CHANNEL).catch((err: unknown) => this.opts.logger.warn({ err }, 'could not subscribe to the births of clusters'));
  }

  /** Reads every cluster again, whole: after Redis lost data, once what this server
   * answered was written back into it (floorsWriteback.ts). */
  resyncAll(): void {
    this.views.forEach((v) => void v.resync(true));
  }

  /** Redis may have lost leases of these clusters: at their views' next sync (the caller
   * sees that one follows), the leaders they believed that Redis no longer has are
   * reported lost. */
  suspectLoss(clusterIds: Iterable<string>): void {
    for (const id of clusterIds) if (this.views.has(id)) this.lossSuspects.add(id);
  }

  get size(): number {
    return this.views.size;
  }

  /** The views open, by cluster id (the metrics read them when scraped). */
  get all(): ReadonlyMap<string, ClusterView> {
    return this.views;
  }

  /** The view when it can answer at once (the hot path of reads), else null: then `get`. */
  ready(clusterId: string): ClusterView | null {
    const view = this.views.get(clusterId);
    if (!view || !view.live || view.settling || !this.opts.link.isHealthyFor(clusterId)) return null;
    view.lastUsed = Date.now();
    return view;
  }

  /** A live view of the cluster, opened if needed; RedisUnavailable when Redis is not. */
  async get(clusterId: string): Promise<ClusterView> {
    if (!this.opts.link.isHealthyFor(clusterId)) throw new RedisUnavailableError();
    const view = this.views.get(clusterId);
    if (!view) return this.open(clusterId);
    view.lastUsed = Date.now();
    if (!view.live) await view.resync();
    else await view.settled();
    if (!view.live) throw new RedisUnavailableError();
    return view;
  }

  /** The highest fencing token this server knows granted to the component: what its view
   * saw, and what it answered (its floors). A lower token was superseded, whatever a Redis
   * that went back in time says. */
  tokenFloor(clusterId: string, component: Component): number {
    return Math.max(this.views.get(clusterId)?.tokenFloor(component) ?? 0, this.opts.floors.token(clusterId, component));
  }

  /** The view if this server has one open, without waiting for anything. */
  peek(clusterId: string): ClusterView | undefined {
    return this.views.get(clusterId);
  }

  keys(clusterId: string): ClusterKeys {
    return this.views.get(clusterId)?.keys ?? new ClusterKeys(clusterId);
  }

  private open(clusterId: string): Promise<ClusterView> {
    let p = this.opening.get(clusterId);
    if (!p) {
      p = this.openView(clusterId).finally(() => this.opening.delete(clusterId));
      this.opening.set(clusterId, p);
    }
    return p;
  }

  /** A sync store that reports the leaders the view believed held and a sync no longer
   * finds, when Redis went back in time (the sync says) or may have lost leases (a
   * suspected loss): `holderOf` answers what the view believed, before the sync applies. */
  private lostLeaders(clusterId: string, store: SyncStore, holderOf: (c: Component) => Leader | null): SyncStore {
    const onLost = this.opts.onLost;
    if (!onLost) return store;
    return {
      ...store,
      sync: async (believed, floor) => {
        const r = await store.sync(believed, floor);
        // Read once the sync answered: a suspicion raised while it ran is about the Redis
        // it read (the loss came before the suspicion).
        const suspected = this.lossSuspects.delete(clusterId);
        if (!r.rolledBack && !suspected) return r;
        for (const [component, sessionId] of believed) {
          const held = holderOf(component);
          if (held?.sessionId === sessionId && r.state.get(component)?.leader?.sessionId !== sessionId) onLost(clusterId, component, held);
        }
        return r;
      },
    };
  }

  private async openView(clusterId: string): Promise<ClusterView> {
    const { link, store, floors, onChange, onRollback, logger } = this.opts;
    const keys = new ClusterKeys(clusterId);
    const view: ClusterView = new ClusterView(keys, {
      store: this.lostLeaders(
        clusterId,
        reportingStore(leaseSyncStore(store, keys, floors, onRollback), (changes) =>
          this.opts.events?.recorded(clusterId, changes, (c) => view.holder(c)),
        ),
        (c) => view.holder(c),
      ),
      onChange: (change) => {
        floors.noteChanges(clusterId, [change]);
        onChange(change);
      },
      isRedisHealthy: () => link.isHealthyFor(clusterId),
      log: logger,
    });
    this.bornWhileOpening.delete(clusterId);
    this.views.set(clusterId, view);
    await view.resync(true);
    try {
      if (!view.live) throw new RedisUnavailableError();
      // A cluster with data: subscribe, then replay what was written since the read.
      if (!view.unborn || this.bornWhileOpening.delete(clusterId)) await this.subscribe(view);
    } catch (err) {
      this.drop(view);
      throw err;
    }
    this.evict(view);
    return view;
  }

  /** Subscribes to the cluster's channel, then brings the view up to what was written
   * before the subscription took. */
  private async subscribe(view: ClusterView): Promise<void> {
    const id = view.keys.clusterId;
    if (this.subscribed.has(id)) return;
    this.subscribed.add(id);
    try {
      await this.opts.link.follow(view.keys.channel);
    } catch (err) {
      this.subscribed.delete(id);
      throw new RedisUnavailableError(err);
    }
    // A sync under way may have read the log before the subscription took: one more after.
    await view.settled();
    await view.resync();
    if (!view.live) throw new RedisUnavailableError();
  }

  /** A cluster that had no data was written: its view, if any, subscribes and catches up. */
  private onBorn(channel: string): void {
    const clusterId = ClusterKeys.clusterOfChannel(channel);
    if (clusterId === null) return;
    const view = this.views.get(clusterId);
    if (!view) {
      if (this.opening.has(clusterId)) this.bornWhileOpening.add(clusterId);
      return;
    }
    // A failure leaves the view not live; the next read or the link's return resyncs it.
    this.subscribe(view).catch((err: unknown) => this.opts.logger.warn({ err, clusterId }, 'could not follow a cluster born'));
  }

  private onMessage(channel: string, message: string): void {
    const clusterId = ClusterKeys.clusterOfChannel(channel);
    const view = clusterId === null ? undefined : this.views.get(clusterId);
    // This server's own messages of new TTLs: it timed those leases already.
    if (!view || messageOrigin(message) === this.opts.store.origin) return;
    try {
      const m = parseMessage(message);
      if (!Array.isArray(m)) view.ingest([m]);
      else {
        for (const n of m) {
          view.extend(n.component, n.sessionId, n.ttlMs);
          this.opts.floors.raiseTtl(clusterId!, n.ttlMs);
        }
      }
    } catch (err) {
      this.opts.logger.error({ err, channel }, 'unreadable change message');
    }
  }

  private sweep(): void {
    const cutoff = Date.now() - this.opts.idleMs;
    for (const view of this.views.values()) if (this.droppable(view) && view.lastUsed < cutoff) this.drop(view);
  }

  /** A view that times a live lease stays: its expiry is to be recorded (election.ts,
   * record); so does one with watchers or long-polls, or a sync under way. */
  private droppable(view: ClusterView): boolean {
    return view.idle && !view.timing && !view.settling;
  }

  /** Past `maxViews`, drops the least recently used droppable views (never `opened`, about
   * to be answered from), down to 90% of it, so that the sort is paid once every tenth of
   * the cap rather than on every open. */
  private evict(opened: ClusterView): void {
    const { maxViews } = this.opts;
    if (this.views.size <= maxViews) return;
    const excess = this.views.size - Math.floor(maxViews * 0.9);
    const candidates = [...this.views.values()].filter((v) => v !== opened && this.droppable(v)).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const view of candidates.slice(0, excess)) this.drop(view);
  }

  private drop(view: ClusterView): void {
    const id = view.keys.clusterId;
    view.close();
    this.views.delete(id);
    if (this.subscribed.delete(id)) this.opts.link.unfollow(view.keys.channel).catch(() => {});
  }

  /** The server is shutting down: long-polls answer now rather than hold it up. */
  drain(): void {
    for (const view of this.views.values()) view.drain();
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const view of this.views.values()) view.close();
    this.views.clear();
    this.subscribed.clear();
  }
}
