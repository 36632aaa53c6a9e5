/**
 * The HA services of a leasehold server, in the spirit of Flink's HighAvailabilityServices:
 * leader election and leader retrieval per component of any cluster, on Redis. Knows
 * nothing of HTTP.
 */
import type { RedisOptions } from 'ioredis';
import type { Log } from './log.js';
import type { Change } from './changes.js';
import { LeaderElection } from './election.js';
import { LeaseStore } from './leaseStore.js';
import { RedisLink, type DataLossReport } from './redisLink.js';
import { Scripts } from './scripts.js';
import { ViewRegistry } from './views.js';

export interface HaOptions {
  redis: string | RedisOptions;
  commandTimeoutMs: number;
  healthIntervalMs: number;
  changeLogSize: number;
  viewIdleMs: number;
  logger: Log;
  /** Told of every change this server sees (metrics). */
  onChange?: (change: Change) => void;
}

export interface HaHealth {
  redis: 'up' | 'down';
  dataLoss: DataLossReport;
  clustersWatched: number;
}

export class HaServices {
  readonly link: RedisLink;
  readonly views: ViewRegistry;
  readonly election: LeaderElection;

  constructor(opts: HaOptions) {
    this.link = new RedisLink({
      redis: opts.redis,
      commandTimeoutMs: opts.commandTimeoutMs,
      healthIntervalMs: opts.healthIntervalMs,
      logger: opts.logger,
    });
    const store = new LeaseStore(new Scripts(this.link.cmd), opts.changeLogSize);
    this.views = new ViewRegistry({
      link: this.link,
      store,
      idleMs: opts.viewIdleMs,
      onChange: opts.onChange ?? (() => {}),
      logger: opts.logger,
    });
    this.election = new LeaderElection(this.link, store, this.views);
  }

  health(): HaHealth {
    return {
      redis: this.link.isHealthy ? 'up' : 'down',
      dataLoss: this.link.dataLossReport,
      clustersWatched: this.views.size,
    };
  }

  /** Releases connections and timers; deletes nothing. */
  async close(): Promise<void> {
    this.views.close();
    await this.link.close();
  }
}

export { HaError, NotLeaderError, RedisUnavailableError, type HaErrorCode } from './errors.js';
export type { Change, ChangeEvent, Leader } from './changes.js';
export type { ClusterView, ComponentState, LeaderState, Snapshot, WatchMessage } from './clusterView.js';
export * from './ids.js';
