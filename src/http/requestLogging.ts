/**
 * The server itself (request ids, security headers, TLS) and request logs, kept off the
 * hot path. Fastify runs without a logger of
 * its own: with one, it adds response listeners and timing to every request, about a
 * quarter of what a leader read costs. The app logs with its own pino logger instead.
 */
import { createServer, ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from 'pino';
import type { ConnectionOptions } from '../config.js';
import { checkingIntervalMs, hasBody, limitConnections, timeBody } from './connections.js';
import type { App } from './types.js';

/** What every answer carries (OWASP's list for REST APIs): it is never a page to render,
 * frame or cache. X-Frame-Options is left out: `frame-ancestors` supersedes it in every
 * current browser, and each header costs every answer and every client parsing it. */
const BASE_HEADERS: [string, string][] = [
  ['x-content-type-options', 'nosniff'],
  ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
  ['cache-control', 'no-store'],
];

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[];

/**
 * Every response's writeHead: it adds the request id and the security headers. Fastify
 * writes the head with one plain object of headers, made for that reply; ours join that
 * object, so that Node takes its fast path. Set beforehand by setHeader, they made Node set
 * each of Fastify's headers again, one by one (bench/RESULTS.md has the measurements).
 */
function headWriter(base: [string, string][]) {
  const write = ServerResponse.prototype.writeHead as (this: ServerResponse, statusCode: number, reason?: string | Headers, headers?: Headers) => ServerResponse;
  return function writeHead(this: ServerResponse, statusCode: number, reason?: string | Headers, headers?: Headers): ServerResponse {
    const given = typeof reason === 'object' ? reason : headers;
    const req = this.req;
    const id = req.headers['x-request-id']!;
    // An error answered before the body ended (401, 403, 413, …): the rest of the body is
    // not read but the connection closed, so that a body trickled on holds nothing.
    const close = statusCode >= 400 && !req.complete && hasBody(req);
    if (given && !Array.isArray(given)) {
      given['x-request-id'] = id;
      for (const [name, value] of base) given[name] ??= value;
      if (close) given.connection = 'close';
    } else {
      // A streamed answer (Fastify set its headers one by one), or raw headers in a list.
      this.setHeader('x-request-id', id);
      for (const [name, value] of base) if (!this.hasHeader(name)) this.setHeader(name, value);
      if (close) this.setHeader('connection', 'close');
    }
    return write.call(this, statusCode, reason, headers);
  };
}

/**
 * The HTTP (or, with a certificate, HTTPS) server. It names every request in X-Request-Id
 * (the caller's, or one made here), which Fastify takes as the request's id
 * (requestIdHeader), and gives every response the writeHead above, so that the headers
 * cost no hook. Its connections are capped at `cap` (0: none) and timed (connections.ts).
 */
export function serverFactory(tls: { cert: string; key: string } | null, connections: ConnectionOptions, cap: number) {
  const base: [string, string][] = tls ? [...BASE_HEADERS, ['strict-transport-security', 'max-age=31536000']] : BASE_HEADERS;
  const bodyIdleMs = connections.bodyIdleTimeoutMs;
  return (handler: (req: IncomingMessage, res: ServerResponse) => void): Server => {
    let made = 0;
    const writeHead = headWriter(base);
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      // Node writes every head through res.writeHead, an implicit one too.
      res.writeHead = writeHead as ServerResponse['writeHead'];
      const id = req.headers['x-request-id'];
      if (typeof id !== 'string' || id === '') req.headers['x-request-id'] = `req-${(++made).toString(36)}`;
      if (hasBody(req)) timeBody(req, res, bodyIdleMs);
      handler(req, res);
    };
    const options = { connectionsCheckingInterval: checkingIntervalMs(connections) };
    const server = tls ? createHttpsServer({ ...tls, ...options }, onRequest) : createServer(options, onRequest);
    limitConnections(server, connections, cap);
    return server;
  };
}

/** One log line per request, when it completes, if the log level is info or finer. */
export function logRequests(app: App, log: Logger): void {
  if (!log.isLevelEnabled('info')) return;
  app.addHook('onResponse', (req, reply, done) => {
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    log.info({ reqId: req.id, method: req.method, url: loggedUrl(req.url), statusCode: reply.statusCode, ms }, 'request');
    done();
  });
}

/** A URL as it may be logged: the names of its query's parameters, never their values (a
 * browser's websocket may carry a token in one). */
export function loggedUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const names = url.slice(q + 1).split('&').map((p) => {
    const eq = p.indexOf('=');
    return eq < 0 ? REDACTED : `${p.slice(0, eq)}=${REDACTED}`;
  });
  return `${url.slice(0, q)}?${names.join('&')}`;
}
const REDACTED = '[REDACTED]';
