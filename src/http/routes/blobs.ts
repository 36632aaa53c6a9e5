/** Flink's BlobStore over HTTP: bodies stream through in chunks, never whole in memory. */
import type { IncomingMessage } from 'node:http';
import { Type } from 'typebox';
import { BLOB_POSITION, HaError } from '../../ha/index.js';
import { cursorOf, pageOf } from '../paging.js';
import { BlobDeleted, BlobHeaders, BlobJobParams, BlobParams, BlobsDeleted, BlobsResponse, BlobStored, ListQuery } from '../storeSchemas.js';
import type { App, RouteContext } from '../types.js';
import { markReplayed, writeOf, WriteHeaders } from '../writes.js';

const PutHeaders = Type.Object({ ...WriteHeaders.properties, ...BlobHeaders.properties });

export function blobRoutes(app: App, { ha, config }: RouteContext): void {
  const maxBytes = config.blobMaxBytes;
  const base = '/v1/clusters/:clusterId/blobs/:jobId';
  const jobOf = (jobId: string) => jobId.toLowerCase();

  // In this scope a body is application/octet-stream only (else 415), handed over unread.
  app.register(async (scope: App) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scope.put(
      `${base}/:blobKey`,
      {
        schema: {
          params: BlobParams,
          headers: PutHeaders,
          response: { 201: BlobStored },
        },
      },
      async (req, reply) => {
        const body = req.body as IncomingMessage;
        const { fence, idem } = writeOf(req.headers);
        // A body the client would send whole is refused at once, and the connection closed
        // so that it need not be read.
        reply.header('connection', 'close');
        if (Number(req.headers['content-length'] ?? 0) > maxBytes) {
          throw new HaError('PayloadTooLarge', `a blob may have at most ${maxBytes} bytes`);
        }
        const jobId = jobOf(req.params.jobId);
        const r = await ha.blobs.put(ha.keys(req.params.clusterId), jobId, req.params.blobKey, body, {
          fence,
          idempotencyKey: idem,
          maxBytes,
          expectedSha256: req.headers['x-content-sha256'],
        });
        reply.removeHeader('connection');
        markReplayed(reply, r.replayed);
        return reply.code(201).send({ jobId, blobKey: req.params.blobKey, size: r.size, sha256: r.sha256 });
      },
    );
  });

  app.get(`${base}/:blobKey`, { schema: { params: BlobParams } }, async (req, reply) => {
    const { meta, body } = await ha.blobs.get(ha.keys(req.params.clusterId), jobOf(req.params.jobId), req.params.blobKey);
    return reply
      .type('application/octet-stream')
      .header('content-length', meta.size)
      .header('x-content-sha256', meta.sha256)
      .send(body);
  });

  app.get(base, { schema: { params: BlobJobParams, querystring: ListQuery, response: { 200: BlobsResponse } } }, async (req) => {
    const jobId = jobOf(req.params.jobId);
    const page = await ha.blobs.list(ha.keys(req.params.clusterId), jobId, pageOf(req.query, 'bl', BLOB_POSITION));
    const blobs = page.items.map((b) => ({ ...b, createdAt: new Date(b.createdAt).toISOString() }));
    return { jobId, blobs, ...cursorOf('bl', page.next) };
  });

  app.delete(
    `${base}/:blobKey`,
    { schema: { params: BlobParams, headers: WriteHeaders, response: { 200: BlobDeleted } } },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const keys = ha.keys(req.params.clusterId);
      const r = await ha.blobs.delete(keys, jobOf(req.params.jobId), req.params.blobKey, fence, idem);
      markReplayed(reply, r.replayed);
      return { deleted: r.deleted };
    },
  );

  app.delete(
    base,
    { schema: { params: BlobJobParams, headers: WriteHeaders, response: { 200: BlobsDeleted } } },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const r = await ha.blobs.deleteAll(ha.keys(req.params.clusterId), jobOf(req.params.jobId), fence, idem);
      markReplayed(reply, r.replayed);
      return { deleted: r.deleted };
    },
  );
}
