/** Probes, metrics and the API description. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { App, RouteContext } from '../types.js';

const OPENAPI = readFileSync(fileURLToPath(new URL('../../../openapi.yaml', import.meta.url)), 'utf8');

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
    reply.type('application/yaml');
    return OPENAPI;
  });
}
