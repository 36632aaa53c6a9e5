/**
 * The server itself (request ids, security headers, TLS) and request logs, kept off the
 * hot path. Fastify runs without a logger of
 * its own: with one, it adds response listeners and timing to every request, about a
 * quarter of what a leader read costs. The app logs with its own pino logger instead.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { App } from './types.js';

/** What every answer carries (OWASP's list for REST APIs): it is never a page to render,
 * frame or cache. X-Frame-Options is left out: `frame-ancestors` supersedes it in every
 * current browser, and each header costs every answer and every client parsing it. */
const BASE_HEADERS: [string, string][] = [
  ['x-content-type-options', 'nosniff'],
  ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
  ['cache-control', 'no-store'],
];

/**
 * The HTTP (or, with a certificate, HTTPS) server. It names every request in X-Request-Id
 * (the caller's, or one made here) and sets the security headers on the raw response
 * before Fastify sees it, so that they cost no hook; Fastify takes the id from that header
 * (requestIdHeader).
 */
export function serverFactory(tls: { cert: string; key: string } | null) {
  const base = tls ? [...BASE_HEADERS, ['strict-transport-security', 'max-age=31536000']] : BASE_HEADERS;
  return (handler: (req: IncomingMessage, res: ServerResponse) => void, opts: FastifyServerOptions): Server => {
    let made = 0;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      let id = req.headers['x-request-id'];
      if (typeof id !== 'string' || id === '') {
        id = `req-${(++made).toString(36)}`;
        req.headers['x-request-id'] = id;
      }
      res.setHeader('x-request-id', id);
      for (const [name, value] of base) res.setHeader(name, value);
      handler(req, res);
    };
    const server = tls ? createHttpsServer(tls, onRequest) : createServer(onRequest);
    // What Fastify sets on a server it makes itself.
    server.keepAliveTimeout = opts.keepAliveTimeout ?? 72_000;
    server.requestTimeout = opts.requestTimeout ?? 0;
    server.setTimeout(opts.connectionTimeout ?? 0);
    return server;
  };
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
