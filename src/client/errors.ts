/** Errors of the client: each carries the server's error code (`NotLeader`,
 * `FencingTokenStale`, …) and HTTP status; the class says what a caller should do. */

export class LeaseholdError extends Error {
  constructor(
    /** The server's error code, or the client's own (`Unavailable`, `LeadershipLost`). */
    readonly code: string,
    message: string,
    /** The HTTP status, when the server answered. */
    readonly statusCode?: number,
    /** The rest of the server's error body (`leader`, `latestCheckpointId`, …). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400, 413, 415: the request itself is wrong; retrying it will not help. */
export class BadRequestError extends LeaseholdError {}

/** 401, 403: no token, or a token not allowed here. */
export class AuthError extends LeaseholdError {}

/** 403 `NotLeadershipOwner`: the leadership was won with another access token; only that
 * token may renew, resign, publish or unpublish it. */
export class NotLeadershipOwnerError extends AuthError {}

/** 404: the entry, plan, checkpoint or blob does not exist. */
export class NotFoundError extends LeaseholdError {}

/** 409 `NotLeader`: this contender does not hold the lease (any more); stop leading. Also
 * raised locally, without a request, when a fenced write is tried without a leadership. */
export class NotLeaderError extends LeaseholdError {
  /** The current holder, when known. */
  get leader(): unknown {
    return this.details.leader ?? null;
  }
}

/** 409 `FencingTokenRequired` or `FencingTokenStale`: nothing was written, and the writer
 * is not (or no longer) the leader that owns the data. */
export class FencingError extends LeaseholdError {}

/** Any other 409, and 422: the store refused the write for its own rules
 * (`JobResultExists`, `CheckpointIdNotIncreasing`, `IdempotencyKeyReused`). */
export class ConflictError extends LeaseholdError {}

/** 507 `StorageQuotaExceeded`: the cluster holds its quota of what the write would add
 * (`quota`, `limit` in details); nothing was written, and a retry will not help until
 * something is deleted. */
export class QuotaExceededError extends ConflictError {}

/** 429, 503, a timeout or a network error: the outcome of a write is unknown; retry with
 * the same `Idempotency-Key` (the store clients do) to find out. */
export class UnavailableError extends LeaseholdError {}

/** The abort reason of a task run while leader, once the leadership ended. */
export class LeadershipLostError extends LeaseholdError {
  constructor(readonly reason: string) {
    super('LeadershipLost', `leadership lost: ${reason}`);
  }
}

/** The error for a server's error answer. */
export function errorFor(status: number, body: unknown): LeaseholdError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const { error, message, statusCode: _status, ...details } = b;
  const code = typeof error === 'string' ? error : `Http${status}`;
  const text = typeof message === 'string' ? message : `the server answered ${status}`;
  const Class =
    code === 'NotLeader'
      ? NotLeaderError
      : code === 'NotLeadershipOwner'
        ? NotLeadershipOwnerError
      : code === 'FencingTokenRequired' || code === 'FencingTokenStale'
        ? FencingError
        : status === 401 || status === 403
          ? AuthError
          : status === 404
            ? NotFoundError
            : status === 409 || status === 422
              ? ConflictError
              : status === 507
                ? QuotaExceededError
              : status === 429 || status >= 500
                ? UnavailableError
                : BadRequestError;
  return new Class(code, text, status, details);
}
