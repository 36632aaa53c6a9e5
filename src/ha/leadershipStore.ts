/** Runs the scripts of a cluster's leadership (scripts/leadership_*.lua) against Redis:
 * packs their keys, and reads again the components a script lists when they changed
 * meanwhile. All Redis logic is in the scripts; replies.ts decodes their answers. */
import { RedisUnavailableError } from './errors.js';
import type { ClusterKeys, Component } from './ids.js';
import { redisCall } from './redisCall.js';
import { Code, decodeLeadership, type LeadershipReply, type LeadershipScript } from './replies.js';
import type { Scripts } from './scripts.js';

const ATTEMPTS = 10;

/** Which components a script lists: those published under the leadership, or all of the
 * cluster's (a campaign checks that none of them has a per-component lease). */
type Listing = 'published' | 'components';

export class LeadershipStore {
  /** The components published in each cluster, as last read: a renewal lists them, and
   * is one round trip while they stay the same (the script checks them). */
  private readonly published = new Map<string, Component[]>();

  constructor(
    private readonly scripts: Scripts,
    private readonly logSize: number | string,
    private readonly origin: string,
    /** The quota of job managers per cluster (leadership_publish.lua). */
    private readonly jobManagers: number,
  ) {}

  campaign(
    keys: ClusterKeys,
    a: { contenderId: string; sessionId: string; ttlMs: number; owner: string },
    floors: { index: number; token: number; graceMs: number },
  ): Promise<LeadershipReply> {
    return this.listed('leadership_campaign', keys, floors.index, 'components', [keys.components, keys.grace], [
      a.contenderId,
      a.sessionId,
      a.ttlMs,
      a.owner,
      floors.token,
      floors.graceMs,
    ]);
  }

  renew(
    keys: ClusterKeys,
    a: { contenderId: string; sessionId: string; ttlMs: number | undefined; fallbackTtlMs: number; owner: string },
    floor: number,
  ): Promise<LeadershipReply> {
    return this.listed('leadership_renew', keys, floor, 'published', [], [
      this.origin,
      a.contenderId,
      a.sessionId,
      a.ttlMs ?? '',
      a.fallbackTtlMs,
      a.owner,
    ]);
  }

  /** `force`: an admin's resignation, whichever access token campaigned. */
  resign(
    keys: ClusterKeys,
    a: { contenderId: string; sessionId: string; owner: string; force?: boolean },
    floor: number,
  ): Promise<LeadershipReply> {
    return this.listed('leadership_resign', keys, floor, 'published', [keys.components], [a.contenderId, a.sessionId, a.owner, a.force ? '1' : '0']);
  }

  /** Ends whoever's leadership (`sessionId` ''), or that session's; `forget` deletes the
   * leadership hash too (cleanupAllData). */
  revoke(keys: ClusterKeys, sessionId: string, forget: boolean, floor: number): Promise<LeadershipReply> {
    return this.listed('leadership_revoke', keys, floor, 'published', [keys.components], [sessionId, forget ? '1' : '0']);
  }

  expire(keys: ClusterKeys, floor: number): Promise<LeadershipReply> {
    return this.listed('leadership_expire', keys, floor, 'published', [keys.components], []);
  }

  publish(keys: ClusterKeys, component: Component, sessionId: string, address: string, owner: string, floor: number) {
    this.published.delete(keys.clusterId);
    return this.run('leadership_publish', keys, floor, [keys.components, keys.lease(component), keys.leader(component)], [
      component,
      sessionId,
      address,
      owner,
      this.jobManagers,
    ]);
  }

  unpublish(keys: ClusterKeys, component: Component, sessionId: string, owner: string, floor: number) {
    this.published.delete(keys.clusterId);
    return this.run('leadership_unpublish', keys, floor, [keys.lease(component), keys.leader(component), keys.components], [
      component,
      sessionId,
      owner,
    ]);
  }

  get(keys: ClusterKeys): Promise<LeadershipReply> {
    return this.run('leadership_get', keys, 0, [], []);
  }

  /** Runs a script that lists components, reading them again while they change. */
  private async listed(
    name: LeadershipScript,
    keys: ClusterKeys,
    floor: number,
    listing: Listing,
    extraKeys: string[],
    args: Array<string | number>,
  ): Promise<LeadershipReply> {
    const id = keys.clusterId;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      let components = listing === 'published' ? this.published.get(id) : undefined;
      if (!components) {
        const read = await redisCall(() =>
          listing === 'published' ? this.scripts.redisClient.hkeys(keys.published) : this.scripts.redisClient.smembers(keys.components),
        );
        // Sorted: the end of a leadership records its components' changes in this order.
        components = read.sort();
        if (listing === 'published') this.published.set(id, components);
      }
      const r = await this.run(
        name,
        keys,
        floor,
        [...extraKeys, ...components.flatMap((c) => [keys.lease(c), keys.leader(c)])],
        [...args, ...components],
      );
      if (r.code !== Code.Changed) return r;
      this.published.delete(id);
    }
    throw new RedisUnavailableError(new Error('the published components kept changing'));
  }

  private async run(
    name: LeadershipScript,
    keys: ClusterKeys,
    floor: number,
    extraKeys: string[],
    args: Array<string | number>,
  ): Promise<LeadershipReply> {
    const r = await redisCall(() =>
      this.scripts.run(
        name,
        [keys.index, keys.log, keys.leadershipLease, keys.leadership, keys.published, ...extraKeys, ...keys.historyKeys],
        [keys.channel, floor, this.logSize, ...args],
      ),
    );
    return decodeLeadership(name, r);
  }
}
