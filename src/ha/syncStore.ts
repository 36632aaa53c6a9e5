/**
 * What keeping a cluster's view in step with Redis needs of Redis, and no more: the change
 * log after an index, the whole state, and whether one lease has run out. Bound to one
 * cluster, so that the sync knows no keys and a test can stand in for Redis with a few
 * lines (test/support/TestingSyncStore.ts), as Flink's leader election sits behind its
 * `LeaderElectionDriver`.
 */
import type { ClusterKeys, Component } from './ids.js';
import type { ChangesResult, LeaseStore, OpResult, SyncResult } from './leaseStore.js';

export type { ChangesResult, OpResult, SyncResult };

export interface SyncStore {
  /** The changes after `since`, in index order; `complete` is false when the log no
   * longer holds every one of them. */
  changes(since: number): Promise<ChangesResult>;
  /** The whole state; `believed` maps components to the sessions the caller thinks hold
   * them, so that leases lost with Redis's data are reported (and recorded) as expiries.
   * `floor` is the highest index the caller has seen. */
  sync(believed: Map<Component, string>, floor: number): Promise<SyncResult>;
  /** Records the expiry of the component's lease if it has run out: code 0 with the
   * change when this call recorded it, 1 with the holder when it was renewed, else
   * another code (somebody else recorded the change). */
  expire(component: Component, floor: number): Promise<OpResult>;
}

/** The store of one cluster on Redis, through the lease scripts. */
export function leaseSyncStore(store: LeaseStore, keys: ClusterKeys): SyncStore {
  return {
    changes: (since) => store.changesSince(keys, since),
    sync: (believed, floor) => store.sync(keys, believed, floor),
    expire: (component, floor) => store.expire(keys, component, floor),
  };
}
