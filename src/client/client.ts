/** The entry point: a server connection, and per cluster its elections, retrieval,
 * stores and cleanup. */
import { componentPath, seg, Http, type ClientOptions } from './http.js';
import { LeaderElection, type LeaderElectionOptions } from './election.js';
import { ClusterLeadership, type ClusterLeadershipOptions } from './leadership.js';
import { LeaderRetrieval, type LeaderRetrievalOptions } from './retrieval.js';
import { BlobStore, CheckpointIdCounter, CheckpointStore, collect, ExecutionPlanStore, JobCleaner, JobResultStore, paged, type Fence, type ListOptions } from './stores.js';
import type {
  CampaignResult,
  ClusterCleanup,
  ClusterEntry,
  Component,
  HistoryPage,
  JobCleanup,
  Leader,
  LeadershipCampaignResult,
  LeadershipInfo,
  LeadersState,
} from './types.js';

/** A page of the leadership history: a component's (or `leadership`'s), entries granted
 * from and up to instants (Date, or ISO 8601), after `cursor` (a page's `nextCursor`). */
export interface HistoryQuery {
  component?: Component | 'leadership';
  from?: Date | string;
  to?: Date | string;
  limit?: number;
  cursor?: string;
}

export class LeaseholdClient {
  readonly http: Http;

  constructor(options: ClientOptions = {}) {
    this.http = new Http(options);
  }

  cluster(clusterId: string): Cluster {
    return new Cluster(this.http, clusterId);
  }

  /** The clusters the server holds that this client's token may use (`GET /v1/clusters`). */
  clusters(): ClusterList {
    return new ClusterList(this.http);
  }
}

/** The listing of the server's clusters, sorted by id; `prefix` keeps those whose id begins
 * with it. */
export class ClusterList {
  constructor(private readonly http: Http) {}

  /** Every cluster, every page of them, up to `max` (beyond: RangeError). */
  list(options: ListOptions & { prefix?: string } = {}): Promise<ClusterEntry[]> {
    return collect(this.each(options), 'clusters', options);
  }

  /** The clusters, fetched a page at a time as the caller iterates. */
  each(options: { prefix?: string } = {}): AsyncGenerator<ClusterEntry> {
    return paged(this.http, '/v1/clusters', 'clusters', options.prefix ? { prefix: options.prefix } : {});
  }
}

export class Cluster {
  private readonly base: string;

  constructor(
    private readonly http: Http,
    readonly clusterId: string,
  ) {
    this.base = `/v1/clusters/${seg(clusterId)}`;
  }

  /** A contender for `component`; call `start()` to campaign. */
  election(options: Omit<LeaderElectionOptions, 'clusterId'>): LeaderElection {
    return new LeaderElection(this.http, { ...options, clusterId: this.clusterId });
  }

  /** A follower of the cluster's leaders; call `start()` to connect. */
  retrieval(options: Omit<LeaderRetrievalOptions, 'clusterId'> = {}): LeaderRetrieval {
    return new LeaderRetrieval(this.http, { ...options, clusterId: this.clusterId });
  }

  leaders(): Promise<LeadersState> {
    return this.http.request(`${this.base}/leaders`);
  }

  async leader(component: Component): Promise<Leader | null> {
    return (await this.http.request<{ leader: Leader | null }>(`${this.base}/leaders/${componentPath(component)}`)).leader;
  }

  /** A page of the cluster's leadership history, newest first; follow `nextCursor`. */
  history(query: HistoryQuery = {}): Promise<HistoryPage> {
    const iso = (t: Date | string) => (t instanceof Date ? t.toISOString() : t);
    const params = new URLSearchParams();
    if (query.component) params.set('component', query.component);
    if (query.from) params.set('from', iso(query.from));
    if (query.to) params.set('to', iso(query.to));
    if (query.limit) params.set('limit', String(query.limit));
    if (query.cursor) params.set('cursor', query.cursor);
    const q = params.toString();
    return this.http.request(`${this.base}/history${q ? `?${q}` : ''}`);
  }

  /** One campaign, without renewals (for tools and tests; contenders use `election`). */
  campaign(component: Component, body: { contenderId: string; ttlMs?: number; address?: string }): Promise<CampaignResult> {
    return this.http.request(`${this.base}/leaders/${componentPath(component)}/campaign`, { body });
  }

  /** Releases the lease of that contender and session. */
  async resign(component: Component, body: { contenderId: string; sessionId: string }): Promise<boolean> {
    return (await this.http.request<{ released: boolean }>(`${this.base}/leaders/${componentPath(component)}/resign`, { body })).released;
  }

  /** A contender for the cluster's leadership (one lease for many components); call
   * `start()` to campaign. */
  leadershipElection(options: Omit<ClusterLeadershipOptions, 'clusterId'> = {}): ClusterLeadership {
    return new ClusterLeadership(this.http, { ...options, clusterId: this.clusterId });
  }

  /** The cluster's leadership, or null. */
  async leadership(): Promise<LeadershipInfo | null> {
    return (await this.http.request<{ leadership: LeadershipInfo | null }>(`${this.base}/leadership`)).leadership;
  }

  /** One leadership campaign, without renewals (for tools and tests; contenders use
   * `leadershipElection`). */
  campaignLeadership(body: { contenderId: string; ttlMs?: number }): Promise<LeadershipCampaignResult> {
    return this.http.request(`${this.base}/leadership/campaign`, { body });
  }

  /** Publishes `component`'s leader information under the leadership of `sessionId`. */
  async publishUnder(sessionId: string, component: Component, address: string): Promise<Leader> {
    return (await this.http.request<{ leader: Leader }>(`${this.base}/leadership/publish`, { body: { sessionId, component, address } })).leader;
  }

  /** Releases the leadership of that contender and session. */
  async resignLeadership(body: { contenderId: string; sessionId: string }): Promise<boolean> {
    return (await this.http.request<{ released: boolean }>(`${this.base}/leadership/resign`, { body })).released;
  }

  /** Ends the leadership (admin): whoever holds it, or only `sessionId`'s (else `NotLeaderError`). */
  async revokeLeadership(sessionId?: string): Promise<boolean> {
    const body = sessionId === undefined ? {} : { sessionId };
    return (await this.http.request<{ revoked: boolean }>(`${this.base}/leadership/revoke`, { body })).revoked;
  }

  /** Job results, fenced by the dispatcher's leadership (no fence: for reading). */
  jobResults(fence?: Fence): JobResultStore {
    return new JobResultStore(this.http, this.clusterId, fence);
  }

  executionPlans(fence?: Fence): ExecutionPlanStore {
    return new ExecutionPlanStore(this.http, this.clusterId, fence);
  }

  /** The completed checkpoints of a job, fenced by its job manager's leadership. */
  checkpoints(jobId: string, fence?: Fence): CheckpointStore {
    return new CheckpointStore(this.http, this.clusterId, fence, jobId);
  }

  checkpointIdCounter(jobId: string, fence?: Fence): CheckpointIdCounter {
    return new CheckpointIdCounter(this.http, this.clusterId, fence, jobId);
  }

  blobs(fence?: Fence): BlobStore {
    return new BlobStore(this.http, this.clusterId, fence);
  }

  /** Global cleanup of a job: everything but its result. */
  cleanupJob(jobId: string, fence: Fence): Promise<JobCleanup> {
    return new JobCleaner(this.http, this.clusterId, fence).cleanupJob(jobId);
  }

  /** cleanupAllData: every key of the cluster (admin). */
  cleanupAllData(): Promise<ClusterCleanup> {
    return this.http.request(this.base, { method: 'DELETE' });
  }
}
