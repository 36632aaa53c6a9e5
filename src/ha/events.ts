/**
 * Leadership events for operators (logs, metrics): grants, renewals refused, resignations,
 * expiries and revocations, of per-component leases and of a cluster's leadership. The HA
 * core emits them; src/telemetry.ts wires them to the log and the metrics.
 *
 * Each event is emitted by the one server whose call made it: grants, refusals,
 * resignations and revocations by the server that ran the call, expiries by the server whose
 * script recorded them (every change is recorded by exactly one script, however many servers
 * ask, expire.lua). So an expiry is logged once, not by every replica that watches the
 * cluster. The changes that other servers made, which every view also applies, emit nothing.
 */
import type { Change, Leader } from './changes.js';
import type { Component } from './ids.js';
import { Code } from './replies.js';
import type { SyncStore } from './syncStore.js';

export type LeaseEventKind = 'granted' | 'renewFailed' | 'resigned' | 'expired' | 'revoked' | 'lost';

export interface LeaseEvent {
  event: LeaseEventKind;
  clusterId: string;
  /** The component of a per-component lease; null for the cluster's leadership, or for an
   * expiry of several components (see `components`). */
  component: Component | null;
  /** What ended with it: the components of an expiry, or those published under a
   * leadership that was resigned or revoked. */
  components?: Component[];
  /** null when this server did not know the holder (it had no view of the cluster). */
  contenderId: string | null;
  /** The fencing token of the lease (never an access token); null when not known. */
  token: number | null;
  /** A grant's takeover gap (ms from the end of the component's previous leader), when the
   * history knows one (history.ts). */
  takeoverGapMs?: number;
}

export type LeaseEventListener = (event: LeaseEvent) => void;

export class LeaseEvents {
  private listeners: LeaseEventListener[] = [];
  /** Told of every renewal this server made: the component's (null: a leadership's) lease
   * time left when it came (ms). Not an event: renewals are the hot path, logged never. */
  renewalSlack: ((component: Component | null, slackMs: number) => void) | null = null;

  on(listener: LeaseEventListener): void {
    this.listeners.push(listener);
  }

  emit(event: LeaseEvent): void {
    for (const l of this.listeners) l(event);
  }

  /** An event with what the caller knows of the holder (null: nothing). */
  of(event: LeaseEventKind, clusterId: string, component: Component | null, contenderId: string | null, token: number | null, components?: Component[]): void {
    if (this.listeners.length === 0) return;
    this.emit({ event, clusterId, component, components, contenderId, token });
  }

  /** A grant this server made, with its takeover gap when known. */
  granted(clusterId: string, component: Component | null, leader: Leader, takeoverGapMs: number | null | undefined): void {
    if (this.listeners.length === 0) return;
    const e: LeaseEvent = { event: 'granted', clusterId, component, contenderId: leader.contenderId, token: leader.fencingToken };
    if (takeoverGapMs != null) e.takeoverGapMs = takeoverGapMs;
    this.emit(e);
  }

  /** A lease (`component`) or a leadership (null) resigned or revoked by a call whose reply
   * recorded `changes`; the holder's token from `holderOf`, called before they are applied. */
  ended(
    event: 'resigned' | 'revoked',
    clusterId: string,
    component: Component | null,
    contenderId: string | null,
    changes: readonly Change[],
    holderOf: (component: Component) => Leader | null,
  ): void {
    if (this.listeners.length === 0) return;
    const first = component ?? changes[0]?.component;
    const holder = first === undefined ? null : holderOf(first);
    const components = component === null ? changes.map((c) => c.component) : undefined;
    this.of(event, clusterId, component, contenderId ?? holder?.contenderId ?? null, holder?.fencingToken ?? null, components);
  }

  /**
   * The changes a script of this server recorded (its reply's, never pub/sub's): their
   * expiries, one event per holder that ran out (a leadership's components end together).
   * `holderOf` is who held each component before: called before the changes are applied.
   */
  recorded(clusterId: string, changes: readonly Change[], holderOf: (component: Component) => Leader | null): void {
    if (this.listeners.length === 0 || changes.length === 0) return;
    let groups: Map<string, { holder: Leader | null; components: Component[] }> | null = null;
    for (const c of changes) {
      if (c.event !== 'expired') continue;
      const holder = holderOf(c.component);
      const key = holder?.sessionId ?? '';
      groups ??= new Map();
      const g = groups.get(key);
      if (g) g.components.push(c.component);
      else groups.set(key, { holder, components: [c.component] });
    }
    for (const { holder, components } of groups?.values() ?? []) {
      this.of('expired', clusterId, components.length === 1 ? components[0] : null, holder?.contenderId ?? null, holder?.fencingToken ?? null, components);
    }
  }
}

/** A cluster's sync store that reports the changes its own scripts recorded (the expiries
 * found by the lease timers, and by a full re-read) before the view applies them. */
export function reportingStore(store: SyncStore, report: (changes: readonly Change[]) => void): SyncStore {
  return {
    ...store,
    sync: async (believed, floor) => {
      const r = await store.sync(believed, floor);
      report(r.changes);
      return r;
    },
    expire: async (component, floor) => {
      const r = await store.expire(component, floor);
      if (r.code === Code.Done) report(r.changes);
      return r;
    },
  };
}
