/** `leasehold/client`: the SDK of a leasehold server. */
export { LeaseholdClient, Cluster, ClusterList, type HistoryQuery } from './client.js';
export type { ClientOptions } from './http.js';
export { LeaderElection, type LeaderElectionOptions, type Leadership, type RevokeReason } from './election.js';
export { ClusterLeadership, type ClusterLeadershipOptions, type HeldLeadership } from './leadership.js';
export { LeaderRetrieval, type LeaderRetrievalOptions } from './retrieval.js';
export { BlobStore, CheckpointIdCounter, CheckpointStore, ExecutionPlanStore, JobResultStore, LIST_MAX_DEFAULT, type Fence, type ListOptions } from './stores.js';
export * from './errors.js';
export type * from './types.js';
export { monotonicNow } from './timing.js';
