/**
 * A server's live picture of one cluster's leaders, kept exact by the change stream.
 *
 * Reads are answered from it without a Redis round trip. Each change carries the index
 * before it (`prev`), so a change that does not follow the index the view holds shows a
 * gap: the view then replays the log from Redis, or, when the log no longer covers the
 * gap, reads the whole state again. The view also times every lease it knows and asks
 * Redis when one should have run out, so that expiry is noticed by the servers
 * themselves, not by keyspace notifications.
 */
import type { Log } from './log.js';
import { sameLeader, type Change, type Leader } from './changes.js';
import { compareComponents, SINGLETON_COMPONENTS, type ClusterKeys, type Component } from './ids.js';
import type { LeaseStore } from './leaseStore.js';

/** How long after a lease should have ended the server asks Redis about it. */
const EXPIRY_SLACK_MS = 3;
/** How soon a failed expiry check is tried again while Redis is otherwise reachable. */
const EXPIRY_RETRY_MS = 250;
/** How soon a failed resync is tried again while Redis is otherwise reachable. */
const RESYNC_RETRY_MS = 1000;

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

export type WatchMessage = Snapshot | { type: 'change'; change: Change };

export interface ViewContext {
  store: LeaseStore;
  isRedisHealthy: () => boolean;
  onChange: (change: Change) => void;
  log: Log;
}

interface Slot {
  component: Component;
  leader: Leader | null;
  /** performance.now() at which the lease ends, as far as this server knows. */
  expiresAt: number;
  /** Index of the last change of this component. */
  modIndex: number;
  /** Highest fencing token seen for it: a floor for the next one. */
  maxToken: number;
  timer: NodeJS.Timeout | null;
}

interface Watcher {
  components: Set<Component> | null;
  deliver: (message: WatchMessage) => void;
  /** Highest index this watcher has been brought up to. */
  sent: number;
  /** Messages held back while a replay is read. */
  queue: WatchMessage[] | null;
}

interface Waiter {
  after: number;
  component: Component | null;
  done: () => void;
}

export class ClusterView {
  index = 0;
  private textOf = 0;
  private text = '0';
  live = false;
  lastUsed = Date.now();
  private readonly slots = new Map<Component, Slot>();
  /** The components a full listing names, in order: listed again once a leader changed. */
  private listed: Component[] | null = null;
  private readonly watchers = new Set<Watcher>();
  private readonly waiters = new Set<Waiter>();
  private busy: Promise<void> | null = null;
  /** Set when the server shuts down: long-polls answer at once. */
  private draining = false;
  private needFullSync = false;
  private pending: Change[] = [];
  private closed = false;

  constructor(
    readonly keys: ClusterKeys,
    private readonly ctx: ViewContext,
  ) {}

  get idle(): boolean {
    return this.watchers.size === 0 && this.waiters.size === 0;
  }

  /** Whether a replay or resync is under way. */
  get settling(): boolean {
    return this.busy !== null;
  }

  /** Settles once no replay or resync is under way. */
  settled(): Promise<void> {
    return this.busy ?? Promise.resolve();
  }

  // ---- reads

  /** The index as decimal text, made once per index: reads put it in every answer. */
  get indexText(): string {
    if (this.textOf !== this.index) {
      this.text = String(this.index);
      this.textOf = this.index;
    }
    return this.text;
  }

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

  private stateOf(slot: Slot): LeaderState {
    return { leader: slot.leader!, remainingMs: Math.max(0, Math.round(slot.expiresAt - performance.now())) };
  }

  // ---- long-poll

  /** Resolves once the cluster (or the one component) changed past `after`, or on timeout. */
  waitForChange(after: number, component: Component | null, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.changedSince(after, component) || this.draining) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        this.waiters.delete(waiter);
        resolve();
      };
      const waiter: Waiter = { after, component, done: finish };
      const timer = setTimeout(finish, timeoutMs);
      signal?.addEventListener('abort', finish);
      this.waiters.add(waiter);
    });
  }

  private changedSince(after: number, component: Component | null): boolean {
    return (component === null ? this.index : (this.slots.get(component)?.modIndex ?? 0)) > after;
  }

  private wake(): void {
    for (const w of this.waiters) if (this.changedSince(w.after, w.component)) w.done();
  }

  // ---- websocket watchers

  /**
   * Starts delivering messages: a snapshot, or with `since` the changes after it (a
   * snapshot when the log no longer holds them all), then every change as it happens.
   * Returns the function that stops it.
   */
  async watch(
    components: Set<Component> | null,
    since: number | undefined,
    deliver: (message: WatchMessage) => void,
  ): Promise<() => void> {
    const w: Watcher = { components, deliver, sent: 0, queue: null };
    const stop = () => void this.watchers.delete(w);
    if (since === undefined) {
      deliver(this.snapshot(components));
      w.sent = this.index;
      this.watchers.add(w);
      return stop;
    }
    // Hold live changes back while the replay is read, so that none is lost or doubled.
    w.queue = [];
    this.watchers.add(w);
    try {
      const r = await this.ctx.store.changesSince(this.keys, since);
      if (r.complete) {
        w.sent = since;
        for (const c of r.changes) this.offer(w, { type: 'change', change: c }, true);
      } else {
        deliver(this.snapshot(components));
        w.sent = this.index;
      }
    } catch (err) {
      stop();
      throw err;
    }
    const held = w.queue;
    w.queue = null;
    for (const m of held) this.offer(w, m);
    return stop;
  }

  private offer(w: Watcher, m: WatchMessage, replay = false): void {
    if (w.queue && !replay) {
      w.queue.push(m);
      return;
    }
    if (m.type === 'snapshot') {
      if (m.index <= w.sent) return; // a replay already brought this watcher further
      w.sent = m.index;
      w.deliver(w.components ? this.snapshot(w.components) : m);
      return;
    }
    const c = m.change;
    if (c.index <= w.sent) return;
    w.sent = c.index;
    if (!w.components || w.components.has(c.component)) w.deliver(m);
  }

  private broadcast(m: WatchMessage): void {
    for (const w of this.watchers) this.offer(w, m);
  }

  // ---- the change stream

  /** Takes changes from pub/sub or from a script's answer, in any order. */
  ingest(changes: Change[]): void {
    for (const c of changes) {
      if (this.busy) {
        this.pending.push(c);
      } else if (c.index <= this.index) {
        continue;
      } else if (c.prev === this.index) {
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
    const expiresAt = performance.now() + ttlMs;
    const shortened = expiresAt < slot.expiresAt;
    slot.expiresAt = expiresAt;
    if (shortened) this.rearm(slot);
  }

  /**
   * Brings the view up to date with Redis: replays the log after the view's index, or
   * reads the whole state when the log cannot (or `full` asks for it). Never rejects:
   * on failure the view stays not live until the next resync.
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
      this.ctx.log.warn({ err, clusterId: this.keys.clusterId }, 'could not synchronise with redis');
      // After an outage the registry resyncs every view; a failure while Redis answers is retried here.
      if (this.ctx.isRedisHealthy() && !this.closed) setTimeout(() => void this.resync(), RESYNC_RETRY_MS).unref();
    }
  }

  private async catchUp(): Promise<boolean> {
    const r = await this.ctx.store.changesSince(this.keys, this.index);
    if (!r.complete) return false;
    for (const c of r.changes) if (c.index > this.index) this.apply(c);
    return true;
  }

  private async fullSync(): Promise<void> {
    const believed = new Map<Component, string>();
    for (const s of this.slots.values()) if (s.leader) believed.set(s.component, s.leader.sessionId);
    const r = await this.ctx.store.sync(this.keys, believed, this.index);
    // Whatever part of the missed history the log still holds goes out as changes: the
    // expiries this sync recorded, and those another server recorded first (after a data
    // loss, say). Only what the log no longer holds is left to a snapshot.
    const kept = this.index > 0 ? await this.ctx.store.changesSince(this.keys, this.index) : { changes: [] };
    const missed = new Map<number, Change>();
    for (const c of [...kept.changes, ...r.changes]) if (c.index > this.index && c.index <= r.index) missed.set(c.index, c);
    for (const c of [...missed.values()].sort((a, b) => a.index - b.index)) this.apply(c);
    let differs = false;
    const now = performance.now();
    for (const [component, s] of r.state) {
      const slot = this.slotOf(component);
      if (!sameLeader(slot.leader, s.leader)) {
        slot.leader = s.leader;
        slot.modIndex = r.index;
        this.listed = null;
        differs = true;
      }
      if (s.leader) {
        slot.expiresAt = now + s.ttlMs;
        slot.maxToken = Math.max(slot.maxToken, s.leader.fencingToken);
      }
    }
    // Whatever else changed unseen reaches watchers as a fresh snapshot.
    this.index = Math.max(this.index, r.index);
    if (differs) this.broadcast(this.snapshot());
    this.wake();
  }

  private apply(c: Change): void {
    const slot = this.slotOf(c.component);
    slot.leader = c.leader;
    slot.modIndex = c.index;
    this.listed = null;
    if (c.leader) {
      slot.expiresAt = performance.now() + c.ttlMs;
      slot.maxToken = Math.max(slot.maxToken, c.leader.fencingToken);
    }
    this.index = c.index;
    this.rearm(slot);
    this.ctx.onChange(c);
    this.broadcast({ type: 'change', change: c });
    this.wake();
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
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    if (!slot.leader || !this.live) return;
    const wait = delay ?? Math.max(0, slot.expiresAt - performance.now()) + EXPIRY_SLACK_MS;
    slot.timer = setTimeout(() => {
      slot.timer = null;
      void this.checkExpiry(slot);
    }, wait);
    slot.timer.unref();
  }

  private async checkExpiry(slot: Slot): Promise<void> {
    const leader = slot.leader;
    if (!leader || !this.live || this.busy) return; // a resync re-arms every timer
    if (performance.now() < slot.expiresAt) return this.rearm(slot);
    try {
      const r = await this.ctx.store.expire(this.keys, slot.component, this.index);
      if (r.code === 1 && r.leader?.sessionId === leader.sessionId) {
        slot.expiresAt = performance.now() + r.ttlMs; // renewed through another server
        this.rearm(slot);
      } else if (r.code === 0) {
        this.ingest(r.changes);
      } else {
        void this.resync(); // somebody else recorded the change: make sure this view has it
      }
    } catch (err) {
      if (!this.ctx.isRedisHealthy()) return; // the resync after the outage re-arms it
      this.ctx.log.warn({ err, component: slot.component }, 'expiry check failed; retrying');
      this.rearm(slot, EXPIRY_RETRY_MS);
    }
  }

  /** Redis went away: stop answering from this view until it is resynchronised. */
  suspend(): void {
    this.live = false;
    for (const slot of this.slots.values()) this.rearm(slot);
  }

  /** Answers every long-poll now, and any later one at once. */
  drain(): void {
    this.draining = true;
    for (const w of this.waiters) w.done();
  }

  close(): void {
    this.closed = true;
    this.suspend();
    this.drain();
    this.watchers.clear();
  }
}
