/**
 * A cluster's leadership, Flink's model since FLINK-24038 (docs/design.md §3): one lease,
 * one session id and one fencing token for a contender, under which it publishes and
 * deletes the leader information of any number of components. Renewal, resignation,
 * expiry and revocation act on all of it at once. Readers see each published component
 * as a leader like any other; each call's changes go into this server's view straight
 * away, as the election's do.
 */
import { randomUUID } from 'node:crypto';
import type { LeaderState } from './clusterView.js';
import { parseLeader, type Leader } from './changes.js';
import { GracePeriodError, HaError } from './errors.js';
import type { ElectionService } from './election.js';
import type { Floors } from './floors.js';
import type { Component } from './ids.js';
import type { LeadershipStore } from './leadershipStore.js';
import { Code, codeError, type LeadershipReply } from './replies.js';

/** A leadership as the API answers it. `token` fences every store write of the cluster
 * while it lives. */
export interface Leadership {
  contenderId: string;
  sessionId: string;
  token: number;
  ttlMs: number;
  remainingMs: number;
  /** What is published under it, sorted by component. */
  components: Array<{ component: Component; address: string }>;
}

/** Who calls: the name of its access token ('' with none configured), so that only the
 * token that campaigned may act on a lease or a leadership. */
export type Owner = string;

export class LeadershipService {
  constructor(
    private readonly store: LeadershipStore,
    private readonly election: ElectionService,
    private readonly floors: Floors,
  ) {}

  async campaign(
    clusterId: string,
    req: { contenderId: string; ttlMs: number; owner: Owner },
  ): Promise<{ granted: boolean; leadership: Leadership }> {
    const { keys, view } = this.election.target(clusterId);
    const f = this.floors.of(clusterId);
    const r = await this.store.campaign(
      keys,
      { contenderId: req.contenderId, sessionId: randomUUID(), ttlMs: req.ttlMs, owner: req.owner },
      { index: Math.max(view?.index ?? 0, f.index), token: Math.max(0, ...Object.values(f.tokens)), graceMs: f.maxTtlMs },
    );
    this.election.record(clusterId, view, r.changes);
    if (r.code === Code.RolledBack || r.code === Code.InGrace) {
      if (r.code === Code.RolledBack) void (view ? view.resync(true) : this.election.reopen(clusterId));
      throw new GracePeriodError('the leadership', r.remainingMs);
    }
    if (r.code === Code.ComponentLeasesHeld) {
      const leaders: Array<{ component: Component; leader: LeaderState }> = [];
      for (let i = 0; i + 2 < r.extra.length; i += 3) {
        leaders.push({ component: r.extra[i], leader: { leader: parseLeader(r.extra[i + 1])!, remainingMs: Number(r.extra[i + 2]) } });
      }
      throw new HaError('ComponentLeasesHeld', 'per-component leases live in this cluster: no leadership until they end', { leaders });
    }
    this.floors.raiseTtl(clusterId, r.ttlMs);
    if (r.code === Code.Done) this.election.events.granted(clusterId, null, r.leader!, r.takeoverGapMs);
    if (r.code === Code.AlreadyHeld) for (const c of pairs(r.extra)) view?.extend(c.component, r.leader!.sessionId, r.ttlMs);
    // Granted or not, a campaign that gets this far answers a holder.
    return { granted: r.code !== Code.Held, leadership: leadershipOf(r)! };
  }

  async renew(
    clusterId: string,
    req: { contenderId: string; sessionId: string; ttlMs: number | undefined; fallbackTtlMs: number; owner: Owner },
  ): Promise<Leadership> {
    const { keys, view } = this.election.target(clusterId);
    const r = await this.store.renew(keys, req, view?.index ?? 0);
    this.election.record(clusterId, view, r.changes);
    if (r.code !== Code.Done) this.election.events.of('renewFailed', clusterId, null, req.contenderId, null);
    this.check(r);
    if (r.slackMs !== undefined) this.election.events.renewalSlack?.(null, r.slackMs);
    const leadership = leadershipOf(r)!;
    for (const c of leadership.components) view?.extend(c.component, req.sessionId, r.ttlMs);
    this.floors.raiseTtl(clusterId, r.ttlMs);
    return leadership;
  }

  /** true when it was released now, false when no leadership was held. Only `owner`, the
   * access token that campaigned, may, unless `force` (an admin). */
  async resign(clusterId: string, req: { contenderId: string; sessionId: string; owner: Owner; force?: boolean }): Promise<boolean> {
    const { keys, view } = this.election.target(clusterId);
    const r = await this.store.resign(keys, req, view?.index ?? 0);
    if (r.code === Code.Done) this.election.events.ended('resigned', clusterId, null, req.contenderId, r.changes, (c) => this.election.holderOf(view, c));
    this.election.record(clusterId, view, r.changes);
    if (r.code === Code.Free) return false;
    this.check(r);
    return true;
  }

  /** An admin's revocation: of whoever leads, or only of `sessionId` (NotLeader when that
   * session does not lead). true when a leadership was revoked. */
  async revoke(clusterId: string, sessionId: string | undefined): Promise<boolean> {
    const { keys, view } = this.election.target(clusterId);
    const r = await this.store.revoke(keys, sessionId ?? '', false, view?.index ?? 0);
    if (r.code === Code.Done) this.election.events.ended('revoked', clusterId, null, null, r.changes, (c) => this.election.holderOf(view, c));
    this.election.record(clusterId, view, r.changes);
    if (r.code === Code.Free && sessionId !== undefined) throw notLeader(r);
    if (r.code === Code.Held) throw notLeader(r);
    return r.code === Code.Done;
  }

  /** The component's leader as `GET leaders/{component}` answers it. */
  async publish(clusterId: string, req: { sessionId: string; component: Component; address: string; owner: Owner }): Promise<LeaderState> {
    const { keys, view } = this.election.target(clusterId);
    const r = await this.store.publish(keys, req.component, req.sessionId, req.address, req.owner, view?.index ?? 0);
    if (r.code === Code.QuotaExceeded) throw codeError(r.code, req.component, r.extra)!;
    this.election.record(clusterId, view, r.changes);
    this.check(r);
    return { leader: r.leader!, remainingMs: r.remainingMs };
  }

  /** true when the component was published, false when it was not. */
  async unpublish(clusterId: string, req: { sessionId: string; component: Component; owner: Owner }): Promise<boolean> {
    const { keys, view } = this.election.target(clusterId);
    const r = await this.store.unpublish(keys, req.component, req.sessionId, req.owner, view?.index ?? 0);
    this.election.record(clusterId, view, r.changes);
    this.check(r);
    return r.extra[0] === '1';
  }

  async get(clusterId: string): Promise<Leadership | null> {
    const { keys } = this.election.target(clusterId);
    return leadershipOf(await this.store.get(keys));
  }

  /** A per-component campaign met a leadership (campaign.lua's LeadershipHeld): refused
   * while it lives; one that ran out unnoticed is ended, and the campaign may go on. */
  async refuseOrEnd(clusterId: string): Promise<void> {
    const leadership = await this.get(clusterId);
    if (leadership) {
      throw new HaError('LeadershipHeld', 'a leadership leads this cluster: no per-component lease while it lives', { leadership });
    }
    const { keys, view } = this.election.target(clusterId);
    const r = await this.store.expire(keys, view?.index ?? 0);
    this.election.record(clusterId, view, r.changes);
  }

  private check(r: LeadershipReply): void {
    if (r.code === Code.NotOwner) throw codeError(r.code, 'the leadership')!;
    if (r.code !== Code.Done) throw notLeader(r);
  }
}

function pairs(flat: string[]): Leadership['components'] {
  const out: Leadership['components'] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ component: flat[i], address: flat[i + 1] });
  return out.sort((a, b) => (a.component < b.component ? -1 : a.component > b.component ? 1 : 0));
}

function leadershipOf(r: LeadershipReply): Leadership | null {
  const l: Leader | null = r.leader;
  if (!l || (r.code !== Code.Done && r.code !== Code.AlreadyHeld && r.code !== Code.Held)) return null;
  return {
    contenderId: l.contenderId,
    sessionId: l.sessionId,
    token: l.fencingToken,
    ttlMs: r.ttlMs,
    remainingMs: Math.max(0, r.remainingMs),
    components: pairs(r.extra),
  };
}

function notLeader(r: LeadershipReply): HaError {
  return new HaError('NotLeader', 'this session does not hold the leadership', { leadership: leadershipOf(r) });
}
