/** Errors of the HA core carry stable codes; only the HTTP layer maps them to statuses. */

export type HaErrorCode =
  | 'NotLeader'
  | 'LeadershipHeld'
  | 'ComponentLeasesHeld'
  | 'NotLeadershipOwner'
  | 'RedisUnavailable'
  | 'RedisOutOfMemory'
  | 'GracePeriod'
  | 'FencingTokenRequired'
  | 'FencingTokenStale'
  | 'IdempotencyKeyReused'
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

/** The cluster's leadership is not held by this contender and session (`leadership`: the
 * one that lives, or null); the HTTP layer answers it as `NotLeader`. */
export class LeadershipNotHeldError extends HaError {
  constructor(message: string, leadership: unknown) {
    super('NotLeader', message, { leadership });
  }
}

/** A cluster is led by one leadership or by per-component leases, never both. */
export class LeadershipHeldError extends HaError {
  constructor(leadership: unknown) {
    super('LeadershipHeld', 'a cluster leadership lives in this cluster: its components are published under it, not campaigned for one by one', {
      leadership,
    });
  }
}

export class ComponentLeasesHeldError extends HaError {
  constructor(leaders: unknown) {
    super('ComponentLeasesHeld', 'per-component leases live in this cluster: no cluster leadership until they end', { leaders });
  }
}

export class NotLeadershipOwnerError extends HaError {
  constructor() {
    super('NotLeadershipOwner', 'the leadership was campaigned for with another access token; only that token may renew, resign or publish under it', {});
  }
}
