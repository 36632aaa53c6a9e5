/**
 * Leader election for contenders: campaign, renew, confirm, resign. Each call is one Lua
 * script on Redis; the changes it made are also fed straight into this server's view of
 * the cluster, so that a contender reading right after its own write sees it.
 */
import { randomUUID } from 'node:crypto';
import type { ClusterView, LeaderState } from './clusterView.js';
import type { Change, Leader } from './changes.js';
import { GracePeriodError, HaError, LeaseNotHeldError, LockDelayError, RedisUnavailableError } from './errors.js';
import type { Floors } from './floors.js';
import type { AcknowledgedLeases } from './acknowledgedLeases.js';
import type { Component } from './ids.js';
import type { LeaseStore } from './leaseStore.js';
import type { LeadershipService, Owner } from './leadership.js';
import type { RedisLink } from './redisLink.js';
import { Code, codeError, type OpResult } from './replies.js';
import type { ViewRegistry } from './views.js';
import { LeaseEvents } from './events.js';

export interface CampaignResult {
  granted: boolean;
  leader: LeaderState | null;
}

/** The most leaders kept from renewals before the memo starts again. */
const MAX_RENEWED = 10_000;

export class ElectionService {
  /** The leader of each session renewed through this server, for clusters it does not
   * follow: a renewal then gets no leader back from Redis unless it changed (its address),
   * and the same object answers again, with its encoding cached (encode.ts). */
  private readonly renewed = new Map<string, Leader>();
  /** The cluster's leadership, which refuses per-component campaigns while it lives. */
  leadership?: LeadershipService;
  /** Told of grants, refused renewals, resignations and expiries (events.ts). */
  events = new LeaseEvents();

  constructor(
    private readonly link: RedisLink,
    private readonly store: LeaseStore,
    private readonly views: ViewRegistry,
    private readonly floors: Floors,
    /** The leases this server acknowledged: what a failover may take (the grace after it). */
    private readonly leases: AcknowledgedLeases,
  ) {}

  async campaign(
    clusterId: string,
    component: Component,
    req: { contenderId: string; ttlMs: number; address?: string; lockDelayMs?: number; owner?: Owner },
  ): Promise<CampaignResult> {
    const { keys, view } = this.target(clusterId);
    // What this server has answered bounds what Redis may hold: the index and the token
    // are floors, and the longest TTL granted is the grace after a rollback.
    const f = this.floors.of(clusterId);
    const replicated = this.leases.replicated(clusterId);
    const r = await this.store.campaign(
      keys,
      component,
      {
        contenderId: req.contenderId,
        sessionId: randomUUID(),
        ttlMs: req.ttlMs,
        address: req.address ?? '',
        lockDelayMs: req.lockDelayMs ?? 0,
        owner: req.owner ?? '',
      },
      {
        index: Math.max(view?.index ?? 0, f.index),
        token: this.views.tokenFloor(clusterId, component),
        graceMs: f.maxTtlMs,
      },
    );
    if (r.code === Code.RolledBack || r.code === Code.InGrace) {
      // The view's sync repairs the rollback and reports it: read the cluster anew.
      if (r.code === Code.RolledBack) void (view ? view.resync(true) : this.reopen(clusterId));
      throw new GracePeriodError(component, r.ttlMs);
    }
    if (r.code === Code.QuotaExceeded) throw codeError(r.code, component, r.values)!;
    if (r.code === Code.LeadershipHeld) {
      // Refused while the leadership lives; one that ran out unnoticed is ended first.
      await this.leadership!.refuseOrEnd(clusterId);
      return this.campaign(clusterId, component, req);
    }
    this.record(clusterId, view, r.changes);
    if (r.code === Code.Done) this.events.granted(clusterId, component, r.leader!, r.takeoverGapMs);
    // After the expiry it may just have recorded.
    if (r.code === Code.LockDelay) throw new LockDelayError(component, r.ttlMs);
    if (r.code === Code.AlreadyHeld) view?.extend(component, r.leader!.sessionId, r.ttlMs);
    this.floors.raiseTtl(clusterId, r.ttlMs);
    if (r.code !== Code.Held) this.leases.note(clusterId, r.ttlMs, replicated);
    return { granted: r.code !== Code.Held, leader: stateOf(r) };
  }

  /** Extends the lease, by `ttlMs` or else by its own TTL (the one it was granted or last
   * renewed with; `fallbackTtlMs` for a lease that has none recorded); NotLeader when this
   * contender and session no longer hold it, NotLeaseOwner when `owner` did not campaign. */
  async renew(
    clusterId: string,
    component: Component,
    contenderId: string,
    sessionId: string,
    ttlMs: number | undefined,
    fallbackTtlMs: number,
    owner: Owner = '',
  ): Promise<LeaderState> {
    const { keys, view } = this.target(clusterId);
    const held = view?.holder(component);
    const known = held?.sessionId === sessionId ? held : (this.renewed.get(sessionId) ?? null);
    const replicated = this.leases.replicated(clusterId);
    const r = await this.store.renew(keys, component, { contenderId, sessionId, ttlMs, fallbackTtlMs, known, owner }, view?.index ?? 0);
    this.record(clusterId, view, r.changes);
    if (r.code !== Code.Done) {
      this.events.of('renewFailed', clusterId, component, contenderId, known?.fencingToken ?? null);
      throw refusal(component, r);
    }
    view?.extend(component, sessionId, r.ttlMs);
    this.floors.raiseTtl(clusterId, r.ttlMs);
    this.leases.note(clusterId, r.ttlMs, replicated);
    if (r.slackMs !== undefined) this.events.renewalSlack?.(component, r.slackMs);
    const leader = r.leader ?? known!;
    if (!view && r.leader) {
      if (this.renewed.size >= MAX_RENEWED) this.renewed.clear();
      this.renewed.set(sessionId, leader);
    }
    return { leader, remainingMs: r.ttlMs };
  }

  async confirm(
    clusterId: string,
    component: Component,
    contenderId: string,
    sessionId: string,
    address: string,
    owner: Owner = '',
  ): Promise<LeaderState> {
    const { keys, view } = this.target(clusterId);
    const r = await this.store.confirm(keys, component, contenderId, sessionId, address, view?.index ?? 0, owner);
    this.record(clusterId, view, r.changes);
    if (r.code !== Code.Done) throw refusal(component, r);
    return stateOf(r)!;
  }

  /** Releases the lease; true when it was released now, false when it was already free.
   * Only `owner`, the access token that campaigned, may, unless `force` (an admin). */
  async resign(
    clusterId: string,
    component: Component,
    contenderId: string,
    sessionId: string,
    by: { owner: Owner; force?: boolean } = { owner: '' },
  ): Promise<boolean> {
    const { keys, view } = this.target(clusterId);
    const r = await this.store.resign(keys, component, { contenderId, sessionId, ...by }, view?.index ?? 0);
    if (r.code === Code.Done) this.events.ended('resigned', clusterId, component, contenderId, r.changes, (c) => this.holderOf(view, c, sessionId));
    this.record(clusterId, view, r.changes);
    if (r.code === Code.Held || r.code === Code.NotLeaseOwner) throw refusal(component, r);
    return r.code === Code.Done;
  }

  /** After a rollback, the view's sync repairs it and reports it: read the cluster anew. */
  reopen(clusterId: string): void {
    this.views.get(clusterId).catch(() => {});
  }

  /** Changes this server made: into its view, which notes them in the floors as it applies
   * them; without a view, into the floors, and a grant opens the view: the server that
   * granted a lease times it, so that its expiry is recorded (and its component forgotten,
   * issue 16) even in a cluster nobody watches. */
  record(clusterId: string, view: ClusterView | undefined, changes: Change[]): void {
    if (changes.length > 0) this.events.recorded(clusterId, changes, (c) => view?.holder(c) ?? null);
    if (view) view.ingest(changes);
    else {
      this.floors.noteChanges(clusterId, changes);
      if (changes.some((c) => c.leader)) this.views.get(clusterId).catch(() => {});
    }
  }

  /** Who held the component before a change, as far as this server knows: its view, or
   * the leader of `sessionId` it renewed. */
  holderOf(view: ClusterView | undefined, component: Component, sessionId?: string): Leader | null {
    return view?.holder(component) ?? (sessionId === undefined ? null : (this.renewed.get(sessionId) ?? null));
  }

  /** The cluster's keys and this server's view of it, if it has one; 503 while Redis is down. */
  target(clusterId: string) {
    if (!this.link.isHealthyFor(clusterId)) throw new RedisUnavailableError();
    const view = this.views.peek(clusterId);
    if (view) view.lastUsed = Date.now();
    return { keys: this.views.keys(clusterId), view };
  }
}

function stateOf(r: OpResult): LeaderState | null {
  return r.leader && { leader: r.leader, remainingMs: r.ttlMs };
}

/** Why a renew, confirm or resign was refused: another access token campaigned for the
 * lease (403), or this contender and session do not hold it (409). */
function refusal(component: Component, r: OpResult): HaError {
  return codeError(r.code, component) ?? new LeaseNotHeldError(`this contender and session do not hold the lease of ${component}`, stateOf(r));
}
