/**
 * Request ids and request logs, kept off the hot path. Fastify runs without a logger of
 * its own: with one, it adds response listeners and timing to every request, about a
 * quarter of what a leader read costs. The app logs with its own pino logger instead.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { App } from './types.js';

/**
 * The HTTP server, which names every request in X-Request-Id (the caller's, or one made
 * here) on the raw response before Fastify sees it, so that it costs no hook; Fastify takes
 * the id from that header (requestIdHeader).
 */
export function serverWithRequestIds(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  opts: FastifyServerOptions,
): Server {
  let made = 0;
  const server = createServer((req, res) => {
    let id = req.headers['x-request-id'];
    if (typeof id !== 'string' || id === '') {
      id = `req-${(++made).toString(36)}`;
      req.headers['x-request-id'] = id;
    }
    res.setHeader('x-request-id', id);
    handler(req, res);
  });
  // What Fastify sets on a server it makes itself.
  server.keepAliveTimeout = opts.keepAliveTimeout ?? 72_000;
  server.requestTimeout = opts.requestTimeout ?? 0;
  server.setTimeout(opts.connectionTimeout ?? 0);
  return server;
}

/** One log line per request, when it completes, if the log level is info or finer. */
export function logRequests(app: App, log: Logger): void {
  if (!log.isLevelEnabled('info')) return;
  app.addHook('onResponse', (req, reply, done) => {
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    log.info({ reqId: req.id, method: req.method, url: req.url, statusCode: reply.statusCode, ms }, 'request');
    done();
  });
}
