/** The wire model of the stores (docs/design.md §5) and cleanup (§6): request and response schemas,
 * declared once (see schemas.ts). */
import { Type, type TSchema } from 'typebox';
import { ClusterId, ErrorResponse, JobId, nullable } from './schemas.js';
import { MAX_RETAINED } from '../config.js';
import { NextCursor, PageQuery } from './paging.js';
import { APPLICATION_STATUSES, BLOB_KEY_PATTERN, JOB_ID_PATTERN, JOB_PARTS, JOB_STATUSES } from '../ha/index.js';

const strict = { additionalProperties: false };
const answer = { additionalProperties: false };

export const EpochMillis = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Milliseconds since the epoch.' });
const Millis = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
export const JobIdAnswer = Type.String({ pattern: '^[0-9a-f]{32}$', description: 'A Flink JobID as answers spell it, in lower case.' });
export const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'A SHA-256, 64 lower-case hexadecimal digits.' });
export const BlobKey = Type.String({ pattern: BLOB_KEY_PATTERN, examples: ['lib-0.jar'] });
/** A job's id, or `_` for blobs of no job. */
const BlobJobId = Type.String({ pattern: `${JOB_ID_PATTERN}|^_$` });

export const JobParams = Type.Object({ clusterId: ClusterId, jobId: JobId });
/** Blobs of no job live under `_`. */
export const BlobJobParams = Type.Object({ clusterId: ClusterId, jobId: BlobJobId });
export const BlobParams = Type.Object({ clusterId: ClusterId, jobId: BlobJobId, blobKey: BlobKey });

export const ApplicationStatus = Type.Unsafe<(typeof APPLICATION_STATUSES)[number]>({ type: 'string', enum: [...APPLICATION_STATUSES] });
const ResultState = Type.Unsafe<'dirty' | 'clean'>({ type: 'string', enum: ['dirty', 'clean'] });

export const JobResultBody = Type.Object(
  {
    applicationStatus: ApplicationStatus,
    jobName: Type.Optional(Type.String({ maxLength: 1024 })),
    startTime: Type.Optional(EpochMillis),
    endTime: Type.Optional(EpochMillis),
    netRuntimeMs: Type.Optional(Millis),
    accumulatorResults: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Any JSON values, by name; the body may nest at most 64 levels deep (deeper is a 400).',
      }),
    ),
    failureCause: Type.Optional(Type.String({ maxLength: 65536 })),
  },
  strict,
);

/** What a job result was given besides its status, answered as it was given. */
const { applicationStatus: _status, ...resultFields } = JobResultBody.properties;

export const JobResultEntry = Type.Object(
  {
    jobId: JobIdAnswer,
    applicationStatus: ApplicationStatus,
    state: Type.Unsafe<'dirty' | 'clean'>({ ...ResultState, description: '`dirty` until `markResultAsClean`, then `clean`.' }),
    createdAt: Type.String({ format: 'date-time', description: "When the entry was created, by Redis's clock, as ISO 8601 UTC." }),
    cleanedAt: nullable(Type.String({ format: 'date-time' }), { description: 'When it was marked clean, as ISO 8601 UTC; null while dirty.' }),
    ...resultFields,
  },
  { ...answer, description: "A job's result entry. The optional fields are present only when they were given." },
);

export const JobResultsQuery = Type.Object({ state: Type.Optional(ResultState), ...PageQuery }, strict);
export const JobResultsResponse = Type.Object({ jobResults: Type.Array(JobResultEntry), nextCursor: NextCursor }, answer);
/** The query of a list that has nothing but pages. */
export const ListQuery = Type.Object(PageQuery, strict);

export const PlanResponse = Type.Object({ jobId: JobIdAnswer, size: Type.Integer({ minimum: 1 }) }, answer);
export const JobIdsResponse = Type.Object({ jobIds: Type.Array(JobIdAnswer), nextCursor: NextCursor }, answer);
export const RequirementsBody = Type.Record(Type.String(), Type.Unknown(), {
  description: 'Any JSON object, nested at most 64 levels deep (deeper is a 400).',
});
export const RequirementsResponse = Type.Object({ jobId: JobIdAnswer, resourceRequirements: RequirementsBody }, answer);

const CheckpointFields = {
  checkpointId: Millis,
  timestamp: EpochMillis,
  externalPointer: Type.String({ minLength: 1, maxLength: 4096, description: "Where the checkpoint's state is, for example its metadata file." }),
  metadata: Type.Optional(
    Type.String({ pattern: '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$', description: 'Base64.' }),
  ),
  properties: Type.Optional(Type.Record(Type.String(), Type.String())),
};
export const Checkpoint = Type.Object(CheckpointFields, answer);
export const CheckpointBody = Type.Object(
  {
    ...CheckpointFields,
    maxRetained: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_RETAINED, description: 'How many checkpoints to retain, this one included.' }),
    ),
    subsume: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0 }), {
        maxItems: MAX_RETAINED,
        description:
          "Ids of older checkpoints to drop with this one, whatever `maxRetained` says: Flink subsumes savepoints while it keeps an older checkpoint that incremental state may build on. Ids not below this checkpoint's, or not held, are ignored.",
      }),
    ),
  },
  strict,
);
export const CheckpointAdded = Type.Object(
  {
    checkpointId: Type.Integer(),
    subsumed: Type.Array(Type.Object({ checkpointId: Type.Integer(), externalPointer: Type.String() }, answer), {
      description: 'The checkpoints dropped, oldest first.',
    }),
  },
  answer,
);
export const CheckpointsResponse = Type.Object({ checkpoints: Type.Array(Checkpoint), nextCursor: NextCursor }, answer);

export const JobStatus = Type.Unsafe<(typeof JOB_STATUSES)[number]>({
  type: 'string',
  enum: [...JOB_STATUSES],
  description: "Flink's `JobStatus`. `FINISHED`, `CANCELED` and `FAILED` are globally terminal.",
});
export const ShutdownBody = Type.Object({ jobStatus: JobStatus }, strict);
export const CheckpointsShutdown = Type.Object(
  { jobStatus: Type.String(), discarded: Type.Array(Type.Integer(), { description: 'The ids of the checkpoints discarded.' }) },
  answer,
);
export const CounterBody = Type.Object({ value: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }, strict);
export const CounterResponse = Type.Object({ value: Type.Integer() }, answer);
export const CounterShutdown = Type.Object({ jobStatus: Type.String(), removed: Type.Boolean() }, answer);

export const BlobHeaders = Type.Object({
  'x-content-sha256': Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
});
export const BlobStored = Type.Object({ jobId: Type.String(), blobKey: Type.String(), size: Type.Integer({ minimum: 0 }), sha256: Sha256 }, answer);
export const BlobInfo = Type.Object(
  { blobKey: Type.String(), size: Type.Integer({ minimum: 0 }), sha256: Sha256, createdAt: Type.String({ format: 'date-time' }) },
  answer,
);
export const BlobsResponse = Type.Object({ jobId: Type.String(), blobs: Type.Array(BlobInfo), nextCursor: NextCursor }, answer);
export const BlobDeleted = Type.Object({ deleted: Type.Boolean() }, answer);
export const BlobsDeleted = Type.Object({ deleted: Type.Integer({ minimum: 0 }) }, answer);

export const JobCleanupParts = Type.Object(
  Object.fromEntries(JOB_PARTS.map((p) => [p, Type.String()])),
  { ...answer, description: 'Each part: `deleted`, `absent`, or `failed: <reason>`.' },
);
export const JobCleanupResponse = Type.Object({ jobId: JobIdAnswer, parts: JobCleanupParts }, answer);
export const ClusterCleanupResponse = Type.Object(
  {
    clusterId: Type.String(),
    deleted: Type.Object(
      Object.fromEntries(
        ['leaders', 'jobResults', 'executionPlans', 'checkpoints', 'checkpointIdCounters', 'blobs', 'keys'].map((k) => [k, Type.Integer({ minimum: 0 })]),
      ),
      { ...answer, description: 'How many of each were deleted.' },
    ),
  },
  answer,
);

/** An error with more properties than the three of every error. */
function errorWith(properties: Record<string, TSchema>, description: string) {
  return Type.Object({ ...ErrorResponse.properties, ...properties }, { additionalProperties: true, description });
}

export const CheckpointConflictError = errorWith(
  { latestCheckpointId: Type.Optional(Type.Integer({ minimum: 0, description: "With `CheckpointIdNotIncreasing`, the latest stored checkpoint's id." })) },
  '`CheckpointIdNotIncreasing`, `FencingTokenRequired` or `FencingTokenStale`.',
);
export const CounterConflictError = errorWith(
  { value: Type.Optional(Type.Integer({ minimum: 1, description: "With `CheckpointIdNotIncreasing`, the counter's current value." })) },
  '`CheckpointIdNotIncreasing`, `FencingTokenRequired` or `FencingTokenStale`.',
);
export const CleanupIncompleteError = errorWith(
  { jobId: JobIdAnswer, parts: JobCleanupParts },
  '`CleanupIncomplete`: every part reports `failed: <reason>`.',
);
