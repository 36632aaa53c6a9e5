/** The cluster views of a server: opened on first use, fed from pub/sub, resynchronised
 * after every Redis outage or data loss, and dropped when nobody used them for a while. */
import type { Log } from './log.js';
import { messageOrigin, parseMessage, type Change } from './changes.js';
import { ClusterView } from './clusterView.js';
import { RedisUnavailableError } from './errors.js';
import { ClusterKeys, type Component } from './ids.js';
import type { LeaseStore } from './leaseStore.js';
import type { RedisLink } from './redisLink.js';
import { leaseSyncStore } from './syncStore.js';
import type { Floors } from './floors.js';
import { reportingStore, type LeaseEvents } from './events.js';

export interface ViewRegistryOptions {
  link: RedisLink;
  store: LeaseStore;
  /** What this server has answered; every change it sees raises them. */
  floors: Floors;
  idleMs: number;
  onChange: (change: Change) => void;
  /** A sync found that Redis went back in time for this cluster (and repaired it). */
  onRollback: (clusterId: string) => void;
  /** Told of the expiries this server's own scripts record. */
  events?: LeaseEvents;
  logger: Log;
}

export class ViewRegistry {
  private readonly views = new Map<string, ClusterView>();
  private readonly opening = new Map<string, Promise<ClusterView>>();
  private readonly sweeper: NodeJS.Timeout;
  constructor(private readonly opts: ViewRegistryOptions) {
    const { link } = opts;
    link.on('message', (channel, message) => this.onMessage(channel, message));
    link.on('down', () => this.views.forEach((v) => v.suspend()));
    link.on('up', () => this.views.forEach((v) => void v.resync()));
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, opts.idleMs / 4));
    this.sweeper.unref();
  }

  /** Reads every cluster again, whole: after Redis lost data, once what this server
   * answered was written back into it (floorsWriteback.ts). */
  resyncAll(): void {
    this.views.forEach((v) => void v.resync(true));
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
    if (!view || !view.live || view.settling || !this.opts.link.isHealthy) return null;
    view.lastUsed = Date.now();
    return view;
  }

  /** A live view of the cluster, opened if needed; RedisUnavailable when Redis is not. */
  async get(clusterId: string): Promise<ClusterView> {
    if (!this.opts.link.isHealthy) throw new RedisUnavailableError();
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

  private async openView(clusterId: string): Promise<ClusterView> {
    const { link, store, floors, onChange, onRollback, logger } = this.opts;
    const keys = new ClusterKeys(clusterId);
    const view = new ClusterView(keys, {
      store: reportingStore(leaseSyncStore(store, keys, floors, onRollback), (changes) =>
        this.opts.events?.recorded(clusterId, changes, (c) => view.holder(c)),
      ),
      onChange: (change) => {
        floors.noteChanges(clusterId, [change]);
        onChange(change);
      },
      isRedisHealthy: () => link.isHealthy,
      log: logger,
    });
    // Subscribe before reading the state, so that no change falls between the two.
    try {
      await link.sub.subscribe(view.keys.channel);
    } catch (err) {
      throw new RedisUnavailableError(err);
    }
    this.views.set(clusterId, view);
    await view.resync(true);
    if (!view.live) {
      this.drop(view);
      throw new RedisUnavailableError();
    }
    return view;
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
    // A view that times a live lease stays: its expiry is to be recorded (election.ts, record).
    for (const view of this.views.values()) if (view.idle && !view.timing && view.lastUsed < cutoff) this.drop(view);
  }

  private drop(view: ClusterView): void {
    view.close();
    this.views.delete(view.keys.clusterId);
    this.opts.link.sub.unsubscribe(view.keys.channel).catch(() => {});
  }

  /** The server is shutting down: long-polls answer now rather than hold it up. */
  drain(): void {
    for (const view of this.views.values()) view.drain();
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const view of this.views.values()) view.close();
    this.views.clear();
  }
}
