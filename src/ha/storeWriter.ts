/**
 * Runs the store write scripts: each checks the fence and writes in one script, and
 * remembers its answer under an Idempotency-Key (see scripts/lib/store.lua). replies.ts
 * decodes each script's reply and maps its codes to errors.
 */
import { createHash } from 'node:crypto';
import { HaError } from './errors.js';
import type { ClusterKeys, Component } from './ids.js';
import { redisCall } from './redisCall.js';
import {
  Code,
  codeError,
  decodeFenceCheck,
  decodeStoreWrite,
  staleFence,
  unexpectedReply,
  type StoreScript,
  type StoreValue,
} from './replies.js';
import type { Scripts } from './scripts.js';

/** `override` for an admin's deliberate unfenced write, else a token's decimal digits;
 * undefined when the caller sent none. */
export type Fence = string | undefined;

/** What one cluster may hold (docs/operations.md, Quotas); scripts/lib/quota.lua checks
 * each inside the write that would pass it. */
export interface Quotas {
  jobResults: number;
  executionPlans: number;
  blobs: number;
  blobBytes: number;
  idempotencyRecords: number;
  /** Job managers with a lease (or a hash kept for a lock delay), per-component or
   * published under a leadership: campaign.lua and leadership_publish.lua check it. */
  jobManagers: number;
}

/** A write's Idempotency-Key, if it has one. */
export type IdempotencyKey = string | undefined;

/** How many times, in all, a write is tried while what it read keeps changing meanwhile. */
const ATTEMPTS = 11;

export interface WriteResult<V> {
  /** A remembered answer to an earlier request with the same Idempotency-Key. */
  replayed: boolean;
  /** What the script answered, decoded (replies.ts). */
  value: V;
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
  /** The quotas as every store script takes them: JSON, its last argument. */
  private readonly quotasArg: string;
  /** Told of each unfenced write done (an admin's, rare), before it is answered: the
   * cluster may have had no data until then (index.ts lists it). */
  unfenced: (clusterId: string) => Promise<void> = async () => {};

  constructor(
    /** Also for the stores' own maintenance scripts (index_migrate). */
    readonly scripts: Scripts,
    private readonly idempotencyTtlMs: number,
    /** The highest token the server knows granted to a component (ViewRegistry.tokenFloor):
     * the scripts refuse a fence below it, even when a rolled-back Redis holds its lease. */
    private readonly tokenFloor: (clusterId: string, component: Component) => number,
    readonly quotas: Quotas,
  ) {
    this.quotasArg = JSON.stringify(quotas);
  }

  /**
   * Runs a store script; `read` gives its own keys and arguments, and is called again
   * when the script answers that what was read changed meanwhile.
   */
  async write<N extends StoreScript>(
    name: N,
    w: Write,
    read: () => Promise<{ keys: string[]; args: Array<string | number | Buffer> }> | { keys: string[]; args: Array<string | number | Buffer> },
  ): Promise<WriteResult<StoreValue<N>>> {
    const fence = requireFence(w.fence);
    const fingerprint = w.idempotencyKey === undefined ? '' : digest(name, w.keys.clusterId, ...w.request);
    for (let attempt = 1; ; attempt++) {
      const own = await read();
      const keys = [
        w.keys.lease(w.owner),
        w.keys.leader(w.owner),
        w.keys.idempotency(w.idempotencyKey ?? ''),
        ...own.keys,
        // Last: what the quotas count (lib/quota.lua), and the leadership whose token
        // fences the cluster's writes while it lives.
        w.keys.idempotencyIndex,
        w.keys.usage,
        w.keys.leadershipLease,
        w.keys.leadership,
      ];
      const r = await redisCall(() =>
        this.scripts.run(name, keys, [fence, fingerprint, this.idempotencyTtlMs, this.tokenFloor(w.keys.clusterId, w.owner), ...own.args, this.quotasArg]),
      );
      const reply = decodeStoreWrite(name, r);
      if (reply.code === Code.Done) {
        if (fence === 'override') await this.unfenced(w.keys.clusterId);
        return { replayed: reply.replayed, value: reply.value };
      }
      if (reply.code === Code.Changed) {
        if (attempt < ATTEMPTS) continue;
        throw unexpectedReply(name, reply.code);
      }
      throw codeError(reply.code, w.owner, reply.values) ?? unexpectedReply(name, reply.code);
    }
  }

  /** Whether an answer is remembered under this Idempotency-Key. */
  async remembers(keys: ClusterKeys, idem: IdempotencyKey): Promise<boolean> {
    return idem !== undefined && (await redisCall(() => this.scripts.redisClient.exists(keys.idempotency(idem)))) === 1;
  }

  /** Whether a fencing token holds now; throws as a write would when it does not. */
  async check(keys: ClusterKeys, owner: Component, fence: Fence): Promise<void> {
    const token = requireFence(fence);
    const floor = this.tokenFloor(keys.clusterId, owner);
    const r: unknown = await redisCall(() => this.scripts.run('fence_check', [keys.lease(owner), keys.leader(owner), keys.leadershipLease, keys.leadership], [token, floor]));
    if (!decodeFenceCheck(r)) throw staleFence(owner);
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
