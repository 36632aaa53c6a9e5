/**
 * One cluster's leaders as this server knows them, and how that picture is kept exact.
 *
 * Each change carries the index before it (`prev`), so a change that does not follow the
 * index held shows a gap: the sync then replays the log, or, when the log no longer covers
 * the gap, reads the whole state again (a resync). It also times every lease it knows and
 * asks the store when one should have run out, so that expiry is noticed by the servers
 * themselves, not by keyspace notifications.
 *
 * It knows nothing of subscribers: it tells a `SyncListener` of every change it applies
 * and of every resync, and `ClusterView` (clusterView.ts) passes them on to long-polls and
 * watchers. Redis is behind the narrow `SyncStore` (syncStore.ts) and time behind a
 * `Clock`, so that test/clusterSync.test.ts drives every case deterministically.
 */
import type { Log } from './log.js';
import { sameLeader, type Change, type Leader } from './changes.js';
import { compareComponents, SINGLETON_COMPONENTS, type Component } from './ids.js';
import { Code } from './replies.js';
import type { SyncStore } from './syncStore.js';

/** How long after a lease should have ended the server asks Redis about it. */
export const EXPIRY_SLACK_MS = 3;
/** How soon a failed expiry check is tried again while Redis is otherwise reachable. */
export const EXPIRY_RETRY_MS = 250;
/** How soon a failed resync is tried again while Redis is otherwise reachable. */
export const RESYNC_RETRY_MS = 1000;

export interface LeaderState {
  leader: Leader;
  remainingMs: number;
}

export interface ComponentState {
  component: Component;
  leader: LeaderState | null;
}

export interface Snapshot {
  type: 'snapshot';
  index: number;
  leaders: ComponentState[];
}

/** Monotonic time and timers: the system's, or a test's (test/support/TestingClock.ts). */
export interface Clock {
  /** Milliseconds, as performance.now(). */
  now(): number;
  /** A timer that does not keep the process alive. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** What the sync tells whoever serves the subscribers. */
export interface SyncListener {
  /** A change was applied; changes come in index order, each once. `told` is false for a
   * change that came after a gap the log no longer covers: watchers told it would have a
   * gap before it they never heard of, so the `resynced` that follows tells them instead. */
  changed(change: Change, told: boolean): void;
  /** A resync read the whole state (after any changes it replayed were `changed`);
   * `differs` when the state is not what the changes told made it, a leader or the index:
   * then the state goes out as a snapshot, under an index above every one told before. */
  resynced(differs: boolean): void;
}

export interface ClusterSyncOptions {
  store: SyncStore;
  listener: SyncListener;
  /** Whether Redis answers at all: a failure while it does is retried by the sync itself;
   * after an outage the registry resyncs every view. */
  isRedisHealthy: () => boolean;
  log: Log;
  /** For the logs. */
  clusterId: string;
  clock?: Clock;
}

interface Slot {
  component: Component;
  leader: Leader | null;
  /** Clock time at which the lease ends, as far as this server knows. */
  expiresAt: number;
  /** Index of the last change of this component. */
  modIndex: number;
  /** Highest fencing token seen for it: a floor for the next one. */
  maxToken: number;
  timer: unknown;
}

export class ClusterSync {
  /** The index of the last change applied, or of the last state read. */
  index = 0;
  /** Whether the state is known to be exact: false until the first sync, after a failed
   * one, and while Redis is away. */
  live = false;
  /** The last sync found no index in Redis (a cluster with no data) and no change came
   * since: the index held was derived from Redis's clock, not stored, so the first change
   * to come follows on from none (its `prev` is 0). */
  unborn = false;
  private readonly slots = new Map<Component, Slot>();
  /** The components a full listing names, in order: listed again once a leader changed. */
  private listed: Component[] | null = null;
  private busy: Promise<void> | null = null;
  private needFullSync = false;
  /** Changes that arrived during a replay or resync, or after a gap: taken up after it. */
  private pending: Change[] = [];
  private closed = false;
  private readonly store: SyncStore;
  private readonly listener: SyncListener;
  private readonly clock: Clock;

  constructor(private readonly opts: ClusterSyncOptions) {
    this.store = opts.store;
    this.listener = opts.listener;
    this.clock = opts.clock ?? systemClock;
  }

  /** Whether a replay or resync is under way. */
  get settling(): boolean {
    return this.busy !== null;
  }

  /** Settles once no replay or resync is under way. */
  settled(): Promise<void> {
    return this.busy ?? Promise.resolve();
  }

  /** Whether it knows a live lease, whose expiry it is to record. */
  get timing(): boolean {
    for (const slot of this.slots.values()) if (slot.leader) return true;
    return false;
  }

  // ---- reads

  /** The leader of a component as this view knows it, without its lease time. */
  holder(component: Component): Leader | null {
    return this.slots.get(component)?.leader ?? null;
  }

  leader(component: Component): LeaderState | null {
    const slot = this.slots.get(component);
    return slot?.leader ? this.stateOf(slot) : null;
  }

  /** Every singleton, and every job manager that has a leader; or exactly the named ones. */
  leaders(components: Set<Component> | null = null): ComponentState[] {
    const names = components ? [...components].sort(compareComponents) : (this.listed ??= this.listing());
    return names.map((component) => ({ component, leader: this.leader(component) }));
  }

  private listing(): Component[] {
    const jobManagers = [...this.slots.values()].filter((s) => s.leader && s.component.startsWith('jobmanager/'));
    return [...SINGLETON_COMPONENTS, ...jobManagers.map((s) => s.component).sort(compareComponents)];
  }

  snapshot(components: Set<Component> | null = null): Snapshot {
    return { type: 'snapshot', index: this.index, leaders: this.leaders(components) };
  }

  tokenFloor(component: Component): number {
    return this.slots.get(component)?.maxToken ?? 0;
  }

  /** Whether the cluster (or the one component) changed after `after`. */
  changedSince(after: number, component: Component | null): boolean {
    return (component === null ? this.index : (this.slots.get(component)?.modIndex ?? 0)) > after;
  }

  private stateOf(slot: Slot): LeaderState {
    return { leader: slot.leader!, remainingMs: Math.max(0, Math.round(slot.expiresAt - this.clock.now())) };
  }

  // ---- the change stream

  /** Takes changes from pub/sub or from a script's answer, in any order. */
  ingest(changes: Change[]): void {
    for (const c of changes) {
      if (this.busy) {
        this.pending.push(c);
      } else if (c.index <= this.index) {
        continue;
      } else if (c.prev === this.index || (this.unborn && c.prev === 0)) {
        this.apply(c);
      } else {
        this.pending.push(c);
        void this.resync();
      }
    }
  }

  /** The lease of this session was renewed: time it anew (a timer set for a later end
   * than the new one is set again). */
  extend(component: Component, sessionId: string, ttlMs: number): void {
    const slot = this.slots.get(component);
    if (slot?.leader?.sessionId !== sessionId) return;
    const expiresAt = this.clock.now() + ttlMs;
    const shortened = expiresAt < slot.expiresAt;
    slot.expiresAt = expiresAt;
    if (shortened) this.rearm(slot);
  }

  /**
   * Brings the state up to date with Redis: replays the log after the index held, or
   * reads the whole state when the log cannot (or `full` asks for it). Never rejects:
   * on failure the sync stays not live until the next resync.
   */
  resync(full = false): Promise<void> {
    if (full) this.needFullSync = true;
    this.busy ??= this.runSync().finally(() => {
      this.busy = null;
      if (!this.live) return;
      const pending = this.pending;
      this.pending = [];
      this.ingest(pending);
    });
    return this.busy;
  }

  private async runSync(): Promise<void> {
    try {
      do {
        const full = this.needFullSync;
        this.needFullSync = false;
        if (full || !(await this.catchUp())) await this.fullSync();
      } while (this.needFullSync);
      this.live = !this.closed;
      for (const slot of this.slots.values()) this.rearm(slot);
    } catch (err) {
      this.live = false;
      this.opts.log.warn({ err, clusterId: this.opts.clusterId }, 'could not synchronise with redis');
      // After an outage the registry resyncs every view; a failure while Redis answers is retried here.
      if (this.opts.isRedisHealthy() && !this.closed) this.clock.setTimer(() => void this.resync(), RESYNC_RETRY_MS);
    }
  }

  private async catchUp(): Promise<boolean> {
    // An unborn cluster's log, once written, starts from none (its first change's index
    // before is 0): changes.lua takes an odd index as one answered while the cluster had no
    // data, and replays from there; an even one (kept from before a deletion) from 0.
    const r = await this.store.changes(this.unborn && this.index % 2 === 0 ? 0 : this.index);
    if (!r.complete) return false;
    for (const c of r.changes) if (c.index > this.index) this.apply(c);
    return true;
  }

  private async fullSync(): Promise<void> {
    const believed = new Map<Component, string>();
    for (const s of this.slots.values()) if (s.leader) believed.set(s.component, s.leader.sessionId);
    const r = await this.store.sync(believed, this.index);
    // The missed history the log still holds goes out as changes (the expiries this sync
    // recorded, and those another server recorded first, after a data loss say), but only
    // while it follows on from the index held: past the first gap (what the log lost) a
    // change would leave watchers a gap they were never told of, so from there on changes
    // are applied untold, and the snapshot below tells them all at once.
    const kept = this.index > 0 ? await this.store.changes(this.index) : { changes: [] };
    const missed = new Map<number, Change>();
    for (const c of [...kept.changes, ...r.changes]) if (c.index > this.index && c.index <= r.index) missed.set(c.index, c);
    let toldIndex = this.index;
    for (const c of [...missed.values()].sort((a, b) => a.index - b.index)) {
      const told = c.prev === toldIndex && this.index === toldIndex;
      this.apply(c, told);
      if (told) toldIndex = c.index;
    }
    // Whatever changed untold reaches watchers as a fresh snapshot, under an index none of
    // them has: the state's own, when it is above every change told (it always is past a
    // gap); else a new one. Raised before any slot changes, so that a failure leaves this
    // view to resync again (nothing untold was applied: their indexes would be above).
    const leaderDiffers = [...r.state].some(([component, s]) => !sameLeader(this.slots.get(component)?.leader ?? null, s.leader));
    // A cluster with no data answers a fresh index from Redis's clock to every sync. One that
    // had none at the last sync either keeps the index held (a write would have stored one
    // above both), sparing watchers and long-polls a wake for nothing; one that had data
    // (lost with Redis's, or deleted) moves on to the fresh one, above the floor.
    const unborn = !r.stored && r.changes.length === 0 && ![...r.state.values()].some((s) => s.leader);
    let index = unborn && this.unborn && this.index > 0 ? this.index : Math.max(this.index, r.index);
    if (leaderDiffers && index <= toldIndex) index = await this.store.raiseIndex(toldIndex);
    const differs = leaderDiffers || index > toldIndex;
    const now = this.clock.now();
    for (const [component, s] of r.state) {
      const slot = this.slotOf(component);
      if (!sameLeader(slot.leader, s.leader)) {
        slot.leader = s.leader;
        slot.modIndex = index;
        this.listed = null;
      }
      if (s.leader) {
        slot.expiresAt = now + s.ttlMs;
        slot.maxToken = Math.max(slot.maxToken, s.leader.fencingToken);
      }
    }
    this.index = index;
    this.unborn = unborn;
    this.listener.resynced(differs);
  }

  private apply(c: Change, told = true): void {
    const slot = this.slotOf(c.component);
    slot.leader = c.leader;
    slot.modIndex = c.index;
    this.listed = null;
    if (c.leader) {
      slot.expiresAt = this.clock.now() + c.ttlMs;
      slot.maxToken = Math.max(slot.maxToken, c.leader.fencingToken);
    }
    this.index = c.index;
    this.unborn = false;
    this.rearm(slot);
    this.listener.changed(c, told);
  }

  private slotOf(component: Component): Slot {
    let slot = this.slots.get(component);
    if (!slot) {
      slot = { component, leader: null, expiresAt: 0, modIndex: 0, maxToken: 0, timer: null };
      this.slots.set(component, slot);
    }
    return slot;
  }

  // ---- expiry

  private rearm(slot: Slot, delay?: number): void {
    if (slot.timer) this.clock.clearTimer(slot.timer);
    slot.timer = null;
    if (!slot.leader || !this.live) return;
    const wait = delay ?? Math.max(0, slot.expiresAt - this.clock.now()) + EXPIRY_SLACK_MS;
    slot.timer = this.clock.setTimer(() => {
      slot.timer = null;
      void this.checkExpiry(slot);
    }, wait);
  }

  private async checkExpiry(slot: Slot): Promise<void> {
    const leader = slot.leader;
    if (!leader || !this.live || this.busy) return; // a resync re-arms every timer
    if (this.clock.now() < slot.expiresAt) return this.rearm(slot);
    try {
      const r = await this.store.expire(slot.component, this.index);
      if (r.code === Code.Held && r.leader?.sessionId === leader.sessionId) {
        slot.expiresAt = this.clock.now() + r.ttlMs; // renewed through another server
        this.rearm(slot);
      } else if (r.code === Code.Done) {
        this.ingest(r.changes);
      } else {
        void this.resync(); // somebody else recorded the change: make sure this view has it
      }
    } catch (err) {
      if (!this.opts.isRedisHealthy()) return; // the resync after the outage re-arms it
      this.opts.log.warn({ err, component: slot.component }, 'expiry check failed; retrying');
      this.rearm(slot, EXPIRY_RETRY_MS);
    }
  }

  /** Redis went away: not live until resynchronised, and no lease timed meanwhile. */
  suspend(): void {
    this.live = false;
    for (const slot of this.slots.values()) this.rearm(slot);
  }

  /** For good: no sync makes it live again. */
  close(): void {
    this.closed = true;
    this.suspend();
  }
}
