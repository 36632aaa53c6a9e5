/**
 * A cluster's leadership (issue 22): Flink's model since 1.15, one leader election per
 * JobManager process. A contender campaigns once and gets one lease, one session id and
 * one fencing token, and publishes under it the leader information of any component.
 * Each call is one Lua script (scripts/leadership_*.lua, lib/cluster_leadership.lua); the
 * changes it made are fed straight into this server's view, as ElectionService does.
 */
import { randomUUID } from 'node:crypto';
import type { ClusterView, LeaderState } from './clusterView.js';
import type { Change } from './changes.js';
import {
  ComponentLeasesHeldError,
  GracePeriodError,
  LeadershipHeldError,
  LeadershipNotHeldError,
  NotLeadershipOwnerError,
  RedisUnavailableError,
} from './errors.js';
import type { Floors } from './floors.js';
import type { ClusterKeys, Component } from './ids.js';
import { redisCall } from './redisCall.js';
import type { RedisLink } from './redisLink.js';
import { Code, decodeLeadership, decodePublish, decodeUnpublish, type LeadershipResult, type LeadershipState } from './replies.js';
import type { ScriptName, Scripts } from './scripts.js';
import type { ViewRegistry } from './views.js';

export type { LeadershipState } from './replies.js';

/** The campaigning access token's digest, '' when the server has none configured. */
export type Owner = string;

export class LeadershipService {
  constructor(
    private readonly link: RedisLink,
    private readonly scripts: Scripts,
    private readonly views: ViewRegistry,
    private readonly floors: Floors,
    private readonly logSize: number,
  ) {}

  async get(clusterId: string): Promise<LeadershipState | null> {
    return (await this.call('leadership_get', clusterId, [], [])).leadership;
  }

  async campaign(
    clusterId: string,
    req: { contenderId: string; ttlMs: number; owner: Owner },
  ): Promise<{ granted: boolean; leadership: LeadershipState }> {
    const f = this.floors.of(clusterId);
    // Its token is above every token this server answered in the cluster.
    const tokenFloor = Math.max(0, ...Object.values(f.tokens));
    const keys = this.views.keys(clusterId);
    const r = await this.call('leadership_campaign', clusterId, [keys.components, keys.grace], [
      req.contenderId,
      randomUUID(),
      req.ttlMs,
      tokenFloor,
      f.maxTtlMs,
      req.owner,
    ]);
    if (r.code === Code.RolledBack || r.code === Code.InGrace) {
      if (r.code === Code.RolledBack) {
        const view = this.views.peek(clusterId);
        void (view ? view.resync(true) : this.views.get(clusterId).catch(() => {}));
      }
      throw new GracePeriodError('the leadership', r.graceMs);
    }
    if (r.code === Code.ComponentLeasesHeld) {
      throw new ComponentLeasesHeldError(r.leaders.map((l) => ({ component: l.component, leader: { leader: l.leader, remainingMs: l.ttlMs } })));
    }
    this.floors.raiseTtl(clusterId, req.ttlMs);
    return { granted: r.code !== Code.Held, leadership: r.leadership! };
  }

  /** Extends the leadership and every component published under it, by `ttlMs` or else
   * by its own TTL. */
  async renew(clusterId: string, contenderId: string, sessionId: string, ttlMs: number | undefined, owner: Owner): Promise<LeadershipState> {
    const r = await this.call('leadership_renew', clusterId, [], [contenderId, sessionId, ttlMs ?? '', owner]);
    this.refuse(r.code, r.leadership);
    this.floors.raiseTtl(clusterId, r.leadership!.ttlMs);
    return r.leadership!;
  }

  /** Ends the leadership: true when it ended now, false when it was already free. */
  async resign(clusterId: string, contenderId: string, sessionId: string, owner: Owner): Promise<boolean> {
    const r = await this.call('leadership_resign', clusterId, [], [contenderId, sessionId, owner]);
    if (r.code === Code.Free) return false;
    this.refuse(r.code, r.leadership);
    return true;
  }

  /** An admin ends the leadership (only `sessionId`'s, when given). */
  async revoke(clusterId: string, sessionId: string | undefined): Promise<boolean> {
    const r = await this.call('leadership_revoke', clusterId, [], [sessionId ?? '']);
    if (r.code === Code.Held || (r.code === Code.Free && sessionId !== undefined)) {
      throw new LeadershipNotHeldError(`session ${sessionId} does not hold the leadership`, r.leadership);
    }
    return r.code === Code.Done;
  }

  async publish(clusterId: string, sessionId: string, component: Component, address: string, owner: Owner): Promise<LeaderState> {
    const { keys, view } = this.target(clusterId);
    const l = keys.leadership;
    const reply = await this.run(
      'leadership_publish',
      [keys.index, keys.log, l.lease, l.hash, l.published, keys.components, keys.lease(component), keys.leader(component)],
      [keys.channel, this.indexFloor(clusterId, view), this.logSize, sessionId, component, address, owner],
    );
    const r = decodePublish(reply);
    this.record(clusterId, view, r.changes);
    if (r.code !== Code.Done) await this.refuseNow(clusterId, r.code);
    return { leader: r.leader!, remainingMs: r.ttlMs };
  }

  /** Deletes a component's published leader information; false when it was not published. */
  async unpublish(clusterId: string, sessionId: string, component: Component, owner: Owner): Promise<boolean> {
    const { keys, view } = this.target(clusterId);
    const l = keys.leadership;
    const reply = await this.run(
      'leadership_unpublish',
      [keys.index, keys.log, l.lease, l.hash, l.published, keys.lease(component), keys.leader(component)],
      [keys.channel, this.indexFloor(clusterId, view), this.logSize, sessionId, component, owner],
    );
    const r = decodeUnpublish(reply);
    this.record(clusterId, view, r.changes);
    if (r.code !== Code.Done) await this.refuseNow(clusterId, r.code);
    return r.removed;
  }

  /** A per-component campaign refused because a leadership lives: the error names it. */
  async leadershipHeld(clusterId: string): Promise<LeadershipHeldError> {
    return new LeadershipHeldError(await this.get(clusterId).catch(() => null));
  }

  private refuse(code: Code, leadership: LeadershipState | null): void {
    if (code === Code.NotOwner) throw new NotLeadershipOwnerError();
    if (code !== Code.Done) {
      throw new LeadershipNotHeldError('this contender and session do not hold the cluster leadership', leadership);
    }
  }

  /** The refusal of a publish or unpublish, with the leadership as it is now. */
  private async refuseNow(clusterId: string, code: Code): Promise<never> {
    this.refuse(code, code === Code.NotOwner ? null : await this.get(clusterId));
    throw new Error('unreachable');
  }

  /** The scripts whose keys are the leadership's and whose answer is {code, leadership, ...}. */
  private async call(name: ScriptName, clusterId: string, extraKeys: string[], args: Array<string | number>): Promise<LeadershipResult> {
    const { keys, view } = this.target(clusterId);
    const l = keys.leadership;
    const reply = await this.run(name, [keys.index, keys.log, l.lease, l.hash, l.published, ...extraKeys], [
      keys.channel,
      this.indexFloor(clusterId, view),
      this.logSize,
      ...args,
    ]);
    const r = decodeLeadership(name, reply);
    this.record(clusterId, view, r.changes);
    return r;
  }

  /** What this server has answered bounds what Redis may hold (docs/design.md §9). */
  private indexFloor(clusterId: string, view: ClusterView | undefined): number {
    return Math.max(view?.index ?? 0, this.floors.of(clusterId).index);
  }

  private record(clusterId: string, view: ClusterView | undefined, changes: Change[]): void {
    if (view) view.ingest(changes);
    else this.floors.noteChanges(clusterId, changes);
  }

  private target(clusterId: string): { keys: ClusterKeys; view: ClusterView | undefined } {
    if (!this.link.isHealthy) throw new RedisUnavailableError();
    const view = this.views.peek(clusterId);
    if (view) view.lastUsed = Date.now();
    return { keys: this.views.keys(clusterId), view };
  }

  private run(name: ScriptName, keys: string[], args: Array<string | number>) {
    return redisCall(() => this.scripts.run(name, keys, args));
  }
}
