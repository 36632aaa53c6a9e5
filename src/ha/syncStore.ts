/**
 * What keeping a cluster's view in step with Redis needs of Redis, and no more: the change
 * log after an index, the whole state, and whether one lease has run out. Bound to one
 * cluster, so that the sync knows no keys and a test can stand in for Redis with a few
 * lines (test/support/TestingSyncStore.ts), as Flink's leader election sits behind its
 * `LeaderElectionDriver`.
 */
import type { Floors } from './floors.js';
import type { ClusterKeys, Component } from './ids.js';
import type { ChangesResult, LeaseStore, OpResult, SyncResult } from './leaseStore.js';

export type { ChangesResult, OpResult, SyncResult };

export interface SyncStore {
  /** The changes after `since`, in index order; `complete` is false when the log no
   * longer holds every one of them. */
  changes(since: number): Promise<ChangesResult>;
  /** The whole state; `believed` maps components to the sessions the caller thinks hold
   * them, so that leases lost with Redis's data are reported (and recorded) as expiries.
   * `floor` is the highest index the caller has seen: a store found below it went back in
   * time (a rollback), and its index is raised above it (`rolledBack`). */
  sync(believed: Map<Component, string>, floor: number): Promise<SyncResult>;
  /** Raises the index above `floor` with no change, and answers it: for a state that the
   * changes replayed do not explain, sent to watchers under an index none of them has. */
  raiseIndex(floor: number): Promise<number>;
  /** Records the expiry of the component's lease if it has run out: code 0 with the
   * change when this call recorded it, 1 with the holder when it was renewed, else
   * another code (somebody else recorded the change). */
  expire(component: Component, floor: number): Promise<OpResult>;
}

/** The store of one cluster on Redis, through the lease scripts. The server's floors
 * (what it has answered, kept across its restarts) go with every call, so that a Redis that
 * went back in time is repaired by the sync and reported through `onRollback`. */
export function leaseSyncStore(store: LeaseStore, keys: ClusterKeys, floors: Floors, onRollback: (clusterId: string) => void): SyncStore {
  const id = keys.clusterId;
  // Floors are read without adding the cluster: a read of a cluster with no data leaves no
  // trace, in Redis or in the floors (issue 16).
  const above = (floor: number) => Math.max(floor, floors.peek(id)?.index ?? 0);
  return {
    changes: (since) => store.changesSince(keys, since),
    sync: async (believed, floor) => {
      const f = floors.peek(id);
      const r = await store.sync(keys, believed, above(floor), { tokens: f?.tokens ?? {}, graceMs: f?.maxTtlMs ?? 0 });
      // An index derived from Redis's clock needs no floor: the first write stores one above it.
      if (r.stored) floors.raiseIndex(id, r.index);
      if (r.rolledBack) onRollback(id);
      return r;
    },
    expire: (component, floor) => store.expire(keys, component, above(floor)),
    raiseIndex: async (floor) => {
      const index = await store.raiseIndex(keys, above(floor));
      floors.raiseIndex(id, index);
      return index;
    },
  };
}
