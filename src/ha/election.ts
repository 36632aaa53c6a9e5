/**
 * Leader election for contenders: campaign, renew, confirm, resign. Each call is one Lua
 * script on Redis; the changes it made are also fed straight into this server's view of
 * the cluster, so that a contender reading right after its own write sees it.
 */
import { randomUUID } from 'node:crypto';
import type { LeaderState } from './clusterView.js';
import type { Leader } from './changes.js';
import { LeaseNotHeldError, RedisUnavailableError } from './errors.js';
import type { Component } from './ids.js';
import type { LeaseStore } from './leaseStore.js';
import type { RedisLink } from './redisLink.js';
import { Code, type OpResult } from './replies.js';
import type { ViewRegistry } from './views.js';

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

  constructor(
    private readonly link: RedisLink,
    private readonly store: LeaseStore,
    private readonly views: ViewRegistry,
  ) {}

  async campaign(
    clusterId: string,
    component: Component,
    req: { contenderId: string; ttlMs: number; address?: string },
  ): Promise<CampaignResult> {
    const { keys, view } = this.target(clusterId);
    const r = await this.store.campaign(
      keys,
      component,
      { contenderId: req.contenderId, sessionId: randomUUID(), ttlMs: req.ttlMs, address: req.address ?? '' },
      { index: view?.index ?? 0, token: view?.tokenFloor(component) ?? 0 },
    );
    view?.ingest(r.changes);
    if (r.code === Code.AlreadyHeld) view?.extend(component, r.leader!.sessionId, r.ttlMs);
    return { granted: r.code !== Code.Held, leader: stateOf(r) };
  }

  /** Extends the lease, by `ttlMs` or else by its own TTL (the one it was granted or last
   * renewed with; `fallbackTtlMs` for a lease that has none recorded); NotLeader when this
   * contender and session no longer hold it. */
  async renew(
    clusterId: string,
    component: Component,
    contenderId: string,
    sessionId: string,
    ttlMs: number | undefined,
    fallbackTtlMs: number,
  ): Promise<LeaderState> {
    const { keys, view } = this.target(clusterId);
    const held = view?.holder(component);
    const known = held?.sessionId === sessionId ? held : (this.renewed.get(sessionId) ?? null);
    const r = await this.store.renew(keys, component, { contenderId, sessionId, ttlMs, fallbackTtlMs, known }, view?.index ?? 0);
    view?.ingest(r.changes);
    if (r.code !== Code.Done) throw notLeader(component, r);
    view?.extend(component, sessionId, r.ttlMs);
    const leader = r.leader ?? known!;
    if (!view && r.leader) {
      if (this.renewed.size >= MAX_RENEWED) this.renewed.clear();
      this.renewed.set(sessionId, leader);
    }
    return { leader, remainingMs: r.ttlMs };
  }

  async confirm(clusterId: string, component: Component, contenderId: string, sessionId: string, address: string): Promise<LeaderState> {
    const { keys, view } = this.target(clusterId);
    const r = await this.store.confirm(keys, component, contenderId, sessionId, address, view?.index ?? 0);
    view?.ingest(r.changes);
    if (r.code !== Code.Done) throw notLeader(component, r);
    return stateOf(r)!;
  }

  /** Releases the lease; true when it was released now, false when it was already free. */
  async resign(clusterId: string, component: Component, contenderId: string, sessionId: string): Promise<boolean> {
    const { keys, view } = this.target(clusterId);
    const r = await this.store.resign(keys, component, contenderId, sessionId, view?.index ?? 0);
    view?.ingest(r.changes);
    if (r.code === Code.Held) throw notLeader(component, r);
    return r.code === Code.Done;
  }

  private target(clusterId: string) {
    if (!this.link.isHealthy) throw new RedisUnavailableError();
    const view = this.views.peek(clusterId);
    if (view) view.lastUsed = Date.now();
    return { keys: this.views.keys(clusterId), view };
  }
}

function stateOf(r: OpResult): LeaderState | null {
  return r.leader && { leader: r.leader, remainingMs: r.ttlMs };
}

function notLeader(component: Component, r: OpResult): LeaseNotHeldError {
  return new LeaseNotHeldError(`this contender and session do not hold the lease of ${component}`, stateOf(r));
}
