/** The shapes the server answers (see openapi.yaml). */

/** `resourcemanager`, `dispatcher`, `rest`, or `jobmanager/{32 hex digits}`. */
export type Component = 'resourcemanager' | 'dispatcher' | 'rest' | `jobmanager/${string}`;

export interface Leader {
  contenderId: string;
  sessionId: string;
  fencingToken: number;
  address: string | null;
  /** ISO 8601, for people; never compare it with a local clock. */
  acquiredAt: string;
  /** Time left on the lease as the server saw it when it answered. */
  leaseRemainingMs: number;
}

export interface ComponentLeader {
  component: string;
  leader: Leader | null;
}

export interface LeadersState {
  leaders: ComponentLeader[];
  index: number;
}

export type ChangeEvent = 'granted' | 'confirmed' | 'revoked' | 'expired';

/** A change pushed by the watch: `leader` is the holder after the change. */
export interface Change {
  event: ChangeEvent;
  component: string;
  leader: Leader | null;
  index: number;
}

export interface CampaignResult {
  granted: boolean;
  leader: Leader;
}

export type ApplicationStatus = 'SUCCEEDED' | 'FAILED' | 'CANCELED' | 'UNKNOWN';
export type JobStatus =
  | 'INITIALIZING'
  | 'CREATED'
  | 'RUNNING'
  | 'FAILING'
  | 'FAILED'
  | 'CANCELLING'
  | 'CANCELED'
  | 'FINISHED'
  | 'RESTARTING'
  | 'SUSPENDED'
  | 'RECONCILING';

export interface JobResult {
  applicationStatus: ApplicationStatus;
  jobName?: string;
  startTime?: number;
  endTime?: number;
  netRuntimeMs?: number;
  accumulatorResults?: Record<string, unknown>;
  failureCause?: string;
}

export interface JobResultEntry extends JobResult {
  jobId: string;
  state: 'dirty' | 'clean';
  createdAt: string;
  cleanedAt: string | null;
}

export interface Checkpoint {
  checkpointId: number;
  timestamp: number;
  externalPointer: string;
  /** Base64. */
  metadata?: string;
  properties?: Record<string, string>;
}

export interface CheckpointAdded {
  checkpointId: number;
  subsumed: { checkpointId: number; externalPointer: string }[];
}

export interface BlobInfo {
  blobKey: string;
  size: number;
  sha256: string;
  createdAt: string;
}

export interface BlobStored {
  jobId: string;
  blobKey: string;
  size: number;
  sha256: string;
}

export type CleanupPart = 'leader' | 'executionPlan' | 'checkpoints' | 'checkpointIdCounter' | 'blobs';

export interface JobCleanup {
  jobId: string;
  /** `deleted`, `absent`, or `failed: …`. */
  parts: Record<CleanupPart, string>;
}

export interface ClusterCleanup {
  clusterId: string;
  deleted: Record<'leaders' | 'jobResults' | 'executionPlans' | 'checkpoints' | 'checkpointIdCounters' | 'blobs' | 'keys', number>;
}
