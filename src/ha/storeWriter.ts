/**
 * Runs the store write scripts: each checks the fence and writes in one script, and
 * remembers its answer under an Idempotency-Key (see scripts/lib/store.lua). One table
 * maps the scripts' codes to errors.
 */
import { createHash } from 'node:crypto';
import { HaError } from './errors.js';
import type { ClusterKeys, Component } from './ids.js';
import { redisCall } from './redisCall.js';
import type { ScriptName, Scripts } from './scripts.js';

/** `override` for an admin's deliberate unfenced write, else a token's decimal digits;
 * undefined when the caller sent none. */
export type Fence = string | undefined;

/** A write's Idempotency-Key, if it has one. */
export type IdempotencyKey = string | undefined;

/** Codes that the scripts answer; each script's header says which it may. */
const CODE_ERRORS: Record<number, (owner: Component, values: string[]) => HaError> = {
  [-1]: (owner) => staleFence(owner),
  [-2]: () => new HaError('IdempotencyKeyReused', 'Idempotency-Key was already used for another request'),
  [-3]: () => new HaError('JobResultExists', 'the job already has a job result entry'),
  [-4]: () => new HaError('JobResultNotFound', 'the job has no job result entry'),
  [-5]: (_, v) =>
    new HaError('CheckpointIdNotIncreasing', `the checkpoint id must be above the latest one, ${v[0]}`, {
      latestCheckpointId: Number(v[0]),
    }),
  [-6]: () => new HaError('ExecutionPlanNotFound', 'the job has no execution plan'),
  [-8]: (_, v) =>
    new HaError('CheckpointIdNotIncreasing', `the counter never goes below its value, ${v[0]}`, { value: Number(v[0]) }),
  [-7]: () => new HaError('RedisUnavailable', 'the staged upload is gone from Redis; upload again'),
};

/** Answered by a script when keys it was given changed since they were read. */
export const RETRY = -9;

export function staleFence(owner: Component): HaError {
  return new HaError('FencingTokenStale', `X-Fencing-Token is not the token of a live lease of ${owner}`);
}

export interface WriteResult {
  /** A remembered answer to an earlier request with the same Idempotency-Key. */
  replayed: boolean;
  values: string[];
}

export interface Write {
  keys: ClusterKeys;
  /** The component whose leader owns the data. */
  owner: Component;
  fence: Fence;
  idempotencyKey: IdempotencyKey;
  /** What makes two requests the same one, for the Idempotency-Key. */
  request: Array<string | Buffer>;
}

export class StoreWriter {
  constructor(
    private readonly scripts: Scripts,
    private readonly idempotencyTtlMs: number,
  ) {}

  /**
   * Runs a store script; `read` gives its own keys and arguments, and is called again
   * when the script answers that what was read changed meanwhile.
   */
  async write(
    name: ScriptName,
    w: Write,
    read: () => Promise<{ keys: string[]; args: Array<string | number | Buffer> }> | { keys: string[]; args: Array<string | number | Buffer> },
  ): Promise<WriteResult> {
    const fence = requireFence(w.fence);
    const fingerprint = w.idempotencyKey === undefined ? '' : digest(name, w.keys.clusterId, ...w.request);
    for (let attempt = 0; ; attempt++) {
      const own = await read();
      const keys = [w.keys.lease(w.owner), w.keys.leader(w.owner), w.keys.idempotency(w.idempotencyKey ?? ''), ...own.keys];
      const r = await redisCall(() =>
        this.scripts.run(name, keys, [fence, fingerprint, this.idempotencyTtlMs, ...own.args]),
      );
      const code = r[1] as number;
      const values = r.slice(2) as string[];
      if (code === 0) return { replayed: r[0] === 1, values };
      if (code === RETRY && attempt < 10) continue;
      const error = CODE_ERRORS[code];
      if (error) throw error(w.owner, values);
      throw new HaError('RedisUnavailable', `${name} answered code ${code}`);
    }
  }

  /** Whether an answer is remembered under this Idempotency-Key. */
  async remembers(keys: ClusterKeys, idem: IdempotencyKey): Promise<boolean> {
    return idem !== undefined && (await redisCall(() => this.scripts.redisClient.exists(keys.idempotency(idem)))) === 1;
  }

  /** Whether a fencing token holds now; throws as a write would when it does not. */
  async check(keys: ClusterKeys, owner: Component, fence: Fence): Promise<void> {
    const token = requireFence(fence);
    const held: unknown = await redisCall(() => this.scripts.run('fence_check', [keys.lease(owner), keys.leader(owner)], [token]));
    if (held !== 1) throw staleFence(owner);
  }
}

export function requireFence(fence: Fence): string {
  if (fence === undefined) {
    throw new HaError('FencingTokenRequired', "a write needs X-Fencing-Token: the owning leader's fencing token, or override");
  }
  return fence;
}

/** SHA-256 (hex) of the parts, each length-prefixed so that no two lists collide. */
function digest(...parts: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${Buffer.byteLength(p)}:`).update(p);
  return h.digest('hex');
}
