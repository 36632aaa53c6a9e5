/** Flink's JobResultStore over HTTP: createDirtyResult, markResultAsClean, lookups. */
import type { JobResult } from '../../ha/index.js';
import { ClusterParams } from '../schemas.js';
import { JobParams, JobResultBody, JobResultEntry, JobResultsQuery, JobResultsResponse } from '../storeSchemas.js';
import type { App, RouteContext } from '../types.js';
import { shallowBody } from '../depth.js';
import { cursorOf, JOB_ID, pageOf } from '../paging.js';
import { markReplayed, writeOf, WriteHeaders } from '../writes.js';

const iso = (ms: number) => new Date(ms).toISOString();

function entryJson(e: JobResult) {
  return { ...e, createdAt: iso(e.createdAt), cleanedAt: e.cleanedAt === null ? null : iso(e.cleanedAt) };
}

export function jobResultRoutes(app: App, { ha, config }: RouteContext): void {
  const bodyLimit = config.storeBodyMaxBytes;
  const base = '/v1/clusters/:clusterId/job-results';

  app.put(
    `${base}/:jobId`,
    {
      bodyLimit,
      preValidation: shallowBody,
      schema: { params: JobParams, headers: WriteHeaders, body: JobResultBody, response: { 201: JobResultEntry } },
    },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const r = await ha.jobResults.createDirty(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase(), req.body, fence, idem);
      markReplayed(reply, r.replayed);
      return reply.code(201).send(entryJson(r.entry));
    },
  );

  app.post(
    `${base}/:jobId/clean`,
    { schema: { params: JobParams, headers: WriteHeaders, response: { 200: JobResultEntry } } },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const r = await ha.jobResults.markClean(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase(), fence, idem);
      markReplayed(reply, r.replayed);
      return entryJson(r.entry);
    },
  );

  app.get(`${base}/:jobId`, { schema: { params: JobParams, response: { 200: JobResultEntry } } }, async (req) =>
    entryJson(await ha.jobResults.get(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase())),
  );

  app.get(base, { schema: { params: ClusterParams, querystring: JobResultsQuery, response: { 200: JobResultsResponse } } }, async (req) => {
    const page = await ha.jobResults.list(ha.keys(req.params.clusterId), req.query.state, pageOf(req.query, 'jr', JOB_ID));
    return { jobResults: page.items.map(entryJson), ...cursorOf('jr', page.next) };
  });
}
