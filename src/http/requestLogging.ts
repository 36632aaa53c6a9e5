/**
 * The server itself (request ids, security headers, TLS), request logs and request metrics,
 * kept off the hot path. Fastify runs without a logger of
 * its own: with one, it adds response listeners and timing to every request, about a
 * quarter of what a leader read costs. The app logs with its own pino logger instead, and
 * the metrics count each answer when its head is written (no Fastify hook), from what the
 * response carries (`Response`): its start, its route, its cluster and its error code.
 */
import { createServer, ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { ConnectionOptions } from '../config.js';
import type { Metrics, RouteStats } from '../metrics.js';
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

/** Every response of the server: fields set once per request, in the same order, so that
 * each keeps one shape. */
export class Response extends ServerResponse<IncomingMessage> {
  /** performance.now() when the request came. */
  startedAt = 0;
  /** The route that answers it, once matched (null: none, or not yet). */
  route: RouteStats | null = null;
  /** The cluster it names, once its parameters were valid. */
  clusterId: string | undefined = undefined;
  /** The `error` of an error answer (errors.ts), for the log and the metrics. */
  errorCode: string | null = null;
  /** A long-poll is not timed: its wait is the client's, not the server's. */
  timed = true;
}

/**
 * Every response's writeHead: it adds the request id and the security headers. Fastify
 * writes the head with one plain object of headers, made for that reply; ours join that
 * object, so that Node takes its fast path. Set beforehand by setHeader, they made Node set
 * each of Fastify's headers again, one by one (bench/RESULTS.md has the measurements).
 */
function headWriter(base: [string, string][], metrics: Metrics) {
  const write = ServerResponse.prototype.writeHead as (this: ServerResponse, statusCode: number, reason?: string | Headers, headers?: Headers) => ServerResponse;
  return function writeHead(this: Response, statusCode: number, reason?: string | Headers, headers?: Headers): ServerResponse {
    metrics.answered(this.route, this.clusterId, statusCode, this.errorCode, this.timed ? (performance.now() - this.startedAt) / 1000 : null);
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
export function serverFactory(tls: { cert: string; key: string } | null, connections: ConnectionOptions, cap: number, metrics: Metrics) {
  const base: [string, string][] = tls ? [...BASE_HEADERS, ['strict-transport-security', 'max-age=31536000']] : BASE_HEADERS;
  const bodyIdleMs = connections.bodyIdleTimeoutMs;
  return (handler: (req: IncomingMessage, res: ServerResponse) => void): Server => {
    let made = 0;
    const writeHead = headWriter(base, metrics);
    const onRequest = (req: IncomingMessage, res: Response) => {
      res.startedAt = performance.now();
      // Node writes every head through res.writeHead, an implicit one too.
      res.writeHead = writeHead as Response['writeHead'];
      const id = req.headers['x-request-id'];
      if (typeof id !== 'string' || id === '') req.headers['x-request-id'] = `req-${(++made).toString(36)}`;
      if (hasBody(req)) timeBody(req, res, bodyIdleMs);
      handler(req, res);
    };
    const options = { connectionsCheckingInterval: checkingIntervalMs(connections), ServerResponse: Response as typeof ServerResponse };
    const listener = onRequest as (req: IncomingMessage, res: ServerResponse) => void;
    const server = tls ? createHttpsServer({ ...tls, ...options }, listener) : createServer(options, listener);
    limitConnections(server, connections, cap);
    return server;
  };
}

/**
 * One log line per request, when it completes, if the log level is info or finer, with the
 * error code of an error answer; and every route's answers told to the metrics: the
 * route's handler notes its route and cluster on the response first (errors answered
 * before it, in errors.ts).
 */
export function observeRequests(app: App, log: Logger, metrics: Metrics): void {
  app.decorate(METRICS, metrics);
  app.addHook('onRoute', (route) => {
    // A websocket's upgrade never reaches the handler; its plain GET answers through errors.ts.
    if (route.websocket) return;
    const stats = metrics.route([route.method].flat().join(','), route.url);
    const handler = route.handler;
    route.handler = function (this: unknown, req, reply) {
      const res = reply.raw as Response;
      res.route = stats;
      res.clusterId = (req.params as { clusterId?: string }).clusterId;
      return handler.call(this as never, req, reply);
    };
  });
  if (!log.isLevelEnabled('info')) return;
  app.addHook('onResponse', (req, reply, done) => {
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    const code = (reply.raw as Response).errorCode ?? undefined;
    log.info({ reqId: req.id, method: req.method, url: loggedUrl(req.url), statusCode: reply.statusCode, code, ms }, 'request');
    done();
  });
}

/** Where the app keeps its metrics, for errors answered before a route's handler. */
const METRICS = 'leaseholdMetrics';

/** An error answer: its code for the log and the metrics, and its route and cluster when it
 * came before the route's handler (a schema, a token or a body refused). */
export function noteError(reply: FastifyReply, code: string): void {
  const res = reply.raw as Response;
  res.errorCode = code;
  const metrics = (reply.server as unknown as Record<typeof METRICS, Metrics | undefined>)[METRICS];
  const req = reply.request;
  if (res.route !== null || !metrics || req.is404) return;
  res.route = metrics.route(req.method, req.routeOptions.url ?? '');
  res.clusterId = (req.params as { clusterId?: string } | undefined)?.clusterId;
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
