/** The one place where error codes become HTTP statuses. Every error answers
 * `{error, message, statusCode}`; a 500 is a bug. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GracePeriodError, HaError, LockDelayError, type HaErrorCode, type LeaderState } from '../ha/index.js';
import { stateJson } from './encode.js';
import type { Log } from '../ha/log.js';
import { loggedUrl, noteError } from './requestLogging.js';

const HA_STATUS: Record<HaErrorCode, number> = {
  NotLeader: 409,
  LeadershipHeld: 409,
  ComponentLeasesHeld: 409,
  NotLeadershipOwner: 403,
  NotLeaseOwner: 403,
  RedisUnavailable: 503,
  RedisOutOfMemory: 503,
  GracePeriod: 503,
  LockDelay: 409,
  FencingTokenRequired: 409,
  FencingTokenStale: 409,
  IdempotencyKeyReused: 422,
  IdempotencyQuotaExceeded: 429,
  IdempotentAnswerGone: 410,
  StorageQuotaExceeded: 507,
  JobResultExists: 409,
  JobResultNotFound: 404,
  ExecutionPlanNotFound: 404,
  ResourceRequirementsNotFound: 404,
  CheckpointIdNotIncreasing: 409,
  CheckpointNotFound: 404,
  BlobNotFound: 404,
  BlobDataLost: 410,
  PayloadTooLarge: 413,
  ContentSha256Mismatch: 400,
};

const STATUS_CODE: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  408: 'RequestTimeout',
  409: 'Conflict',
  411: 'LengthRequired',
  413: 'PayloadTooLarge',
  414: 'UriTooLong',
  415: 'UnsupportedMediaType',
  422: 'UnprocessableEntity',
  426: 'UpgradeRequired',
  429: 'TooManyRequests',
  431: 'HeaderFieldsTooLarge',
};

/** Seconds a client should wait before retrying while Redis is unavailable. */
const RETRY_AFTER_S = '1';

interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** The first validation error, said plainly: `params/component must be one of: …`. */
export function formatValidationError(errors: SchemaError[], dataVar: string): Error {
  const e = errors.find((x) => x.keyword === 'enum' || x.keyword === 'const') ?? errors[0];
  const where = dataVar + e.instancePath;
  let message = `${where} ${e.message ?? 'is invalid'}`;
  if (e.keyword === 'enum' || e.keyword === 'const') {
    message = `${where} must be one of: ${(e.params.allowedValues as string[]).join(', ')}`;
  } else if (e.keyword === 'additionalProperties') {
    message = `${where} has an unknown property '${String(e.params.additionalProperty)}'`;
  } else if (e.keyword === 'required') {
    message = `${where} must have property '${String(e.params.missingProperty)}'`;
  }
  return Object.assign(new Error(message), { statusCode: 400, validation: errors });
}

/** A 400 for input a schema cannot express. */
export function badRequest(message: string): Error {
  return httpError(400, message);
}

/** An error answered with `statusCode`, and `error` (default: the code of that status). */
export function httpError(statusCode: number, message: string, error?: string): Error {
  return Object.assign(new Error(message), { statusCode, error });
}

export function sendError(
  reply: FastifyReply,
  statusCode: number,
  error: string,
  message: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  if (statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', RETRY_AFTER_S);
  if (statusCode === 401) reply.header('www-authenticate', 'Bearer');
  noteError(reply, error);
  return reply.code(statusCode).type('application/json').send({ error, message, statusCode, ...extra });
}

/** What an error answers beside its message: leaders in their wire shape. */
function extraOf(err: HaError): Record<string, unknown> {
  if (err.code === 'NotLeader' && !('leadership' in err.details)) return { leader: stateJson(err.details.leader as LeaderState | null) };
  if (err.code === 'ComponentLeasesHeld') {
    const leaders = err.details.leaders as Array<{ component: string; leader: LeaderState }>;
    return { leaders: leaders.map((l) => ({ component: l.component, leader: stateJson(l.leader) })) };
  }
  return err.details;
}

/** An error as a websocket message answers it (the renewal stream): the body an HTTP
 * answer would have, `statusCode` included; null for a bug (a 500), which the caller logs. */
export function errorBody(err: unknown): { error: string; message: string; statusCode: number } | null {
  if (err instanceof HaError) return { error: err.code, message: err.message, statusCode: HA_STATUS[err.code], ...extraOf(err) };
  const fe = err as FastifyError;
  const status = fe.statusCode ?? 500;
  const code = (fe as { error?: string }).error;
  if ((status >= 400 && status < 500) || (status === 503 && code)) {
    return { error: code ?? STATUS_CODE[status] ?? 'ClientError', message: fe.message, statusCode: status };
  }
  return null;
}

/** The handler of every error, logging what is a bug to `log`. */
export const errorHandler = (log: Log) => (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
  if (err instanceof HaError) {
    if (err instanceof GracePeriodError || err instanceof LockDelayError) reply.header('retry-after', String(Math.max(1, Math.ceil(err.remainingMs / 1000))));
    else if (typeof err.details.retryAfterMs === 'number') reply.header('retry-after', String(Math.max(1, Math.ceil(err.details.retryAfterMs / 1000))));
    return sendError(reply, HA_STATUS[err.code], err.code, err.message, extraOf(err));
  }
  const fe = err as FastifyError;
  // A client that hung up in the middle of its body: nobody hears the answer, and it is no bug.
  if (fe.code === 'ECONNRESET' && req.raw.destroyed) {
    return sendError(reply, 400, 'RequestAborted', 'the request was cut off before its body ended');
  }
  if (fe.validation) return sendError(reply, 400, 'BadRequest', fe.message);
  const body = errorBody(fe);
  if (body) return sendError(reply, body.statusCode, body.error, body.message);
  log.error({ err, reqId: req.id, method: req.method, url: loggedUrl(req.url) }, 'internal error');
  return sendError(reply, 500, 'Internal', 'internal server error');
};
