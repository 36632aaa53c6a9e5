/** Flink's CompletedCheckpointStore and CheckpointIDCounter of a job over HTTP. */
import {
  Checkpoint,
  CheckpointAdded,
  CheckpointBody,
  CheckpointsResponse,
  CheckpointsShutdown,
  CounterBody,
  CounterResponse,
  CounterShutdown,
  JobParams,
  ListQuery,
  ShutdownBody,
} from '../storeSchemas.js';
import { CHECKPOINT_ID, cursorOf, pageOf } from '../paging.js';
import type { App, RouteContext } from '../types.js';
import { markReplayed, writeOf, WriteHeaders } from '../writes.js';

export function checkpointRoutes(app: App, { ha, config }: RouteContext): void {
  const base = '/v1/clusters/:clusterId/jobs/:jobId/checkpoints';
  const counter = '/v1/clusters/:clusterId/jobs/:jobId/checkpoint-id-counter';
  const bodyLimit = config.storeBodyMaxBytes;
  const retained = config.checkpointsMaxRetained;

  app.post(
    base,
    { bodyLimit, schema: { params: JobParams, headers: WriteHeaders, body: CheckpointBody, response: { 200: CheckpointAdded } } },
    async (req, reply) => {
      const { maxRetained = retained.byCluster.get(req.params.clusterId) ?? retained.default, subsume, ...checkpoint } = req.body;
      const { fence, idem } = writeOf(req.headers);
      const keys = ha.keys(req.params.clusterId);
      const r = await ha.checkpoints.add(keys, req.params.jobId.toLowerCase(), checkpoint, maxRetained, fence, idem, subsume);
      markReplayed(reply, r.replayed);
      return { checkpointId: checkpoint.checkpointId, subsumed: r.subsumed };
    },
  );

  app.get(base, { schema: { params: JobParams, querystring: ListQuery, response: { 200: CheckpointsResponse } } }, async (req) => {
    const page = await ha.checkpoints.all(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase(), pageOf(req.query, 'cp', CHECKPOINT_ID));
    return { checkpoints: page.items, ...cursorOf('cp', page.next) };
  });

  app.get(`${base}/latest`, { schema: { params: JobParams, response: { 200: Checkpoint } } }, async (req) =>
    ha.checkpoints.latest(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase()),
  );

  app.post(
    `${base}/shutdown`,
    { schema: { params: JobParams, headers: WriteHeaders, body: ShutdownBody, response: { 200: CheckpointsShutdown } } },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const { jobStatus } = req.body;
      const r = await ha.checkpoints.shutdown(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase(), jobStatus, fence, idem);
      markReplayed(reply, r.replayed);
      return { jobStatus, discarded: r.discarded };
    },
  );

  app.post(
    `${counter}/increment`,
    { schema: { params: JobParams, headers: WriteHeaders, response: { 200: CounterResponse } } },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const r = await ha.checkpoints.getAndIncrement(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase(), fence, idem);
      markReplayed(reply, r.replayed);
      return { value: r.value };
    },
  );

  app.get(counter, { schema: { params: JobParams, response: { 200: CounterResponse } } }, async (req) => ({
    value: await ha.checkpoints.getCount(ha.keys(req.params.clusterId), req.params.jobId.toLowerCase()),
  }));

  app.put(
    counter,
    { schema: { params: JobParams, headers: WriteHeaders, body: CounterBody, response: { 200: CounterResponse } } },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const keys = ha.keys(req.params.clusterId);
      const r = await ha.checkpoints.setCount(keys, req.params.jobId.toLowerCase(), req.body.value, fence, idem);
      markReplayed(reply, r.replayed);
      return { value: r.value };
    },
  );

  app.post(
    `${counter}/shutdown`,
    { schema: { params: JobParams, headers: WriteHeaders, body: ShutdownBody, response: { 200: CounterShutdown } } },
    async (req, reply) => {
      const { fence, idem } = writeOf(req.headers);
      const { jobStatus } = req.body;
      const keys = ha.keys(req.params.clusterId);
      const r = await ha.checkpoints.shutdownCounter(keys, req.params.jobId.toLowerCase(), jobStatus, fence, idem);
      markReplayed(reply, r.replayed);
      return { jobStatus, removed: r.removed };
    },
  );
}
