/** A cluster's leadership (docs/api.md, "The leadership"): campaign, renew, resign,
 * publish and unpublish a component's leader information, an admin's revoke, and GET. */
import { Type } from 'typebox';
import { mayForce, ownerOf } from '../auth.js';
import { stateJson } from '../encode.js';
import type { App, RouteContext } from '../types.js';
import { BlockingQuery, ClusterParams, LeaseResponse, ResignResponse } from '../schemas.js';
import {
  LeadershipCampaignResponse,
  leadershipBodies,
  LeadershipRenewResponse,
  LeadershipResponse,
  RevokeResponse,
  UnpublishResponse,
} from '../leadershipSchemas.js';

const BASE = '/v1/clusters/:clusterId/leadership';

/** A component as the HA core names it: job ids in lower case. */
function component(name: string): string {
  return name.toLowerCase();
}

export function leadershipRoutes(app: App, { ha, config }: RouteContext): void {
  const bodies = leadershipBodies(config);
  // `?consistent` as leader reads take it; a leadership is read from Redis in any case.
  const ReadQuery = Type.Object({ consistent: BlockingQuery.properties.consistent }, { additionalProperties: false });

  app.get(BASE, { schema: { params: ClusterParams, querystring: ReadQuery, response: { 200: LeadershipResponse } } }, async (req) => ({
    leadership: await ha.leadership.get(req.params.clusterId),
  }));

  app.post(`${BASE}/campaign`, { schema: { params: ClusterParams, body: bodies.campaign, response: { 200: LeadershipCampaignResponse } } }, async (req) => {
    const { contenderId, ttlMs = config.leaseTtl.defaultMs } = req.body;
    return ha.leadership.campaign(req.params.clusterId, { contenderId, ttlMs, owner: ownerOf(req) });
  });

  app.post(`${BASE}/renew`, { schema: { params: ClusterParams, body: bodies.renew, response: { 200: LeadershipRenewResponse } } }, async (req) => {
    const { contenderId, sessionId, ttlMs } = req.body;
    const leadership = await ha.leadership.renew(req.params.clusterId, {
      contenderId,
      sessionId,
      ttlMs,
      fallbackTtlMs: config.leaseTtl.defaultMs,
      owner: ownerOf(req),
    });
    return { leadership };
  });

  app.post(`${BASE}/resign`, { schema: { params: ClusterParams, body: bodies.resign, response: { 200: ResignResponse } } }, async (req) => {
    const { contenderId, sessionId } = req.body;
    return { released: await ha.leadership.resign(req.params.clusterId, { contenderId, sessionId, owner: ownerOf(req), force: mayForce(req) }) };
  });

  app.post(`${BASE}/publish`, { schema: { params: ClusterParams, body: bodies.publish, response: { 200: LeaseResponse } } }, async (req) => {
    const { sessionId, address } = req.body;
    const s = await ha.leadership.publish(req.params.clusterId, {
      sessionId,
      component: component(req.body.component),
      address,
      owner: ownerOf(req),
    });
    return { leader: stateJson(s) };
  });

  app.post(`${BASE}/unpublish`, { schema: { params: ClusterParams, body: bodies.unpublish, response: { 200: UnpublishResponse } } }, async (req) => {
    const { sessionId } = req.body;
    const removed = await ha.leadership.unpublish(req.params.clusterId, {
      sessionId,
      component: component(req.body.component),
      owner: ownerOf(req),
    });
    return { removed };
  });

  app.post(`${BASE}/revoke`, { schema: { params: ClusterParams, body: bodies.revoke, response: { 200: RevokeResponse } } }, async (req) => ({
    revoked: await ha.leadership.revoke(req.params.clusterId, req.body.sessionId),
  }));
}
