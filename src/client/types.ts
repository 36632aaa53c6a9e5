/**
 * The shapes the server answers, under the SDK's names. They are the wire model's
 * (wire.ts, generated from the server's schemas along with openapi.yaml), so they cannot
 * drift from what the server sends; the SDK takes no schema library along.
 */
import type * as wire from './wire.js';

/** `resourcemanager`, `dispatcher`, `rest`, or `jobmanager/{32 hex digits}`. */
export type Component = wire.SingletonComponent | `jobmanager/${string}`;

export type Leader = wire.Leader;
export type ComponentLeader = wire.ComponentLeader;
export type LeadersState = wire.LeadersResponse;
export type ChangeEvent = wire.ChangeEvent;
/** A change pushed by the watch: `leader` is the holder after the change. */
export type Change = Omit<wire.WatchChange, 'type'>;
/** A campaign's answer: `leader` is the holder either way. */
export type CampaignResult = wire.CampaignResponse & { leader: Leader };
/** A cluster's leadership as the server answers it (`GET leadership`). */
export type LeadershipInfo = wire.Leadership;
export type PublishedComponent = wire.PublishedComponent;
/** A leadership campaign's answer: `leadership` is the holder either way. */
export type LeadershipCampaignResult = wire.LeadershipCampaignResponse;

export type ApplicationStatus = wire.ApplicationStatus;
export type JobStatus = wire.JobStatus;
/** A job's result, as Flink's JobResultStore is given it. */
export type JobResult = wire.JobResultRequest;
export type JobResultEntry = wire.JobResult;
/** One leadership of a component (or of the cluster, `leadership`) in the history. */
export type HistoryEntry = wire.HistoryEntry;
export type HistoryPage = wire.HistoryResponse;
export type Checkpoint = wire.Checkpoint;
export type CheckpointAdded = wire.CheckpointAdded;
export type BlobInfo = wire.BlobInfo;
export type BlobStored = wire.BlobStored;
export type CleanupPart = keyof wire.JobCleanupParts;
export type JobCleanup = wire.JobCleanupReport;
export type ClusterCleanup = wire.ClusterCleanupReport;

/** A cluster as the listing shows it (`GET /v1/clusters`). */
export type ClusterEntry = wire.ClusterEntry;
export type LeadershipSummary = wire.LeadershipSummary;
