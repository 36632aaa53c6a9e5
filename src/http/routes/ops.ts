/** Probes, metrics and the API description. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { App, RouteContext } from '../types.js';

/** The API description (150 KiB), read when first asked for rather than held by every idle
 * server from its start. */
let openapi: Promise<string> | undefined;
const openapiText = () => (openapi ??= readFile(fileURLToPath(new URL('../../../openapi.yaml', import.meta.url)), 'utf8'));

export function opsRoutes(app: App, { ha, metrics }: RouteContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const h = ha.health();
    // On a Redis Cluster a shard down is down for every server alike: a server still serves
    // the clusters of the other shards, so it stays ready.
    const up = h.redis === 'up' || (h.shards?.some((s) => s.redis === 'up') ?? false);
    const ready = up && h.problems.length === 0;
    if (!ready) reply.code(503).header('retry-after', '1');
    return { status: ready ? 'ready' : 'unavailable', ...h };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/openapi.yaml', async (_req, reply) => {
    const text = await openapiText();
    reply.type('application/yaml');
    return text;
  });
}
