/** Request and response schemas of the stores (design §5) and cleanup (§6). */
import { Type } from 'typebox';
import { nullable } from './schemas.js';
import { MAX_RETAINED } from '../config.js';
import { APPLICATION_STATUSES, BLOB_KEY_PATTERN, CLUSTER_ID_PATTERN, JOB_ID_PATTERN, JOB_PARTS, JOB_STATUSES } from '../ha/index.js';

const ClusterId = Type.String({ pattern: CLUSTER_ID_PATTERN });
const JobId = Type.String({ pattern: JOB_ID_PATTERN });
const Millis = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const strict = { additionalProperties: false };

export const JobParams = Type.Object({ clusterId: ClusterId, jobId: JobId });
/** Blobs of no job live under `_`. */
export const BlobJobParams = Type.Object({ clusterId: ClusterId, jobId: Type.String({ pattern: `${JOB_ID_PATTERN}|^_$` }) });
export const BlobParams = Type.Object({
  clusterId: ClusterId,
  jobId: Type.String({ pattern: `${JOB_ID_PATTERN}|^_$` }),
  blobKey: Type.String({ pattern: BLOB_KEY_PATTERN }),
});

export const JobResultBody = Type.Object(
  {
    applicationStatus: Type.Unsafe<(typeof APPLICATION_STATUSES)[number]>({ type: 'string', enum: [...APPLICATION_STATUSES] }),
    jobName: Type.Optional(Type.String({ maxLength: 1024 })),
    startTime: Type.Optional(Millis),
    endTime: Type.Optional(Millis),
    netRuntimeMs: Type.Optional(Millis),
    accumulatorResults: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    failureCause: Type.Optional(Type.String({ maxLength: 65536 })),
  },
  strict,
);

export const JobResultEntry = Type.Object({
  jobId: Type.String(),
  applicationStatus: Type.String(),
  state: Type.Unsafe<'dirty' | 'clean'>({ type: 'string', enum: ['dirty', 'clean'] }),
  createdAt: Type.String(),
  cleanedAt: nullable(Type.String()),
  jobName: Type.Optional(Type.String()),
  startTime: Type.Optional(Type.Integer()),
  endTime: Type.Optional(Type.Integer()),
  netRuntimeMs: Type.Optional(Type.Integer()),
  accumulatorResults: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  failureCause: Type.Optional(Type.String()),
});

export const JobResultsQuery = Type.Object(
  { state: Type.Optional(Type.Unsafe<'dirty' | 'clean'>({ type: 'string', enum: ['dirty', 'clean'] })) },
  strict,
);
export const JobResultsResponse = Type.Object({ jobResults: Type.Array(JobResultEntry) });

export const PlanResponse = Type.Object({ jobId: Type.String(), size: Type.Integer() });
export const JobIdsResponse = Type.Object({ jobIds: Type.Array(Type.String()) });
export const RequirementsBody = Type.Record(Type.String(), Type.Unknown());
export const RequirementsResponse = Type.Object({ jobId: Type.String(), resourceRequirements: RequirementsBody });

const CheckpointFields = {
  checkpointId: Millis,
  timestamp: Millis,
  externalPointer: Type.String({ minLength: 1, maxLength: 4096 }),
  metadata: Type.Optional(Type.String({ pattern: '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$' })),
  properties: Type.Optional(Type.Record(Type.String(), Type.String())),
};
export const Checkpoint = Type.Object(CheckpointFields);
export const CheckpointBody = Type.Object(
  { ...CheckpointFields, maxRetained: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RETAINED })) },
  strict,
);
export const CheckpointAdded = Type.Object({
  checkpointId: Type.Integer(),
  subsumed: Type.Array(Type.Object({ checkpointId: Type.Integer(), externalPointer: Type.String() })),
});
export const CheckpointsResponse = Type.Object({ checkpoints: Type.Array(Checkpoint) });

const JobStatus = Type.Unsafe<(typeof JOB_STATUSES)[number]>({ type: 'string', enum: [...JOB_STATUSES] });
export const ShutdownBody = Type.Object({ jobStatus: JobStatus }, strict);
export const CheckpointsShutdown = Type.Object({ jobStatus: Type.String(), discarded: Type.Array(Type.Integer()) });
export const CounterBody = Type.Object({ value: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }, strict);
export const CounterResponse = Type.Object({ value: Type.Integer() });
export const CounterShutdown = Type.Object({ jobStatus: Type.String(), removed: Type.Boolean() });

export const BlobHeaders = Type.Object({
  'x-content-sha256': Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
});
export const BlobStored = Type.Object({ jobId: Type.String(), blobKey: Type.String(), size: Type.Integer(), sha256: Type.String() });
export const BlobsResponse = Type.Object({
  jobId: Type.String(),
  blobs: Type.Array(Type.Object({ blobKey: Type.String(), size: Type.Integer(), sha256: Type.String(), createdAt: Type.String() })),
});
export const BlobDeleted = Type.Object({ deleted: Type.Boolean() });
export const BlobsDeleted = Type.Object({ deleted: Type.Integer() });

export const JobCleanupResponse = Type.Object({
  jobId: Type.String(),
  parts: Type.Object(Object.fromEntries(JOB_PARTS.map((p) => [p, Type.String()]))),
});
export const ClusterCleanupResponse = Type.Object({
  clusterId: Type.String(),
  deleted: Type.Object(
    Object.fromEntries(
      ['leaders', 'jobResults', 'executionPlans', 'checkpoints', 'checkpointIdCounters', 'blobs', 'keys'].map((k) => [k, Type.Integer()]),
    ),
  ),
});
