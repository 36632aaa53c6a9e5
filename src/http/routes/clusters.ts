/** The cluster listing, `GET /v1/clusters` (issue 20): the clusters the deployment holds,
 * only those the caller's token may use, by id, in pages (ha/clusterRegistry.ts). */
import type { Static } from 'typebox';
import type { ClusterSummary } from '../../ha/index.js';
import { CLUSTER_ID_PATTERN, RedisUnavailableError } from '../../ha/index.js';
import { ClustersQuery, ClustersResponse, type ClusterEntry } from '../clusterSchemas.js';
import { leaderJson } from '../encode.js';
import { cursorOf, pageOf } from '../paging.js';
import type { App, RouteContext } from '../types.js';

const CLUSTER_ID = new RegExp(CLUSTER_ID_PATTERN);

export function entryJson(s: ClusterSummary): Static<typeof ClusterEntry> {
  const leader = (c: keyof ClusterSummary['leaders']) => {
    const held = s.leaders[c];
    return held && leaderJson(held.leader, held.remainingMs);
  };
  const ls = s.leadership;
  return {
    clusterId: s.clusterId,
    leaders: { resourcemanager: leader('resourcemanager'), dispatcher: leader('dispatcher'), rest: leader('rest') },
    leadership: ls && {
      contenderId: ls.leader.contenderId,
      sessionId: ls.leader.sessionId,
      token: ls.leader.fencingToken,
      ttlMs: ls.ttlMs,
      remainingMs: ls.remainingMs,
      publishedCount: ls.published,
    },
    jobCount: s.jobManagers,
    // The index is a hybrid clock in microseconds (docs/decisions.md, Elections).
    lastChangeAt: s.index === null ? null : new Date(Math.floor(s.index / 1000)).toISOString(),
    index: s.index,
  };
}

export function clusterRoutes(app: App, { ha, access }: RouteContext): void {
  app.get('/v1/clusters', { schema: { querystring: ClustersQuery, response: { 200: ClustersResponse } } }, async (req) => {
    if (!ha.link.isHealthy) throw new RedisUnavailableError();
    // The role was checked before (app.ts); here, which clusters the token may see.
    const only = access.caller(req.headers.authorization, 'read')?.clusters ?? null;
    const page = await ha.clusters.ids({ ...pageOf(req.query, 'cl', CLUSTER_ID), prefix: req.query.prefix, only });
    const summaries = await ha.clusters.summaries(page.items);
    return { clusters: summaries.map(entryJson), ...cursorOf('cl', page.next) };
  });
}
