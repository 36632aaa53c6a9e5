/** Errors of the HA core carry stable codes; only the HTTP layer maps them to statuses. */

export type HaErrorCode =
  | 'NotLeader'
  | 'LeadershipHeld'
  | 'ComponentLeasesHeld'
  | 'NotLeadershipOwner'
  | 'NotLeaseOwner'
  | 'RedisUnavailable'
  | 'RedisOutOfMemory'
  | 'GracePeriod'
  | 'LockDelay'
  | 'FencingTokenRequired'
  | 'FencingTokenStale'
  | 'IdempotencyKeyReused'
  | 'IdempotencyQuotaExceeded'
  | 'IdempotentAnswerGone'
  | 'StorageQuotaExceeded'
  | 'JobResultExists'
  | 'JobResultNotFound'
  | 'ExecutionPlanNotFound'
  | 'ResourceRequirementsNotFound'
  | 'CheckpointIdNotIncreasing'
  | 'CheckpointNotFound'
  | 'BlobNotFound'
  | 'BlobDataLost'
  | 'PayloadTooLarge'
  | 'ContentSha256Mismatch';

export class HaError extends Error {
  constructor(
    readonly code: HaErrorCode,
    message: string,
    /** Extra fields for the caller, answered beside the message. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = code;
  }
}

export class LeaseNotHeldError extends HaError {
  constructor(message: string, leader: unknown) {
    super('NotLeader', message, { leader });
  }
}

export class RedisUnavailableError extends HaError {
  constructor(cause?: unknown) {
    super('RedisUnavailable', 'Redis is unavailable; try again shortly', {});
    if (cause !== undefined) this.cause = cause;
  }
}

/** Redis refused a write because it reached `maxmemory` (with `noeviction`, as it must be). */
export class RedisOutOfMemoryError extends HaError {
  constructor(cause?: unknown) {
    super('RedisOutOfMemory', 'Redis is out of memory (maxmemory reached) and refused the write; try again once memory is freed', {});
    if (cause !== undefined) this.cause = cause;
  }
}

/** No lease is granted in a cluster for a while after Redis lost data (docs/design.md §9):
 * until every lease that may have been lost has run out, so that no two contenders lead. */
export class GracePeriodError extends HaError {
  constructor(component: string, readonly remainingMs: number) {
    super(
      'GracePeriod',
      `Redis lost data of this cluster (a failover or a restored backup): ${component} is granted to nobody for ${remainingMs} ms more, until every lease that may have been lost has run out; campaign again then`,
      {},
    );
  }
}

/** No lease of the component is granted for the lock delay its last holder's grant asked
 * for (`lockDelayMs`, Consul's lock-delay), counted from when its lease's expiry was
 * recorded: time for a holder that stalled past its lease to notice before another leads. */
export class LockDelayError extends HaError {
  constructor(component: string, readonly remainingMs: number) {
    super(
      'LockDelay',
      `the last lease of ${component} expired with a lock delay: it is granted to nobody for ${remainingMs} ms more; campaign again then`,
      { retryAfterMs: remainingMs },
    );
  }
}
