/**
 * The server itself (request ids, security headers, TLS) and request logs, kept off the
 * hot path. Fastify runs without a logger of
 * its own: with one, it adds response listeners and timing to every request, about a
 * quarter of what a leader read costs. The app logs with its own pino logger instead.
 */
import { createServer, ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { App } from './types.js';

/** What every answer carries (OWASP's list for REST APIs): it is never a page to render,
 * frame or cache. */
const BASE_HEADERS: [string, string][] = [
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
  ['cache-control', 'no-store'],
];

/**
 * The HTTP (or, with a certificate, HTTPS) server. It names every request in X-Request-Id
 * (the caller's, or one made here; Fastify takes it from that header, requestIdHeader),
 * and its responses add that id and the security headers as their head is written.
 */
export function serverFactory(tls: { cert: string; key: string } | null) {
  const base: [string, string][] = tls ? [...BASE_HEADERS, ['strict-transport-security', 'max-age=31536000']] : BASE_HEADERS;
  const ServerResponse = responseWith(base);
  return (handler: (req: IncomingMessage, res: ServerResponse) => void, opts: FastifyServerOptions): Server => {
    let made = 0;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const id = req.headers['x-request-id'];
      if (typeof id !== 'string' || id === '') req.headers['x-request-id'] = `req-${(++made).toString(36)}`;
      handler(req, res);
    };
    const server = tls ? createHttpsServer({ ...tls, ServerResponse }, onRequest) : createServer({ ServerResponse }, onRequest);
    // What Fastify sets on a server it makes itself.
    server.keepAliveTimeout = opts.keepAliveTimeout ?? 72_000;
    server.requestTimeout = opts.requestTimeout ?? 0;
    server.setTimeout(opts.connectionTimeout ?? 0);
    return server;
  };
}

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[];

/**
 * A response that adds the request id and `base` to the headers as its head is written,
 * unless the route set them itself. They go into the headers object Fastify passes to
 * writeHead: a setHeader() per header instead (before Fastify, say) would send every
 * header of every answer down Node's slower path, which cost a quarter of a renewal.
 */
function responseWith(base: [string, string][]) {
  return class LeaseholdResponse extends ServerResponse {
    override writeHead(statusCode: number, reason?: string | Headers, headers?: Headers): this {
      const given = typeof reason === 'string' ? headers : reason;
      const id = this.req.headers['x-request-id'] as string;
      if (given && !Array.isArray(given)) {
        given['x-request-id'] ??= id;
        for (const [name, value] of base) given[name] ??= value;
      } else {
        if (!this.hasHeader('x-request-id')) this.setHeader('x-request-id', id);
        for (const [name, value] of base) if (!this.hasHeader(name)) this.setHeader(name, value);
      }
      return super.writeHead(statusCode, reason as string, headers);
    }
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
