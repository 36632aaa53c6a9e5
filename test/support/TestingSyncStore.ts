/**
 * A cluster's store in memory, behind the interface the sync uses (src/ha/syncStore.ts),
 * for deterministic tests of the sync logic: not a fake Redis, a fake *store*.
 *
 * It keeps what the Lua scripts keep: an index, a capped log of changes, and each
 * component's leader, and answers `changes`, `sync` and `expire` as the scripts do. A test
 * writes as another server would (`grant`, `revoke`), trims the log, loses data the way a
 * failover to a lagging replica does (`failover`), decides which lease has run out
 * (`runOut`), and steers the answers: `hold` keeps every answer back until `release`, so
 * that the test chooses what happens while a replay is in flight; `failNext` makes a call
 * fail.
 */
import type { Change, ChangeEvent, Leader } from '../../src/ha/changes.js';
import type { Component } from '../../src/ha/ids.js';
import { Code } from '../../src/ha/replies.js';
import type { ChangesResult, OpResult, SyncResult, SyncStore } from '../../src/ha/syncStore.js';

type Method = 'changes' | 'sync' | 'expire' | 'raiseIndex';

export interface Call {
  method: Method;
  /** `since` for changes, `floor` for sync, expire and raiseIndex. */
  at: number;
  component?: Component;
  believed?: Map<Component, string>;
}

interface Held {
  call: Call;
  settle: () => void;
}

export class TestingSyncStore implements SyncStore {
  index = 0;
  /** Every change recorded, including those the log dropped. */
  private history: Change[] = [];
  /** The log: the last `logSize` changes. */
  private log: Change[] = [];
  private readonly ranOut = new Set<Component>();
  private tokens = 0;
  readonly calls: Call[] = [];
  private held: Held[] | null = null;
  private readonly failures: Array<{ method: Method; err: Error }> = [];

  constructor(public logSize = 100) {}

  // ---- the interface

  changes(since: number): Promise<ChangesResult> {
    return this.answer({ method: 'changes', at: since }, () => {
      const changes = this.log.filter((c) => c.index > since);
      const complete = this.index !== 0 && (changes.length ? changes[0].prev === since : this.index === since);
      return { index: this.index, complete, changes };
    });
  }

  sync(believed: Map<Component, string>, floor: number): Promise<SyncResult> {
    return this.answer({ method: 'sync', at: floor, believed: new Map(believed) }, () => {
      // Below an index the caller has seen: the store went back in time, and the sync
      // raises its index above that (as sync.lua does).
      const rolledBack = this.index !== 0 && this.index < floor;
      if (rolledBack) this.index = floor + 1;
      const changes: Change[] = [];
      const state = new Map<Component, { leader: Leader | null; ttlMs: number }>();
      for (const component of new Set([...this.components(), ...believed.keys()])) {
        if (this.ranOut.has(component)) changes.push(this.expireNow(component, floor));
        // A believed lease whose leader Redis does not know at all: lost with its data.
        else if (believed.has(component) && !this.last(component)) changes.push(this.expireNow(component, floor));
        const leader = this.leaderOf(component);
        state.set(component, { leader, ttlMs: leader ? this.ttlOf(component) : 0 });
      }
      return { index: this.index, rolledBack, changes, state, stored: this.index !== 0 };
    });
  }

  raiseIndex(floor: number): Promise<number> {
    return this.answer({ method: 'raiseIndex', at: floor }, () => {
      this.index = Math.max(this.index + 1, floor + 1);
      return this.index;
    });
  }

  expire(component: Component, floor: number): Promise<OpResult> {
    return this.answer({ method: 'expire', at: floor, component }, () => {
      const leader = this.leaderOf(component);
      if (leader && !this.ranOut.has(component)) return { code: Code.Held, leader, ttlMs: this.ttlOf(component), changes: [] };
      if (!leader) return { code: Code.Free, leader: null, ttlMs: 0, changes: [] };
      return { code: Code.Done, leader: null, ttlMs: 0, changes: [this.expireNow(component, floor)] };
    });
  }

  // ---- what other servers (and Redis) do

  /** Grants the component's lease (another server's campaign); the change, as pub/sub would carry it. */
  grant(component: Component, sessionId: string, ttlMs = 10_000, floor = 0): Change {
    const leader: Leader = {
      contenderId: `contender-${sessionId}`,
      sessionId,
      fencingToken: ++this.tokens,
      address: null,
      acquiredAt: 0,
    };
    this.ranOut.delete(component);
    return this.record('granted', component, leader, ttlMs, floor);
  }

  /** Releases the component's lease (another server's resignation). */
  revoke(component: Component, floor = 0): Change {
    return this.record('revoked', component, null, 0, floor);
  }

  /** The component's lease ran out in Redis: `expire` and `sync` record it from now on. */
  runOut(component: Component): void {
    this.ranOut.add(component);
  }

  /** Keeps only the last `n` changes in the log. */
  trimLog(n: number): void {
    this.log = this.log.slice(Math.max(0, this.log.length - n));
  }

  /** A failover to a replica that had everything up to `index` and nothing after: the
   * index, the log and the leaders go back to what they were then. */
  failover(index: number): void {
    this.history = this.history.filter((c) => c.index <= index);
    this.log = this.log.filter((c) => c.index <= index);
    this.index = index;
  }

  leaderOf(component: Component): Leader | null {
    return this.last(component)?.leader ?? null;
  }

  // ---- steering the answers

  /** From now on every answer waits for `release`. */
  hold(): void {
    this.held ??= [];
  }

  /** The calls waiting for an answer, oldest first. */
  get waiting(): Call[] {
    return (this.held ?? []).map((h) => h.call);
  }

  /** Answers the oldest call held (or, with `all`, every one); later calls are held still. */
  release(all = false): void {
    const held = this.held;
    if (!held?.length) throw new Error('no call is held');
    for (const h of all ? held.splice(0) : held.splice(0, 1)) h.settle();
  }

  /** Stops holding: answers everything held, and every later call at once. */
  releaseAll(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const h of held) h.settle();
  }

  /** The next call of `method` fails with `err` (when answered). */
  failNext(method: Method, err = new Error(`${method} failed`)): void {
    this.failures.push({ method, err });
  }

  // ---- inside

  /** The answer is made when the call is made (a script runs at once, atomically); it
   * reaches the caller when released. */
  private answer<T>(call: Call, make: () => T): Promise<T> {
    this.calls.push(call);
    const f = this.failures.findIndex((x) => x.method === call.method);
    const outcome = f >= 0 ? { err: this.failures.splice(f, 1)[0].err } : { value: make() };
    return new Promise<T>((resolve, reject) => {
      const settle = () => ('err' in outcome ? reject(outcome.err) : resolve(outcome.value));
      if (this.held) this.held.push({ call, settle });
      else settle();
    });
  }

  private record(event: ChangeEvent, component: Component, leader: Leader | null, ttlMs: number, floor: number): Change {
    const index = Math.max(this.index + 1, floor + 1);
    const change: Change = { index, prev: this.index, event, component, leader, ttlMs };
    this.index = index;
    this.history.push(change);
    this.log.push(change);
    if (this.log.length > this.logSize) this.log.shift();
    return change;
  }

  private expireNow(component: Component, floor: number): Change {
    this.ranOut.delete(component);
    return this.record('expired', component, null, 0, floor);
  }

  private last(component: Component): Change | undefined {
    for (let k = this.history.length - 1; k >= 0; k--) if (this.history[k].component === component) return this.history[k];
    return undefined;
  }

  private ttlOf(component: Component): number {
    return this.last(component)?.ttlMs ?? 0;
  }

  private components(): Component[] {
    return [...new Set(this.history.map((c) => c.component))];
  }
}
