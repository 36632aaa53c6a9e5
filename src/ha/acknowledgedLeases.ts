/**
 * The leases this server acknowledged (grants and renewals), per cluster: until when the
 * longest of them may still run, and the same for those that no replica held before they
 * were acknowledged. That is what a loss of Redis's data can take from under a leader who
 * still believes it leads, and so how long the grace after the loss must last
 * (docs/design.md §9):
 * - after a failover, only leases acknowledged without a replica may be gone: a lease a
 *   replica held is on the new primary;
 * - after Redis lost its data (a restart without persistence, a flush), any lease may be.
 *
 * Deadlines are taken on this server's monotonic clock when the answer arrives, which is
 * after Redis started the lease's TTL: they are never earlier than the lease's true end.
 */
import { performance } from 'node:perf_hooks';

/** What happened to the Redis that acknowledged earlier writes. */
export type PrimaryLoss = 'failover' | 'dataLoss';

interface Deadlines {
  /** Monotonic ms by which every lease acknowledged in the cluster has run out. */
  any: number;
  /** The same, for leases acknowledged without a replica holding them. */
  unreplicated: number;
}

/** Clusters past which the map is swept of deadlines that have passed. */
const SWEEP_ABOVE = 10_000;

export class AcknowledgedLeases {
  private readonly clusters = new Map<string, Deadlines>();

  /** `requiredAcks`: how many replicas must hold a lease write of the cluster before it is
   * acknowledged, now (0: none, the write exists on the primary alone until Redis
   * replicates it; on a Redis Cluster, the cluster's shard's). */
  constructor(private readonly requiredAcks: (clusterId: string) => number) {}

  /** Whether a lease write of the cluster sent now is held by a replica before it is
   * answered. A caller asks before the write and passes the answer to `note`, which asks
   * again: a count that changed meanwhile counts as unreplicated. */
  replicated(clusterId: string): boolean {
    return this.requiredAcks(clusterId) > 0;
  }

  /** A lease of `ttlMs` was acknowledged now in the cluster. */
  note(clusterId: string, ttlMs: number, replicatedBefore: boolean): void {
    const until = performance.now() + ttlMs;
    let d = this.clusters.get(clusterId);
    if (!d) {
      if (this.clusters.size >= SWEEP_ABOVE) this.sweep(performance.now());
      d = { any: 0, unreplicated: 0 };
      this.clusters.set(clusterId, d);
    }
    if (until > d.any) d.any = until;
    if (!(replicatedBefore && this.replicated(clusterId)) && until > d.unreplicated) d.unreplicated = until;
  }

  /** The clusters where a loss of this kind may have taken a lease that is still believed
   * held, each with how long such a lease may still run (ms, rounded up); only those `only`
   * keeps (on a Redis Cluster, the clusters of the shard that had the loss). */
  atRisk(loss: PrimaryLoss, only?: (clusterId: string) => boolean, now = performance.now()): Array<[clusterId: string, ms: number]> {
    this.sweep(now);
    const out: Array<[string, number]> = [];
    for (const [clusterId, d] of this.clusters) {
      if (only && !only(clusterId)) continue;
      const until = loss === 'failover' ? d.unreplicated : d.any;
      if (until > now) out.push([clusterId, Math.ceil(until - now)]);
    }
    return out;
  }

  private sweep(now: number): void {
    for (const [clusterId, d] of this.clusters) if (d.any <= now) this.clusters.delete(clusterId);
  }
}
