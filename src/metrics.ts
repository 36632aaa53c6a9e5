/**
 * Prometheus metrics of one server (a registry of its own, so several apps can share a
 * process in tests). prom-client renders them; the counts of the hot path (every request)
 * are plain numbers kept per route and per cluster label, and become samples only when
 * scraped: prom-client's own counters and histograms hash their labels into a string on
 * every call, an allocation per request that this way is made once per scrape instead.
 *
 * Cluster ids are labels only while there are few: the first `maxClusterLabels` clusters
 * seen keep their own label, the rest share `_other` (METRICS_CLUSTER_LABELS_MAX), so that
 * a server with thousands of clusters does not make a scraper keep thousands of series.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { CLUSTER_ID_PATTERN, type Change, type HaServices, type LeaseEvent } from './ha/index.js';

/** The label of the clusters past the cap. */
export const OTHER_CLUSTER = '_other';
/** The route label of requests that matched no route (a 404). */
const UNMATCHED = 'unmatched';
/** Upper bounds (s) of the latency buckets: a leader read takes well under a millisecond,
 * a write that waits for a replica some, a blob upload seconds. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Of takeover gaps (s): from an immediate takeover to a lease TTL and beyond. */
const GAP_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];
/** Of renewal slack (s): how much of the lease was left when its renewal came. */
const SLACK_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60];
/** The component kinds of the failover metrics: never job ids, so a handful of series. */
export const KINDS = ['resourcemanager', 'dispatcher', 'rest', 'jobmanager', 'leadership'] as const;
export type Kind = (typeof KINDS)[number];
const ENDED_EVENTS = new Set(['resigned', 'expired', 'revoked', 'lost']);
const FENCING_CODES = new Set(['FencingTokenStale', 'FencingTokenRequired']);
const CLUSTER_ID = new RegExp(CLUSTER_ID_PATTERN);

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

/** What the metrics count of one cluster label. */
class ClusterStats {
  /** Requests by route index. */
  readonly requests: number[] = [];
  /** 4xx and 5xx answers by route index and error code, `${index} ${code}`. */
  readonly errors = new Map<string, number>();
  readonly fencingRefusals = new Map<string, number>();
  /** Leadership events this server made (ha/events.ts), by kind. */
  readonly events = new Map<string, number>();
  websockets = 0;
  longPolls = 0;
  constructor(readonly label: string) {}
}

/** A histogram's counts, plain numbers: observed without allocating, cumulated when scraped. */
class Buckets {
  /** Observations by bucket, the last for those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** One route (method and pattern, never the raw URL) and the latency of its answers. */
export class RouteStats extends Buckets {
  constructor(
    readonly index: number,
    readonly method: string,
    readonly route: string,
  ) {
    super(BUCKETS);
  }
}

/** The kind of a component (null: a cluster's leadership), a label of the failover metrics. */
export function kindOf(component: string | null): Kind {
  if (component === null || component === 'leadership') return 'leadership';
  return component.startsWith('jobmanager/') ? 'jobmanager' : (component as Kind);
}

export class Metrics {
  readonly registry = new Registry();
  private readonly clusters = new Map<string, ClusterStats>();
  private readonly other = new ClusterStats(OTHER_CLUSTER);
  /** Requests that name no cluster (probes, metrics). */
  private readonly none = new ClusterStats('');
  private readonly routes: RouteStats[] = [];
  private readonly routeByKey = new Map<string, RouteStats>();
  private readonly unmatched: RouteStats;
  private readonly takeoverGaps = new Map<Kind, Buckets>(KINDS.map((k) => [k, new Buckets(GAP_BUCKETS)]));
  private readonly renewalSlack = new Map<Kind, Buckets>(KINDS.map((k) => [k, new Buckets(SLACK_BUCKETS)]));
  /** Leaderships ended, by `${kind} ${how}`. */
  private readonly ended = new Map<string, number>();
  /** The renewal stream (`GET /v1/renewals`): open streams, renewals answered by outcome
   * (`renewed`, or the error's code), `lost` pushed by component kind. Plain fields: a
   * renewal message is the hot path. */
  private renewalStreams = 0;
  private streamRenewed = 0;
  private readonly streamRefused = new Map<string, number>();
  private readonly streamLost = new Map<Kind, number>();
  private readonly changes = new Counter({
    name: 'leasehold_leader_changes_total',
    help: 'Leader changes this server has seen, by event',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });

  constructor(private readonly maxClusterLabels = 100) {
    collectDefaultMetrics({ register: this.registry });
    this.unmatched = this.route('', UNMATCHED);
    const perRoute = (r: RouteStats) => ({ method: r.method, route: r.route });
    this.scraped('leasehold_http_requests_total', 'HTTP requests answered, by route pattern and cluster', 'counter', () =>
      this.perCluster((c, out) => c.requests.forEach((n, i) => n && out.push({ labels: { ...perRoute(this.routes[i]), cluster: c.label }, value: n }))),
    );
    this.scraped('leasehold_http_errors_total', 'HTTP answers with status 400 or above, by route pattern, error code and cluster', 'counter', () =>
      this.perCluster((c, out) => {
        for (const [key, n] of c.errors) {
          const space = key.indexOf(' ');
          out.push({ labels: { ...perRoute(this.routes[Number(key.slice(0, space))]), code: key.slice(space + 1), cluster: c.label }, value: n });
        }
      }),
    );
    this.scraped(
      'leasehold_http_request_duration_seconds',
      'Time from a request to the head of its answer, by route pattern (long-polls are not timed)',
      'histogram',
      () => this.routes.flatMap((r) => (r.count === 0 ? [] : histogram('leasehold_http_request_duration_seconds', perRoute(r), r))),
    );
    const perKind = (name: string, of: Map<Kind, Buckets>) => () => [...of].flatMap(([kind, b]) => histogram(name, { kind }, b));
    this.scraped(
      'leasehold_takeover_gap_seconds',
      "Time from the end of a component's leader (or a cluster's leadership) to the next grant, for the grants this server made, by component kind",
      'histogram',
      perKind('leasehold_takeover_gap_seconds', this.takeoverGaps),
    );
    this.scraped(
      'leasehold_renewal_slack_seconds',
      'Lease time left when a renewal arrived (how close leaders come to losing their lease), for the renewals this server made, by component kind',
      'histogram',
      perKind('leasehold_renewal_slack_seconds', this.renewalSlack),
    );
    this.scraped('leasehold_leaderships_ended_total', 'Leaderships this server ended or found ended, by component kind and how (resigned, expired, revoked, lost)', 'counter', () =>
      [...this.ended].map(([key, value]) => {
        const [kind, ended] = key.split(' ');
        return { labels: { kind, ended }, value };
      }),
    );
    this.scraped('leasehold_fencing_refusals_total', 'Writes refused for their fencing token (FencingTokenStale, FencingTokenRequired), by cluster', 'counter', () =>
      this.perCluster((c, out) => c.fencingRefusals.forEach((n, code) => out.push({ labels: { code, cluster: c.label }, value: n }))),
    );
    this.scraped('leasehold_leadership_events_total', 'Grants, refused renewals, resignations, expiries and revocations this server made, by cluster', 'counter', () =>
      this.perCluster((c, out) => c.events.forEach((n, event) => out.push({ labels: { event, cluster: c.label }, value: n }))),
    );
    this.scraped('leasehold_websocket_watchers', 'Open websocket watch connections, by cluster', 'gauge', () =>
      this.perCluster((c, out) => c !== this.none && out.push({ labels: { cluster: c.label }, value: c.websockets })),
    );
    this.scraped('leasehold_renewal_streams', 'Open renewal streams (GET /v1/renewals websockets)', 'gauge', () => [{ labels: {}, value: this.renewalStreams }]);
    this.scraped('leasehold_streamed_renewals_total', 'Renewal messages answered over renewal streams, by outcome (renewed, or the error code)', 'counter', () => [
      { labels: { outcome: 'renewed' }, value: this.streamRenewed },
      ...[...this.streamRefused].map(([outcome, value]) => ({ labels: { outcome }, value })),
    ]);
    this.scraped('leasehold_streamed_lost_total', 'Leases told lost (pushed) over renewal streams, by component kind', 'counter', () =>
      [...this.streamLost].map(([kind, value]) => ({ labels: { kind }, value })),
    );
    this.scraped('leasehold_long_polls', 'Long-polls (blocking reads) waiting, by cluster', 'gauge', () =>
      this.perCluster((c, out) => c !== this.none && out.push({ labels: { cluster: c.label }, value: c.longPolls })),
    );
  }

  onChange = (change: Change): void => this.changes.inc({ event: change.event });

  /** A leadership event this server made. */
  onEvent = (e: LeaseEvent): void => {
    const c = this.cluster(e.clusterId);
    c.events.set(e.event, (c.events.get(e.event) ?? 0) + 1);
    if (e.event === 'granted' && e.takeoverGapMs !== undefined) this.takeoverGaps.get(kindOf(e.component))?.observe(e.takeoverGapMs / 1000);
    if (ENDED_EVENTS.has(e.event)) {
      // A leadership's end ends its published components: each is counted, as the history
      // records each (an expiry names only them).
      const ended = e.component === null && e.event !== 'expired' ? [null, ...(e.components ?? [])] : (e.components ?? [e.component]);
      for (const component of ended) {
        const key = `${kindOf(component)} ${e.event}`;
        this.ended.set(key, (this.ended.get(key) ?? 0) + 1);
      }
    }
  };

  /** A renewal this server made, and the lease time it had left (ms). */
  onRenewalSlack = (component: string | null, slackMs: number): void => {
    this.renewalSlack.get(kindOf(component))?.observe(slackMs / 1000);
  };

  /** The stats of a route, made once when it is registered. */
  route(method: string, url: string): RouteStats {
    const key = `${method} ${url}`;
    let r = this.routeByKey.get(key);
    if (!r) {
      r = new RouteStats(this.routes.length, method, url);
      this.routes.push(r);
      this.routeByKey.set(key, r);
    }
    return r;
  }

  /**
   * One answer, when its head is written: counted by route (null: none matched) and cluster,
   * its time (null: a long-poll, not timed) in the route's histogram, and an error by its
   * code (null: the status's number).
   */
  answered(route: RouteStats | null, clusterId: string | undefined, status: number, code: string | null, seconds: number | null): void {
    const c = this.cluster(clusterId);
    const r = route ?? this.unmatched;
    const counts = c.requests;
    while (counts.length < this.routes.length) counts.push(0);
    counts[r.index]++;
    if (seconds !== null) r.observe(seconds);
    if (status >= 400) {
      const name = code ?? String(status);
      const key = `${r.index} ${name}`;
      c.errors.set(key, (c.errors.get(key) ?? 0) + 1);
      if (FENCING_CODES.has(name)) c.fencingRefusals.set(name, (c.fencingRefusals.get(name) ?? 0) + 1);
    }
  }

  /** A websocket watcher of the cluster opened: returns what to call when it closes. */
  watcher(clusterId: string): () => void {
    const c = this.cluster(clusterId);
    c.websockets++;
    return () => void c.websockets--;
  }

  /** A renewal stream opened: returns what to call when it closes. */
  renewalStream(): () => void {
    this.renewalStreams++;
    return () => void this.renewalStreams--;
  }

  /** A streamed renewal answered: renewed (null), or refused with this error code. */
  streamRenewal(refused: string | null): void {
    if (refused === null) this.streamRenewed++;
    else this.streamRefused.set(refused, (this.streamRefused.get(refused) ?? 0) + 1);
  }

  /** A lease told lost over a renewal stream (component null: a leadership). */
  streamLeaseLost(component: string | null): void {
    const kind = kindOf(component);
    this.streamLost.set(kind, (this.streamLost.get(kind) ?? 0) + 1);
  }

  /** A long-poll of the cluster began: returns what to call when it ends. */
  longPoll(clusterId: string): () => void {
    const c = this.cluster(clusterId);
    c.longPolls++;
    return () => void c.longPolls--;
  }

  /** The stats of a cluster's label: its own while there is room, else `_other`; a string
   * that is no cluster id (a request refused for it) never becomes a label. */
  private cluster(id: string | undefined): ClusterStats {
    if (id === undefined) return this.none;
    let c = this.clusters.get(id);
    if (c) return c;
    if (this.clusters.size >= this.maxClusterLabels || !CLUSTER_ID.test(id)) return this.other;
    c = new ClusterStats(id);
    this.clusters.set(id, c);
    return c;
  }

  private perCluster(add: (c: ClusterStats, out: Sample[]) => unknown): Sample[] {
    const out: Sample[] = [];
    for (const c of [this.none, ...this.clusters.values(), this.other]) add(c, out);
    return out;
  }

  /** A metric read from `values` when scraped (prom-client renders any object that answers
   * `get()` with its samples). */
  private scraped(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Sample[]): void {
    const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
    this.registry.registerMetric(metric as unknown as Metric);
  }

  /** Metrics read from the services when scraped. */
  bind(ha: HaServices): void {
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
    this.scraped('leasehold_leases_held', 'Components with a leader, in the clusters this server keeps in memory, by cluster', 'gauge', () => {
      const held = new Map<ClusterStats, number>();
      for (const [id, view] of ha.views.all) {
        const c = this.cluster(id);
        held.set(c, (held.get(c) ?? 0) + view.leaders().filter((l) => l.leader !== null).length);
      }
      return [...held].map(([c, value]) => ({ labels: { cluster: c.label }, value }));
    });
  }
}

/** A histogram's samples: cumulative buckets, sum and count. */
function histogram(name: string, labels: Record<string, string>, r: Buckets): Sample[] {
  let acc = 0;
  const out: Sample[] = [...r.bounds.map(String), '+Inf'].map((le, i) => {
    acc += r.counts[i];
    return { labels: { ...labels, le }, value: acc, metricName: `${name}_bucket` };
  });
  out.push({ labels, value: r.sum, metricName: `${name}_sum` }, { labels, value: r.count, metricName: `${name}_count` });
  return out;
}
