/** Runs the lease scripts against Redis and decodes their answers. All Redis logic of
 * leader election lives in the scripts; this module only packs, batches and unpacks. */
import { parseChange, parseLeader, type Change, type Leader } from './changes.js';
import { RedisUnavailableError } from './errors.js';
import { redisCall } from './redisCall.js';
import type { ClusterKeys, Component } from './ids.js';
import type { ScriptName, Scripts } from './scripts.js';

export interface OpResult {
  /** The script's code; see the header of each script. */
  code: number;
  /** The holder after the call, or null when the lease is free. */
  leader: Leader | null;
  ttlMs: number;
  changes: Change[];
}

export interface SyncResult {
  index: number;
  /** Expiries the sync itself recorded, in order. */
  changes: Change[];
  state: Map<Component, { leader: Leader | null; ttlMs: number }>;
}

export interface ChangesResult {
  index: number;
  /** false when the log no longer holds every change asked for. */
  complete: boolean;
  changes: Change[];
}

type Reply = Array<string | number | null>;

/** The most renewals sent in one call. */
const MAX_BATCH = 200;

interface RenewBatch {
  keys: ClusterKeys;
  floor: number;
  items: Array<{
    component: Component;
    args: Array<string | number>;
    resolve: (r: OpResult) => void;
    reject: (err: unknown) => void;
  }>;
}

export class LeaseStore {
  private readonly renewals = new Map<string, RenewBatch>();

  constructor(
    private readonly scripts: Scripts,
    private readonly logSize: number,
    /** This server's name in the messages of new TTLs, so that it skips its own: a field
     * of the message, so neither empty (no origin) nor with a space. */
    readonly origin: string,
  ) {
    if (!/^\S+$/.test(origin)) throw new Error(`an origin is a word without spaces, not '${origin}'`);
  }

  campaign(
    keys: ClusterKeys,
    component: Component,
    a: { contenderId: string; sessionId: string; ttlMs: number; address: string },
    floors: { index: number; token: number },
  ): Promise<OpResult> {
    return this.op('campaign', keys, component, [keys.components], floors.index, [
      a.contenderId,
      a.sessionId,
      a.ttlMs,
      a.address,
      floors.token,
    ]);
  }

  /** Renewals of a cluster that arrive in the same turn of the event loop go to Redis in
   * one call: under load that spares most of a round trip's cost per renewal. `known` is
   * the leader the caller holds for this session, if any: when Redis has the same one, its
   * answer leaves the leader out (null) rather than sending it again. */
  renew(
    keys: ClusterKeys,
    component: Component,
    a: { contenderId: string; sessionId: string; ttlMs: number | undefined; fallbackTtlMs: number; known: Leader | null },
    floor: number,
  ) {
    return new Promise<OpResult>((resolve, reject) => {
      let batch = this.renewals.get(keys.clusterId);
      if (!batch || batch.items.length >= MAX_BATCH) {
        batch = { keys, floor, items: [] };
        this.renewals.set(keys.clusterId, batch);
        setImmediate(() => void this.renewBatch(batch!));
      }
      batch.floor = Math.max(batch.floor, floor);
      const known = a.known ? 'a' + (a.known.address ?? '') : '';
      const args = [component, a.contenderId, a.sessionId, a.ttlMs ?? '', a.fallbackTtlMs, known];
      batch.items.push({ component, args, resolve, reject });
    });
  }

  private async renewBatch(batch: RenewBatch): Promise<void> {
    if (this.renewals.get(batch.keys.clusterId) === batch) this.renewals.delete(batch.keys.clusterId);
    const { keys, items } = batch;
    const ks = [keys.index, keys.log];
    const args: Array<string | number> = [keys.channel, batch.floor, this.logSize, this.origin];
    for (const item of items) {
      ks.push(keys.lease(item.component), keys.leader(item.component));
      args.push(...item.args);
    }
    let r: Reply;
    try {
      r = await this.run('renew', ks, args);
    } catch (err) {
      for (const item of items) item.reject(err);
      return;
    }
    let at = 0;
    for (const item of items) {
      const code = r[at] as number;
      if (code === 1) {
        item.resolve({ code: 1, leader: null, ttlMs: r[at + 1] as number, changes: [] });
        at += 2;
      } else if (code === 2) {
        // Renewed too, with the leader sent since the caller did not know it: code 1 here.
        item.resolve({ code: 1, leader: parseLeader(r[at + 1] as string), ttlMs: r[at + 2] as number, changes: [] });
        at += 3;
      } else {
        const n = r[at + 3] as number;
        item.resolve({
          code: 0,
          leader: parseLeader(r[at + 1] as string | null),
          ttlMs: r[at + 2] as number,
          changes: (r.slice(at + 4, at + 4 + n) as string[]).map(parseChange),
        });
        at += 4 + n;
      }
    }
  }

  confirm(keys: ClusterKeys, component: Component, contenderId: string, sessionId: string, address: string, floor: number) {
    return this.op('confirm', keys, component, [], floor, [contenderId, sessionId, address]);
  }

  resign(keys: ClusterKeys, component: Component, contenderId: string, sessionId: string, floor: number) {
    return this.op('resign', keys, component, [], floor, [contenderId, sessionId]);
  }

  expire(keys: ClusterKeys, component: Component, floor: number) {
    return this.op('expire', keys, component, [], floor, []);
  }

  /** The whole state of a cluster; `believed` maps components to the session ids the
   * caller thinks hold them, so that leases lost with Redis's data are reported. */
  async sync(keys: ClusterKeys, believed: Map<Component, string>, floor: number): Promise<SyncResult> {
    for (let attempt = 0; ; attempt++) {
      const members = await redisCall(() => this.scripts.redisClient.smembers(keys.components));
      const components = [...new Set([...members, ...believed.keys()])];
      const ks = [keys.index, keys.log, keys.components];
      const args: Array<string | number> = [keys.channel, floor, this.logSize];
      for (const c of components) {
        ks.push(keys.lease(c), keys.leader(c));
        args.push(c, believed.get(c) ?? '');
      }
      const r = await this.run('sync', ks, args);
      if (r[0] === -1) {
        if (attempt < 10) continue;
        throw new RedisUnavailableError(new Error('components kept changing during sync'));
      }
      const n = r[1] as number;
      const changes = (r.slice(2, 2 + n) as string[]).map(parseChange);
      const state = new Map<Component, { leader: Leader | null; ttlMs: number }>();
      components.forEach((c, k) => {
        state.set(c, { leader: parseLeader(r[2 + n + 2 * k] as string | null), ttlMs: r[3 + n + 2 * k] as number });
      });
      return { index: r[0] as number, changes, state };
    }
  }

  async changesSince(keys: ClusterKeys, since: number): Promise<ChangesResult> {
    const r = await this.run('changes', [keys.index, keys.log], [since, this.logSize]);
    return {
      index: r[0] as number,
      complete: r[1] === 1,
      changes: (r.slice(2) as string[]).map(parseChange),
    };
  }

  private async op(
    name: ScriptName,
    keys: ClusterKeys,
    component: Component,
    extraKeys: string[],
    floor: number,
    args: Array<string | number>,
  ): Promise<OpResult> {
    const r = await this.run(
      name,
      [keys.index, keys.log, keys.lease(component), keys.leader(component), ...extraKeys],
      [keys.channel, floor, this.logSize, component, ...args],
    );
    return {
      code: r[0] as number,
      leader: parseLeader(r[1] as string | null),
      ttlMs: r[2] as number,
      changes: (r.slice(3) as string[]).map(parseChange),
    };
  }

  private run(name: ScriptName, keys: string[], args: Array<string | number>): Promise<Reply> {
    return redisCall(() => this.scripts.run(name, keys, args));
  }
}
