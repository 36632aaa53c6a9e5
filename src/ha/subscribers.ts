/**
 * The subscribers of one cluster's view: long-polls waiting for a change past an index,
 * and websocket watchers, each brought up to date once (a snapshot, or a replay from the
 * log) and then sent every change as it happens, in index order, none doubled.
 *
 * What changed is the sync's business (clusterSync.ts); this module only hears of it,
 * through `changed` and `resynced`, from `ClusterView`.
 */
import type { Change } from './changes.js';
import type { Component } from './ids.js';
import type { Snapshot } from './clusterSync.js';
import type { SyncStore } from './syncStore.js';

export type WatchMessage = Snapshot | { type: 'change'; change: Change };

/** What the subscribers read of the view's state. */
export interface SubscribedState {
  readonly index: number;
  snapshot(components: Set<Component> | null): Snapshot;
  changedSince(after: number, component: Component | null): boolean;
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

export class Subscribers {
  private readonly watchers = new Set<Watcher>();
  private readonly waiters = new Set<Waiter>();
  /** Set when the server shuts down: long-polls answer at once. */
  private draining = false;

  constructor(
    private readonly state: SubscribedState,
    /** The log, for a watcher that resumes after an index. */
    private readonly store: Pick<SyncStore, 'changes'>,
  ) {}

  get idle(): boolean {
    return this.watchers.size === 0 && this.waiters.size === 0;
  }

  // ---- what the sync reports

  /** A change was applied to the state. */
  changed(change: Change): void {
    this.broadcast({ type: 'change', change });
    this.wake();
  }

  /** A resync read the whole state; when it differs from what the changes told made it (a
   * leader, or the index after a gap), watchers get a snapshot, at an index above all they had. */
  resynced(differs: boolean): void {
    if (differs) this.broadcast(this.state.snapshot(null));
    this.wake();
  }

  // ---- long-poll

  /** Resolves once the cluster (or the one component) changed past `after`, or on timeout. */
  waitForChange(after: number, component: Component | null, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.state.changedSince(after, component) || this.draining) return Promise.resolve();
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

  private wake(): void {
    for (const w of this.waiters) if (this.state.changedSince(w.after, w.component)) w.done();
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
      deliver(this.state.snapshot(components));
      w.sent = this.state.index;
      this.watchers.add(w);
      return stop;
    }
    // Hold live changes back while the replay is read, so that none is lost or doubled.
    w.queue = [];
    this.watchers.add(w);
    try {
      const r = await this.store.changes(since);
      if (r.complete) {
        w.sent = since;
        for (const c of r.changes) this.offer(w, { type: 'change', change: c }, true);
      } else {
        deliver(this.state.snapshot(components));
        w.sent = this.state.index;
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
      w.deliver(w.components ? this.state.snapshot(w.components) : m);
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

  /** Answers every long-poll now, and any later one at once. */
  drain(): void {
    this.draining = true;
    for (const w of this.waiters) w.done();
  }

  close(): void {
    this.drain();
    this.watchers.clear();
  }
}
