/** A cluster's leadership (issue 22): one lease over several components, Flink's model.
 * Campaign, renew, resign, publish and unpublish leader information, revoke (admin). */
import { Type } from 'typebox';
import { jobManager, LeadershipHeldError, type Component } from '../../ha/index.js';
import { Access, ownerOf } from '../auth.js';
import { leadershipJson, stateJson } from '../encode.js';
import type { App, RouteContext } from '../types.js';
import {
  BlockingQuery,
  ClusterParams,
  LeadershipCampaignResponse,
  LeadershipRenewResponse,
  LeadershipResponse,
  leadershipBodies,
  LeaseResponse,
  ResignResponse,
  RevokeResponse,
  UnpublishResponse,
} from '../schemas.js';

const BASE = '/v1/clusters/:clusterId/leadership';

/** Leadership reads are answered from Redis itself, which is as consistent as a read gets:
 * `?consistent` is accepted, as for leader reads, and changes nothing. */
const ReadQuery = Type.Object({ consistent: BlockingQuery.properties.consistent }, { additionalProperties: false });

/** Job ids name their job manager in lower case, as every answer does. */
function componentOf(name: string): Component {
  return name.startsWith('jobmanager/') ? jobManager(name.slice('jobmanager/'.length)) : name;
}

export function leadershipRoutes(app: App, { ha, config }: RouteContext): void {
  const bodies = leadershipBodies(config);
  const access = new Access(config.tokens);
  const owner = (authorization: string | undefined) => ownerOf(access, authorization);

  app.get(BASE, { schema: { params: ClusterParams, querystring: ReadQuery, response: { 200: LeadershipResponse } } }, async (req) => ({
    leadership: leadershipJson(await ha.leadership.get(req.params.clusterId)),
  }));

  app.post(`${BASE}/campaign`, { schema: { params: ClusterParams, body: bodies.campaign, response: { 200: LeadershipCampaignResponse } } }, async (req) => {
    const { contenderId, ttlMs = config.leaseTtl.defaultMs } = req.body;
    const r = await ha.leadership.campaign(req.params.clusterId, { contenderId, ttlMs, owner: owner(req.headers.authorization) });
    return { granted: r.granted, leadership: leadershipJson(r.leadership)! };
  });

  app.post(`${BASE}/renew`, { schema: { params: ClusterParams, body: bodies.renew, response: { 200: LeadershipRenewResponse } } }, async (req) => {
    const { contenderId, sessionId, ttlMs } = req.body;
    const l = await ha.leadership.renew(req.params.clusterId, contenderId, sessionId, ttlMs, owner(req.headers.authorization));
    return { leadership: leadershipJson(l)! };
  });

  app.post(`${BASE}/resign`, { schema: { params: ClusterParams, body: bodies.resign, response: { 200: ResignResponse } } }, async (req) => {
    const { contenderId, sessionId } = req.body;
    return { released: await ha.leadership.resign(req.params.clusterId, contenderId, sessionId, owner(req.headers.authorization)) };
  });

  app.post(`${BASE}/publish`, { schema: { params: ClusterParams, body: bodies.publish, response: { 200: LeaseResponse } } }, async (req) => {
    const { sessionId, component, address } = req.body;
    const s = await ha.leadership.publish(req.params.clusterId, sessionId, componentOf(component), address, owner(req.headers.authorization));
    return { leader: stateJson(s) };
  });

  app.post(`${BASE}/unpublish`, { schema: { params: ClusterParams, body: bodies.unpublish, response: { 200: UnpublishResponse } } }, async (req) => {
    const { sessionId, component } = req.body;
    return { removed: await ha.leadership.unpublish(req.params.clusterId, sessionId, componentOf(component), owner(req.headers.authorization)) };
  });

  app.post(`${BASE}/revoke`, { schema: { params: ClusterParams, body: bodies.revoke, response: { 200: RevokeResponse } } }, async (req) => ({
    revoked: await ha.leadership.revoke(req.params.clusterId, req.body.sessionId),
  }));
}

/** A per-component campaign refused while a leadership lives names that leadership. */
export async function withLeadershipNamed<T>(ha: RouteContext['ha'], clusterId: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof LeadershipHeldError && err.details.leadership === null) throw await ha.leadership.leadershipHeld(clusterId);
    throw err;
  }
}
