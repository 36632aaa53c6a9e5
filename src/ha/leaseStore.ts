/** Runs the lease scripts against Redis. All Redis logic of leader election lives in the
 * scripts, and replies.ts decodes their answers; this module only packs and batches. */
import type { Leader } from './changes.js';
import { RedisUnavailableError } from './errors.js';
import { redisCall } from './redisCall.js';
import type { ClusterKeys, Component } from './ids.js';
import {
  Code,
  decodeChanges,
  decodeFailoverGrace,
  decodeOp,
  decodeRaiseIndex,
  decodeRenewals,
  decodeSync,
  type CampaignResult,
  type ChangesResult,
  type ConfirmResult,
  type ExpireResult,
  type OpScript,
  type RenewResult,
  type ResignResult,
  type SyncResult,
} from './replies.js';
import type { ScriptName, ScriptReply, Scripts } from './scripts.js';
import { LeadershipStore } from './leadershipStore.js';

export type {
  CampaignResult,
  ChangesResult,
  ConfirmResult,
  ExpireResult,
  OpResult,
  RenewResult,
  ResignResult,
  SyncResult,
} from './replies.js';

/** The most renewals sent in one call. */
const MAX_BATCH = 200;
/** The most components one sync.lua call reads (and settles): a cluster with more is read
 * in batches, so that no script runs for time proportional to a tenant's data. */
export const SYNC_BATCH = 500;

/** What a sync of one cluster is given (LeaseStore.sync). */
interface SyncRequest {
  keys: ClusterKeys;
  believed: Map<Component, string>;
  floor: number;
  floors: { tokens: Record<Component, number>; graceMs: number };
}

interface RenewBatch {
  keys: ClusterKeys;
  floor: number;
  items: Array<{
    component: Component;
    args: Array<string | number>;
    resolve: (r: RenewResult) => void;
    reject: (err: unknown) => void;
  }>;
}

function deliver(item: RenewBatch['items'][number], result: RenewResult): void {
  item.resolve(result);
}

export class LeaseStore {
  private readonly renewals = new Map<string, RenewBatch>();
  /** The scripts of a cluster's leadership, whose end settles its published components. */
  readonly leadership: LeadershipStore;

  constructor(
    private readonly scripts: Scripts,
    /** ARGV[3] of the scripts that record changes: the change log's size, then the
     * history's retention (history.ts, retentionArg). */
    private readonly logSize: number | string,
    /** This server's name in the messages of new TTLs, so that it skips its own: a field
     * of the message, so neither empty (no origin) nor with a space. */
    readonly origin: string,
    /** The quota of job managers per cluster (campaign.lua, leadership_publish.lua). */
    private readonly jobManagers = Number.MAX_SAFE_INTEGER,
  ) {
    if (!/^\S+$/.test(origin)) throw new Error(`an origin is a word without spaces, not '${origin}'`);
    this.leadership = new LeadershipStore(scripts, logSize, origin, jobManagers);
  }

  campaign(
    keys: ClusterKeys,
    component: Component,
    a: { contenderId: string; sessionId: string; ttlMs: number; address: string; lockDelayMs?: number; owner?: string },
    floors: { index: number; token: number; graceMs: number },
  ): Promise<CampaignResult> {
    return this.op('campaign', keys, component, [keys.components, keys.grace, keys.leadership], floors.index, [
      a.contenderId,
      a.sessionId,
      a.ttlMs,
      a.address,
      floors.token,
      floors.graceMs,
      a.lockDelayMs ?? 0,
      a.owner ?? '',
      this.jobManagers,
    ]);
  }

  /** Renewals of a cluster that arrive in the same turn of the event loop go to Redis in
   * one call: under load that spares most of a round trip's cost per renewal. `known` is
   * the leader the caller holds for this session, if any: when Redis has the same one, its
   * answer leaves the leader out (null) rather than sending it again. */
  renew(
    keys: ClusterKeys,
    component: Component,
    a: { contenderId: string; sessionId: string; ttlMs: number | undefined; fallbackTtlMs: number; known: Leader | null; owner?: string },
    floor: number,
  ) {
    return new Promise<RenewResult>((resolve, reject) => {
      let batch = this.renewals.get(keys.clusterId);
      if (!batch || batch.items.length >= MAX_BATCH) {
        batch = { keys, floor, items: [] };
        this.renewals.set(keys.clusterId, batch);
        setImmediate(() => void this.renewBatch(batch!));
      }
      batch.floor = Math.max(batch.floor, floor);
      const known = a.known ? 'a' + (a.known.address ?? '') : '';
      const args = [component, a.contenderId, a.sessionId, a.ttlMs ?? '', a.fallbackTtlMs, known, a.owner ?? ''];
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
    ks.push(...keys.historyKeys);
    try {
      decodeRenewals(await this.run('renew', ks, args), items, deliver);
    } catch (err) {
      // Those already resolved keep their result.
      for (const item of items) item.reject(err);
    }
  }

  confirm(
    keys: ClusterKeys,
    component: Component,
    contenderId: string,
    sessionId: string,
    address: string,
    floor: number,
    owner = '',
  ): Promise<ConfirmResult> {
    return this.op('confirm', keys, component, [], floor, [contenderId, sessionId, address, owner]);
  }

  /** `force`: an admin's resignation, whichever access token campaigned. */
  resign(
    keys: ClusterKeys,
    component: Component,
    a: { contenderId: string; sessionId: string; owner?: string; force?: boolean },
    floor: number,
  ): Promise<ResignResult> {
    return this.op('resign', keys, component, [keys.components], floor, [a.contenderId, a.sessionId, a.owner ?? '', a.force ? '1' : '0']);
  }

  /** A component published under a leadership runs out with it: then the leadership ends,
   * every published component in one script, whose changes are answered. */
  async expire(keys: ClusterKeys, component: Component, floor: number): Promise<ExpireResult> {
    const r = await this.op('expire', keys, component, [keys.components], floor, []);
    if (r.code !== Code.Published) return r;
    const ended = await this.leadership.expire(keys, floor);
    return { code: ended.code === Code.Done ? Code.Done : Code.Free, leader: null, ttlMs: 0, changes: ended.changes };
  }

  /** The whole state of a cluster; `believed` maps components to the session ids the
   * caller thinks hold them, so that leases lost with Redis's data are reported. `floors`
   * are what the caller has answered: a Redis below them rolled back, and sync.lua repairs
   * it (docs/design.md §9). */
  async sync(
    keys: ClusterKeys,
    believed: Map<Component, string>,
    floor: number,
    floors: { tokens: Record<Component, number>; graceMs: number },
  ): Promise<SyncResult> {
    const redis = this.scripts.redisClient;
    for (let attempt = 0; ; attempt++) {
      if ((await redisCall(() => redis.scard(keys.components))) + believed.size > SYNC_BATCH) break;
      const members = await redisCall(() => redis.smembers(keys.components));
      const components = [...new Set([...members, ...believed.keys()])];
      const result = await this.syncBatch({ keys, believed, floor, floors }, components, true);
      if (result !== Code.Changed) return result;
      if (attempt >= 10) throw new RedisUnavailableError(new Error('components kept changing during sync'));
    }
    return this.syncInBatches({ keys, believed, floor, floors });
  }

  /** A sync of a cluster too large for one call: batches of SYNC_BATCH components (SSCAN,
   * then those believed live that the scan did not name). The state is not one snapshot,
   * so it is answered under the index the first batch started from: the changes after it
   * (made during the batches, their own expiries included) reach the caller's view through
   * pub/sub, to which it subscribed before the sync, and being whole states of their
   * components they bring each one up to date whatever its batch read. */
  private async syncInBatches(req: SyncRequest): Promise<SyncResult> {
    const { keys, believed } = req;
    const redis = this.scripts.redisClient;
    const out: SyncResult = { index: -1, rolledBack: false, changes: [], state: new Map(), stored: false };
    const batch = async (components: Component[]) => {
      for (let i = 0; i < components.length; i += SYNC_BATCH) {
        const r = await this.syncBatch(req, components.slice(i, i + SYNC_BATCH), false);
        if (r === Code.Changed) throw new Error('sync.lua answered CHANGED to a batch');
        if (out.index < 0) out.index = r.startIndex!;
        out.rolledBack ||= r.rolledBack;
        out.stored ||= r.stored;
        out.changes.push(...r.changes);
        for (const [c, s] of r.state) out.state.set(c, s);
      }
    };
    let cursor = '0';
    do {
      const [next, members] = await redisCall(() => redis.sscan(keys.components, cursor, 'COUNT', SYNC_BATCH));
      cursor = next;
      await batch(members.filter((c) => !out.state.has(c)));
    } while (cursor !== '0');
    await batch([...believed.keys()].filter((c) => !out.state.has(c)));
    return out;
  }

  private async syncBatch(
    { keys, believed, floor, floors }: SyncRequest,
    components: Component[],
    whole: boolean,
  ): Promise<SyncResult | typeof Code.Changed> {
    const ks = [keys.index, keys.log, keys.components, keys.grace];
    const args: Array<string | number> = [keys.channel, floor, this.logSize, floors.graceMs, whole ? 1 : 0];
    for (const c of components) {
      ks.push(keys.lease(c), keys.leader(c));
      args.push(c, believed.get(c) ?? '', floors.tokens[c] ?? 0);
    }
    ks.push(...keys.historyKeys);
    return decodeSync(await this.run('sync', ks, args), components);
  }

  /** Raises the cluster's index above `floor`, without a change; answers the new index. */
  async raiseIndex(keys: ClusterKeys, floor: number): Promise<number> {
    return decodeRaiseIndex(await this.run('raise_index', [keys.index, keys.log], [keys.channel, floor, this.logSize]));
  }

  /** Starts the cluster's grace period (or keeps a longer one): no grant for `graceMs`;
   * answers the grace's time left. */
  async startGrace(keys: ClusterKeys, graceMs: number): Promise<number> {
    return decodeFailoverGrace(
      await this.run('failover_grace', [keys.index, keys.log, keys.grace], [keys.channel, 0, this.logSize, graceMs]),
    );
  }

  async changesSince(keys: ClusterKeys, since: number): Promise<ChangesResult> {
    return decodeChanges(await this.run('changes', [keys.index, keys.log], [since, parseInt(String(this.logSize), 10)]));
  }

  private async op<N extends OpScript>(
    name: N,
    keys: ClusterKeys,
    component: Component,
    extraKeys: string[],
    floor: number,
    args: Array<string | number>,
  ) {
    const r = await this.run(
      name,
      [keys.index, keys.log, keys.lease(component), keys.leader(component), ...extraKeys, ...keys.historyKeys],
      [keys.channel, floor, this.logSize, component, ...args],
    );
    return decodeOp(name, r);
  }

  private run(name: ScriptName, keys: string[], args: Array<string | number>): Promise<ScriptReply> {
    return redisCall(() => this.scripts.run(name, keys, args));
  }
}
