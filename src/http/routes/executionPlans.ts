/** Flink's ExecutionPlanStore over HTTP: plans as application/octet-stream, resource
 * requirements as JSON. */
import { badRequest } from '../errors.js';
import { ClusterParams } from '../schemas.js';
import { JobIdsResponse, JobParams, ListQuery, PlanResponse, RequirementsBody, RequirementsResponse } from '../storeSchemas.js';
import type { App, RouteContext } from '../types.js';
import { shallowBody } from '../depth.js';
import { cursorOf, JOB_ID, pageOf } from '../paging.js';
import { markReplayed, writeOf, WriteHeaders } from '../writes.js';

export function executionPlanRoutes(app: App, { ha, config }: RouteContext): void {
  const limits = { planBytes: config.planMaxBytes, jsonBytes: config.storeBodyMaxBytes };
  const base = '/v1/clusters/:clusterId/execution-plans';

  // Plans are bytes: in this scope only application/octet-stream is taken (else 415).
  app.register(async (scope: App) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: limits.planBytes }, (_req, body, done) =>
      done(null, body),
    );
    scope.put(
      `${base}/:jobId`,
      { schema: { params: JobParams, headers: WriteHeaders, response: { 200: PlanResponse } } },
      async (req, reply) => {
        const plan = req.body as Buffer | undefined;
        if (!plan || plan.length === 0) throw badRequest('the body must hold the execution plan (application/octet-stream)');
        const { fence, idem } = writeOf(req.headers);
        const jobId = req.params.jobId.toLowerCase();
        const r = await ha.executionPlans.put(ha.keys(req.params.clusterId), jobId, plan, fence, idem);
        markReplayed(reply, r.replayed);
        return { jobId, size: plan.length };
      },
    );
  });

  app.get(`${base}/:jobId`, { schema: { params: JobParams } }, async (req, reply) => {
    const plan = await ha.executionPlans.get(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase());
    return reply.type('application/octet-stream').header('content-length', plan.size).send(plan.body);
  });

  app.get(base, { schema: { params: ClusterParams, querystring: ListQuery, response: { 200: JobIdsResponse } } }, async (req) => {
    const page = await ha.executionPlans.jobIds(ha.keys(req.params.clusterId), pageOf(req.query, 'ep', JOB_ID));
    return { jobIds: page.items, ...cursorOf('ep', page.next) };
  });

  app.put(
    `${base}/:jobId/resource-requirements`,
    {
      bodyLimit: limits.jsonBytes,
      preValidation: shallowBody,
      schema: { params: JobParams, headers: WriteHeaders, body: RequirementsBody, response: { 200: RequirementsResponse } },
    },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const jobId = req.params.jobId.toLowerCase();
      const r = await ha.executionPlans.putRequirements(ha.keys(req.params.clusterId), jobId, req.body, fence, idem);
      markReplayed(reply, r.replayed);
      return { jobId, resourceRequirements: req.body };
    },
  );

  app.get(
    `${base}/:jobId/resource-requirements`,
    { schema: { params: JobParams, response: { 200: RequirementsResponse } } },
    async (req) => {
      const jobId = req.params.jobId.toLowerCase();
      const resourceRequirements = (await ha.executionPlans.getRequirements(ha.keys(req.params.clusterId), jobId)) as Record<string, unknown>;
      return { jobId, resourceRequirements };
    },
  );
}
