/**
 * A server's live picture of one cluster's leaders, kept exact by the change stream.
 *
 * Reads are answered from it without a Redis round trip. It joins two parts that know
 * nothing of each other:
 *   - `ClusterSync` (clusterSync.ts): the state, and how it is kept in step with Redis
 *     through the narrow `SyncStore` (syncStore.ts): gaps, replays, resyncs, expiry;
 *   - `Subscribers` (subscribers.ts): long-polls and websocket watchers, told of every
 *     change and resync the sync makes.
 */
import type { Log } from './log.js';
import type { Change, Leader } from './changes.js';
import type { ClusterKeys, Component } from './ids.js';
import { ClusterSync, type Clock, type ComponentState, type LeaderState, type Snapshot } from './clusterSync.js';
import { Subscribers, type WatchMessage } from './subscribers.js';
import type { SyncStore } from './syncStore.js';

export type { ComponentState, LeaderState, Snapshot, WatchMessage };

export interface ViewContext {
  /** The cluster's store (`leaseSyncStore` on Redis). */
  store: SyncStore;
  isRedisHealthy: () => boolean;
  onChange: (change: Change) => void;
  log: Log;
  /** Time for the lease timers; the system's by default. */
  clock?: Clock;
}

export class ClusterView {
  lastUsed = Date.now();
  private textOf = 0;
  private text = '0';
  private readonly sync: ClusterSync;
  private readonly subscribers: Subscribers;

  constructor(
    readonly keys: ClusterKeys,
    ctx: ViewContext,
  ) {
    const { onChange } = ctx;
    this.sync = new ClusterSync({
      store: ctx.store,
      listener: {
        changed: (change, told) => {
          onChange(change);
          if (told) this.subscribers.changed(change);
        },
        resynced: (differs) => this.subscribers.resynced(differs),
      },
      isRedisHealthy: ctx.isRedisHealthy,
      log: ctx.log,
      clusterId: keys.clusterId,
      clock: ctx.clock,
    });
    this.subscribers = new Subscribers(this.sync, ctx.store);
  }

  /** The index of the last change applied, or of the last state read. */
  get index(): number {
    return this.sync.index;
  }

  /** Whether the view may answer: false until synchronised, and while Redis is away. */
  get live(): boolean {
    return this.sync.live;
  }

  get idle(): boolean {
    return this.subscribers.idle;
  }

  /** Whether the cluster had no data at the last sync, and no change came since (its index
   * then comes from Redis's clock; clusterSync.ts). */
  get unborn(): boolean {
    return this.sync.unborn;
  }

  /** Whether it times a live lease, whose expiry it is to record. */
  get timing(): boolean {
    return this.sync.timing;
  }

  /** Whether a replay or resync is under way. */
  get settling(): boolean {
    return this.sync.settling;
  }

  /** Settles once no replay or resync is under way. */
  settled(): Promise<void> {
    return this.sync.settled();
  }

  // ---- reads

  /** The index as decimal text, made once per index: reads put it in every answer. */
  get indexText(): string {
    const index = this.sync.index;
    if (this.textOf !== index) {
      this.text = String(index);
      this.textOf = index;
    }
    return this.text;
  }

  /** The leader of a component as this view knows it, without its lease time. */
  holder(component: Component): Leader | null {
    return this.sync.holder(component);
  }

  leader(component: Component): LeaderState | null {
    return this.sync.leader(component);
  }

  /** Every singleton, and every job manager that has a leader; or exactly the named ones. */
  leaders(components: Set<Component> | null = null): ComponentState[] {
    return this.sync.leaders(components);
  }

  snapshot(components: Set<Component> | null = null): Snapshot {
    return this.sync.snapshot(components);
  }

  tokenFloor(component: Component): number {
    return this.sync.tokenFloor(component);
  }

  // ---- subscribers

  /** Resolves once the cluster (or the one component) changed past `after`, or on timeout;
   * when woken by a replay or resync, once that is done: the view is live again by then (or
   * known not to be), rather than still marked not live after an outage (a 503). */
  async waitForChange(after: number, component: Component | null, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    await this.subscribers.waitForChange(after, component, timeoutMs, signal);
    await this.sync.settled();
  }

  /**
   * Starts delivering messages: a snapshot, or with `since` the changes after it (a
   * snapshot when the log no longer holds them all), then every change as it happens.
   * Returns the function that stops it.
   */
  watch(
    components: Set<Component> | null,
    since: number | undefined,
    deliver: (message: WatchMessage) => void,
  ): Promise<() => void> {
    return this.subscribers.watch(components, since, deliver);
  }

  // ---- the change stream

  /** Takes changes from pub/sub or from a script's answer, in any order. */
  ingest(changes: Change[]): void {
    this.sync.ingest(changes);
  }

  /** The lease of this session was renewed: time it anew. */
  extend(component: Component, sessionId: string, ttlMs: number): void {
    this.sync.extend(component, sessionId, ttlMs);
  }

  /**
   * Brings the view up to date with Redis: replays the log after the view's index, or
   * reads the whole state when the log cannot (or `full` asks for it). Never rejects:
   * on failure the view stays not live until the next resync.
   */
  resync(full = false): Promise<void> {
    return this.sync.resync(full);
  }

  /** Brings the view up to every change Redis holds now, for a consistent read: a replay
   * under way may have read the log before the write the reader knows of, so one more
   * starts after it (one round trip to Redis when nothing is missing). */
  async catchUp(): Promise<void> {
    await this.sync.settled();
    await this.sync.resync();
  }

  /** Redis went away: stop answering from this view until it is resynchronised. */
  suspend(): void {
    this.sync.suspend();
  }

  /** Answers every long-poll now, and any later one at once. */
  drain(): void {
    this.subscribers.drain();
  }

  close(): void {
    this.sync.close();
    this.subscribers.close();
  }
}
