/** Prometheus metrics of one server (a registry of its own, so several apps can share a
 * process in tests). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Change, HaServices } from './ha/index.js';

export class Metrics {
  readonly registry = new Registry();
  private readonly changes = new Counter({
    name: 'leasehold_leader_changes_total',
    help: 'Leader changes this server has seen, by event',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  onChange = (change: Change): void => this.changes.inc({ event: change.event });

  /** Metrics read from the services when scraped. */
  bind(ha: HaServices, watchers: () => number): void {
    const registers = [this.registry];
    new Gauge({
      name: 'leasehold_redis_up',
      help: '1 when Redis answers this server, else 0',
      registers,
      collect() {
        this.set(ha.link.isHealthy ? 1 : 0);
      },
    });
    // The same count as /readyz's dataLoss.count, read when scraped, so the two never differ.
    new Counter({
      name: 'leasehold_redis_data_loss_total',
      help: 'Times this server found that Redis had lost data: all of it, or a cluster\'s (a rollback)',
      registers,
      collect() {
        this.reset();
        this.inc(ha.link.dataLossReport.count);
      },
    });
    const rollbacks = new Counter({
      name: 'leasehold_redis_rollbacks_total',
      help: 'Times this server found a cluster\'s state in Redis below what it had answered (a failover to a replica that lagged, a restored backup)',
      registers,
    });
    const clockSteps = new Counter({
      name: 'leasehold_redis_clock_steps_total',
      help: "Times Redis's clock stepped (more than 1 s against this server's monotonic clock between two health checks)",
      registers,
    });
    ha.link.on('clockStep', () => clockSteps.inc());
    ha.link.on('rollback', () => rollbacks.inc());
    new Gauge({
      name: 'leasehold_clusters_watched',
      help: 'Clusters whose leaders this server keeps in memory',
      registers,
      collect() {
        this.set(ha.views.size);
      },
    });
    new Gauge({
      name: 'leasehold_websocket_watchers',
      help: 'Open websocket watch connections',
      registers,
      collect() {
        this.set(watchers());
      },
    });
  }
}
