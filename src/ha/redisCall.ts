/** How Redis failures reach the callers of the HA core. */
import { ReplyError } from 'ioredis';
import { RedisOutOfMemoryError, RedisUnavailableError } from './errors.js';

/** Redis errors that mean "not now" rather than "wrong". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)/;

/** Connection trouble and Redis's "not now" answers become RedisUnavailable, a full Redis
 * RedisOutOfMemory; any other Redis error is a bug and goes up as it is. */
export async function redisCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw redisFailure(err);
  }
}

/** What a Redis error is to the callers, as redisCall says; for the errors of a pipeline's
 * replies (a command timing out in one), which exec() answers rather than throws. */
export function redisFailure(err: unknown): unknown {
  if (err instanceof ReplyError && (err as Error).message.startsWith('OOM')) return new RedisOutOfMemoryError(err);
  if (err instanceof ReplyError && !TRANSIENT_REPLY.test((err as Error).message)) return err;
  return new RedisUnavailableError(err);
}
