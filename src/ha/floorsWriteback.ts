/**
 * What a server does when Redis may have lost what it answered (docs/design.md §9): for
 * every cluster it has floors of, it writes them back (floors_writeback.lua): a rolled-back
 * index is raised, checkpoint id counters are raised to the values it handed out, and the
 * grace period begins where a lease may have been lost. Only then does every view read
 * its cluster again, so that watchers get the repaired state.
 *
 * Every server does this on its own, from its own floors: the first to find a rollback
 * repairs the index, which would hide the rollback from the others' syncs, but not from
 * their health checks, which bring each one here with what only it knows.
 */
import type { Floors } from './floors.js';
import { ClusterKeys } from './ids.js';
import type { Log } from './log.js';
import type { ClusterFilter, RedisLink } from './redisLink.js';
import { decodeFloorsWriteback } from './replies.js';
import type { Scripts } from './scripts.js';

/** The most checkpoint id counters one floors_writeback.lua call writes back. */
export const WRITEBACK_BATCH = 500;
/** A cluster found gone (no index, no loss known) drops out of the floors once what was
 * last answered for it is this old: a replica that lagged may lack a cluster created
 * moments before a failover, never one an hour old. */
export const GONE_AFTER_US = 3600 * 1e6;

export interface FloorsWritebackOptions {
  link: RedisLink;
  scripts: Scripts;
  floors: Floors;
  logSize: number;
  log: Log;
  /** Called once every cluster was written back (or failed to be): resync the views. */
  done: () => void;
  /** Told at once of each cluster found below what this server answered. */
  behind?: (clusterId: string) => void;
}

/** Where Redis may have lost data: nowhere, everywhere (one Redis), or on one shard. */
const NOWHERE: ClusterFilter = () => false;
const EVERYWHERE: ClusterFilter = () => true;

export class FloorsWriteback {
  private running: Promise<void> | null = null;
  private again: ClusterFilter | null = null;

  constructor(private readonly opts: FloorsWritebackOptions) {
    const { link } = opts;
    // After a loss, a grace in every cluster this server knows that the loss may have
    // touched (on a Redis Cluster, those of the shard that lost data); after a restart or a
    // failover that lost nothing the marker and the beat can see, the floors alone (the
    // grace for leases no replica held is acknowledgedLeases.ts's).
    link.on('dataLoss', (only) => this.request(only ?? EVERYWHERE));
    link.on('primaryChanged', () => this.request(NOWHERE));
  }

  /** Writes every cluster back, those `lost` keeps as having lost data; a request while one
   * runs runs once more after it. */
  request(lost: ClusterFilter): void {
    if (this.running) {
      const before = this.again;
      this.again = before ? (clusterId) => before(clusterId) || lost(clusterId) : lost;
      return;
    }
    this.running = this.run(lost).finally(() => {
      this.running = null;
      const again = this.again;
      this.again = null;
      if (again !== null) this.request(again);
      else this.opts.done();
    });
  }

  private async run(lostIn: ClusterFilter): Promise<void> {
    const { floors, scripts, link, log } = this.opts;
    const behind = new Set<string>();
    for (const clusterId of floors.clusterIds()) {
      const f = floors.of(clusterId);
      const keys = new ClusterKeys(clusterId);
      const lost = lostIn(clusterId);
      const jobs = Object.keys(f.counters);
      try {
        // In batches of counters; the first call (or the only one) also repairs the index.
        for (let i = 0; i === 0 || i < jobs.length; i += WRITEBACK_BATCH) {
          const batch = jobs.slice(i, i + WRITEBACK_BATCH);
          const reply = decodeFloorsWriteback(
            await scripts.run(
              'floors_writeback',
              [keys.index, keys.log, keys.grace, ...batch.map((j) => keys.checkpointIdCounter(j))],
              [keys.channel, f.index, this.opts.logSize, f.maxTtlMs, lost ? 1 : 0, ...batch.map((j) => f.counters[j])],
            ),
          );
          if (reply.behind) {
            behind.add(clusterId);
            this.opts.behind?.(clusterId);
          }
          if (reply.gone) {
            // Deleted (cleanupAllData on another server, say): nothing to write back.
            if (reply.nowUs - f.index > GONE_AFTER_US) floors.forget(clusterId);
            break;
          }
        }
      } catch (err) {
        // The views' syncs still find a rolled-back index; counters keep this server's floor.
        log.warn({ err, clusterId }, 'could not write the floors of a cluster back into redis');
      }
    }
    // Found below what this server answered: a loss, counted here unless the health check
    // counted it already.
    for (const clusterId of behind) link.reportRollback(clusterId, lostIn(clusterId));
  }
}
