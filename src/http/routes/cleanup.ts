/** Global cleanup of a job, and cleanupAllData of a cluster (docs/design.md §6; admin only, see
 * http/auth.ts). */
import { ClusterParams } from '../schemas.js';
import { ClusterCleanupResponse, JobCleanupResponse, JobParams } from '../storeSchemas.js';
import type { App, RouteContext } from '../types.js';
import { writeOf, WriteHeaders } from '../writes.js';
import { sendError } from '../errors.js';

export function cleanupRoutes(app: App, { ha }: RouteContext): void {
  app.delete(
    '/v1/clusters/:clusterId/jobs/:jobId',
    { schema: { params: JobParams, headers: WriteHeaders, response: { 200: JobCleanupResponse } } },
    async (req, reply) => {
      const report = await ha.cleanup.job(req.params.clusterId, req.params.jobId.toLowerCase(), writeOf(req.headers).fence);
      const body = { jobId: report.jobId, parts: report.parts };
      // A part that failed: the same report, as a 503 that says to try again.
      if (report.failed) return sendError(reply, 503, 'CleanupIncomplete', 'a part of the cleanup failed; try again', body);
      return body;
    },
  );

  app.delete(
    '/v1/clusters/:clusterId',
    { schema: { params: ClusterParams, response: { 200: ClusterCleanupResponse } } },
    async (req) => ha.cleanup.cluster(req.params.clusterId),
  );
}
