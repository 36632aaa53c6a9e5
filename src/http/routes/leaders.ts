/** Leader election (campaign, renew, confirm, resign) and retrieval (GET, long-poll). */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { jobManager, RedisUnavailableError, type ClusterView, type Component } from '../../ha/index.js';
import { componentsText, leaderText, renewedText, stateJson } from '../encode.js';
import type { App, RouteContext } from '../types.js';
import {
  BlockingQuery,
  CampaignResponse,
  ClusterParams,
  ComponentParams,
  electionBodies,
  JobManagerParams,
  LeaseResponse,
  ResignResponse,
} from '../schemas.js';
import { parseDuration } from '../duration.js';
import { badRequest } from '../errors.js';
import type { Response } from '../requestLogging.js';
import { mayForce, ownerOf } from '../auth.js';

const MAX_WAIT_MS = 5 * 60_000;
/** Reads and renewals answer JSON text put together by encode.ts, in the shapes of
 * LeaderResponse, LeadersResponse and LeaseResponse (schemas.ts; the OpenAPI test checks real
 * answers against them). */
const JSON_TYPE = 'application/json; charset=utf-8';

type Params = { clusterId: string; component?: string; jobId?: string };
type Query = Static<typeof BlockingQuery>;

/** If-None-Match holds a list of tags, weak (W/"…") or strong; any equal one matches. */
function matches(header: string | undefined, etag: string): boolean {
  return header !== undefined && header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

function componentOf(p: Params): Component {
  return p.component ?? jobManager(p.jobId!);
}

export function leaderRoutes(app: App, { ha, config, metrics }: RouteContext): void {
  const bodies = electionBodies(config);

  /** Holds a blocking query until the index passes `index`, or `wait` runs out. */
  async function block(view: ClusterView, q: Query, component: Component | null, reply: FastifyReply) {
    const waitMs = q.wait === undefined ? config.longPollDefaultWaitMs : parseDuration(q.wait);
    if (waitMs === null || waitMs > MAX_WAIT_MS) {
      throw badRequest('querystring/wait must be a duration of at most 5m, as 500ms, 30s or 2m');
    }
    if (q.index === undefined) return;
    const gone = new AbortController();
    const onClose = () => gone.abort();
    reply.raw.once('close', onClose);
    // Counted while it waits, and not timed: its wait is the client's, not the server's.
    (reply.raw as Response).timed = false;
    await view.waitForChange(Number(q.index), component, waitMs, gone.signal).finally(metrics.longPoll(view.keys.clusterId));
    reply.raw.off('close', onClose);
    if (!view.live) throw new RedisUnavailableError();
  }

  /** The last ETag made, and the index text it was made of (one cluster's, under load). */
  let tagOf = '';
  let tag = '';

  /** ETag carries the index; a matching If-None-Match answers 304 to a plain read (not to
   * a blocking one, which asked for what follows that index). */
  function notModified(req: FastifyRequest, reply: FastifyReply, view: ClusterView, blocking: boolean): boolean {
    if (view.indexText !== tagOf) {
      tagOf = view.indexText;
      tag = '"' + tagOf + '"';
    }
    reply.header('etag', tag);
    if (!blocking && matches(req.headers['if-none-match'], tag)) {
      reply.code(304).send();
      return true;
    }
    return false;
  }

  /**
   * A read of one component's leader, or of all (`component` null). Reads are the hot path:
   * a plain read of a cluster this server already follows is answered at once, without a
   * promise; long-polls and first reads go the async way.
   */
  function read(req: FastifyRequest, reply: FastifyReply, component: Component | null) {
    const { clusterId } = req.params as { clusterId: string };
    const q = req.query as Query;
    const view = ha.views.ready(clusterId);
    if (view && q.index === undefined && q.wait === undefined && q.consistent === undefined) {
      return send(req, reply, view, component, false);
    }
    return (async () => {
      const v = view ?? (await ha.views.get(clusterId));
      if (q.consistent !== undefined) {
        await v.catchUp();
        if (!v.live) throw new RedisUnavailableError();
      }
      await block(v, q, component, reply);
      return send(req, reply, v, component, q.index !== undefined);
    })();
  }

  function send(req: FastifyRequest, reply: FastifyReply, view: ClusterView, component: Component | null, blocking: boolean) {
    if (notModified(req, reply, view, blocking)) return reply;
    const text =
      component === null
        ? '{"leaders":' + componentsText(view.leaders()) + ',"index":' + view.indexText + '}'
        : leaderText(component, view.leader(component), view.indexText);
    return reply.type(JSON_TYPE).send(text);
  }

  app.get('/v1/clusters/:clusterId/leaders', { schema: { params: ClusterParams, querystring: BlockingQuery } }, (req, reply) =>
    read(req, reply, null),
  );

  for (const [base, params] of [
    ['/v1/clusters/:clusterId/leaders/:component', ComponentParams],
    ['/v1/clusters/:clusterId/leaders/jobmanager/:jobId', JobManagerParams],
  ] as const) {
    app.get(base, { schema: { params, querystring: BlockingQuery } }, (req, reply) => read(req, reply, componentOf(req.params)));

    app.post(`${base}/campaign`, { schema: { params, body: bodies.campaign, response: { 200: CampaignResponse } } }, async (req) => {
      const { contenderId, ttlMs = config.leaseTtl.defaultMs, address, lockDelayMs } = req.body;
      const r = await ha.election.campaign(req.params.clusterId, componentOf(req.params), {
        contenderId,
        ttlMs,
        address,
        lockDelayMs,
        owner: ownerOf(req),
      });
      return { granted: r.granted, leader: stateJson(r.leader) };
    });

    // Renewals are the hottest write: answered as text, like reads, and sent from the
    // renewal's own continuation (an async handler would add a promise and a turn).
    app.post(`${base}/renew`, { schema: { params, body: bodies.renew } }, (req, reply) => {
      const { contenderId, sessionId, ttlMs } = req.body;
      ha.election.renew(req.params.clusterId, componentOf(req.params), contenderId, sessionId, ttlMs, config.leaseTtl.defaultMs, ownerOf(req)).then(
        (s) => reply.type(JSON_TYPE).send(renewedText(s)),
        (err: unknown) => reply.send(err),
      );
    });

    app.post(`${base}/confirm`, { schema: { params, body: bodies.confirm, response: { 200: LeaseResponse } } }, async (req) => {
      const { contenderId, sessionId, address } = req.body;
      const s = await ha.election.confirm(req.params.clusterId, componentOf(req.params), contenderId, sessionId, address, ownerOf(req));
      return { leader: stateJson(s) };
    });

    app.post(`${base}/resign`, { schema: { params, body: bodies.resign, response: { 200: ResignResponse } } }, async (req) => {
      const { contenderId, sessionId } = req.body;
      const released = await ha.election.resign(req.params.clusterId, componentOf(req.params), contenderId, sessionId, {
        owner: ownerOf(req),
        force: mayForce(req),
      });
      return { released };
    });
  }
}
