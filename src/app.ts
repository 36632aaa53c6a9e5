/**
 * The leasehold app as a Fastify instance that never listens by itself (server.ts does),
 * so that tests can `inject()` into it.
 */
import { join } from 'node:path';
import Fastify, { type FastifySchema, type onRequestHookHandler } from 'fastify';
import pino, { type DestinationStream, type Logger } from 'pino';
import { observeRequests, serverFactory } from './http/requestLogging.js';
import { protect } from './http/protection.js';
import { limitHeavyReads } from './http/heavyReads.js';
import { connectionCap, fileLimit } from './http/connections.js';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { RedisConfig } from './ha/index.js';
import type { Config } from './config.js';
import { HaServices } from './ha/index.js';
import { errorHandler, formatValidationError, sendError } from './http/errors.js';
import { leaderRoutes } from './http/routes/leaders.js';
import { leadershipRoutes } from './http/routes/leadership.js';
import { opsRoutes } from './http/routes/ops.js';
import { watchRoutes } from './http/routes/watch.js';
import { renewalRoutes } from './http/routes/renewals.js';
import { WatcherSockets } from './http/watcherSockets.js';
import { jobResultRoutes } from './http/routes/jobResults.js';
import { executionPlanRoutes } from './http/routes/executionPlans.js';
import { checkpointRoutes } from './http/routes/checkpoints.js';
import { blobRoutes } from './http/routes/blobs.js';
import { cleanupRoutes } from './http/routes/cleanup.js';
import { clusterRoutes } from './http/routes/clusters.js';
import { historyRoutes } from './http/routes/history.js';
import { uiRoutes } from './http/routes/ui.js';
import { Access, authorizationOf, pickProtocol, routeRole } from './http/auth.js';
import type { App, RouteContext } from './http/types.js';
import { Metrics } from './metrics.js';
import { reportLeadershipEvents } from './telemetry.js';

export interface AppOptions {
  config: Config;
  /** Overrides config.redis: a URL, or ioredis options (the local server's socket). */
  redis?: string | RedisConfig;
  /** A logger, false for none, or options of one (default: the configured level). */
  logger?: Logger | false | { level?: string; stream?: DestinationStream };
  /** Told of every route registered, with its schemas (openapi.yaml is generated from them). */
  onRoute?: (route: { method: string | string[]; url: string; websocket: boolean; schema?: FastifySchema }) => void;
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const { config } = opts;
  const redis = opts.redis ?? config.redis;
  if (!redis) throw new Error('buildApp needs a Redis: config.redis or opts.redis');

  const log = loggerOf(opts.logger, config.logLevel);
  const onError = errorHandler(log);
  const files = fileLimit();
  const cap = connectionCap(config.connections.maxConnections, files);
  log.info({ maxConnections: cap || null, fileLimit: files }, 'connection cap');
  const metrics = new Metrics(config.metricsClusterLabelsMax);
  const app = Fastify({
    logger: false,
    serverFactory: serverFactory(config.tls, config.connections, cap, metrics),
    schemaErrorFormatter: formatValidationError,
    requestIdHeader: 'x-request-id',
    bodyLimit: 64 * 1024,
    // Blob keys may have 200 characters; a longer parameter is a 400 from its schema.
    routerOptions: { maxParamLength: 1024 },
    // Errors of the router itself (a malformed URL, an overlong parameter) answer as ours do.
    frameworkErrors: onError,
    // Every pattern is ASCII, so Unicode-aware regular expressions (ajv's default, and
    // much slower in V8) would match the same strings at a twentieth of a read's cost.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, unicodeRegExp: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const ha = new HaServices({
    redis,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    healthIntervalMs: config.redisHealthIntervalMs,
    replicaAck: config.redisReplicaAck,
    changeLogSize: config.changeLogSize,
    history: config.history,
    viewIdleMs: 5 * 60_000,
    maxViews: config.viewsMax,
    idempotencyTtlMs: config.idempotencyTtlMs,
    quotas: config.quotas,
    logger: log,
    onChange: metrics.onChange,
    floorsFile: join(config.dataDir, 'floors.json'),
  });
  const sockets = new WatcherSockets(config.wsHeartbeatMs);
  metrics.bind(ha);
  reportLeadershipEvents(ha.events, log, metrics);
  const access = new Access(config.tokens);
  const context: RouteContext = { ha, config, metrics, sockets, log, access };

  if (opts.onRoute) {
    const onRoute = opts.onRoute;
    app.addHook('onRoute', (r) => onRoute({ method: r.method, url: r.url, websocket: Boolean(r.websocket), schema: r.schema }));
  }
  // Bodies are JSON; any other type is a 415 rather than a schema error.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(onError);
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'NotFound', `no route ${req.method} ${req.url.split('?')[0]}`));
  // Every cluster route checks its caller's role before the body is read; an unfenced
  // write is an admin's deliberate act (docs/design.md §5). With no tokens (open) there is no hook,
  // so that reads, the hot path, run none.
  if (!access.open) {
    // The caller's token, by name, for the rate limits (protection.ts) and as the owner of
    // the leases and leaderships it campaigns for (auth.ts, ownerOf).
    app.decorateRequest('grant', null);
    app.decorateRequest('grantAdmin', false);
    app.addHook('onRoute', (route) => {
      const role = routeRole([route.method].flat()[0], route.url);
      if (!role) return;
      // The listing of clusters names none: it shows each caller those it may touch.
      const inCluster = route.url.startsWith('/v1/clusters/');
      const check: onRequestHookHandler = (req, _reply, done) => {
        try {
          const override = role === 'write' && req.headers['x-fencing-token'] === 'override';
          const authorization = authorizationOf(req.headers);
          const caller = inCluster
            ? access.check(authorization, override ? 'admin' : role, (req.params as { clusterId?: string }).clusterId)
            : access.caller(authorization, role);
          req.grant = caller && caller.name;
          req.grantAdmin = caller?.admin ?? false;
          done();
        } catch (err) {
          done(err as Error);
        }
      };
      route.onRequest = [...[route.onRequest ?? []].flat(), check];
    });
  }
  observeRequests(app, log, metrics);
  await protect(app, config.protection);
  limitHeavyReads(app, config.protection);
  app.addHook('preClose', async () => ha.views.drain());
  app.addHook('onClose', async () => ha.close());

  // The websocket plugin's hooks run for every request of its scope: keep them to the
  // watch and the renewal stream.
  await app.register(async (scope: App) => {
    await scope.register(websocket, {
      options: { maxPayload: 4096, handleProtocols: pickProtocol },
      preClose: async () => sockets.closeAll(),
    });
    watchRoutes(scope, context);
    renewalRoutes(scope, context);
  });
  for (const routes of [opsRoutes, leaderRoutes, leadershipRoutes, jobResultRoutes, executionPlanRoutes, checkpointRoutes, blobRoutes, cleanupRoutes, clusterRoutes, historyRoutes, uiRoutes]) {
    routes(app, context);
  }
  return app;
}

/** The app's logger; Fastify has none of its own (see http/requestLogging.ts). */
function loggerOf(given: AppOptions['logger'], level: string): Logger {
  if (given === false) return pino({ enabled: false });
  if (given && 'child' in given) return given;
  return pino({ level: given?.level ?? level }, given?.stream);
}
