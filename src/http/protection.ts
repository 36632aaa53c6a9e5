/**
 * Protection against overload and floods: load shedding (the event loop sampled by
 * @fastify/under-pressure) and rate limits per client (@fastify/rate-limit). Neither ever touches an election (campaign,
 * renew, confirm, resign): a renewal that fails costs a failover, a read that fails costs
 * a retry, so reads and store writes go first.
 */
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { routeRole } from './auth.js';
import { httpError } from './errors.js';
import type { ProtectionOptions } from '../config.js';
import type { App } from './types.js';


/** Routes that are never shed nor limited: elections, and probes outside any cluster. */
function exempt(method: string, url: string): boolean {
  const role = routeRole(method, url);
  return role === null || role === 'contend';
}

export async function protect(app: App, options: ProtectionOptions): Promise<void> {
  if (options.rateLimitMax > 0) {
    // One budget per client across routes, but none on exempt routes; this hook runs
    // before the plugin's own.
    app.addHook('onRoute', (route) => {
      if (exempt([route.method].flat()[0], route.url)) route.config = { ...route.config, rateLimit: false };
    });
    await app.register(rateLimit, {
      global: true,
      max: options.rateLimitMax,
      timeWindow: options.rateLimitWindowMs,
      keyGenerator: (req: FastifyRequest) => req.headers.authorization ?? req.ip,
      errorResponseBuilder: (_req, ctx) =>
        httpError(429, `rate limit of ${ctx.max} requests per ${ctx.after} exceeded; retry later`, 'TooManyRequests'),
    });
  }
  const { shedEventLoopDelayMs: delay, shedEventLoopUtilization: utilization } = options;
  if (delay > 0 || utilization > 0) {
    // under-pressure samples the event loop; with no thresholds of its own it adds no hook.
    // Utilisation per sample interval (1 s), not since the start.
    await app.register(underPressure, { eventLoopUtilizationMode: 'interval' });
    const overloaded = (): Error | undefined => {
      const m = app.memoryUsage();
      const over = delay > 0 && m.eventLoopDelay > delay ? 'eventLoopDelay' : utilization > 0 && m.eventLoopUtilized > utilization ? 'eventLoopUtilization' : null;
      return over ? httpError(503, `the server is overloaded (${over}); retry shortly`, 'Overloaded') : undefined;
    };
    // Routes that may be shed check first thing in their handler, which spares every read
    // Fastify's hook runner (bench/RESULTS.md). A websocket is checked in a hook, before it
    // upgrades.
    app.addHook('onRoute', (route) => {
      if (exempt([route.method].flat()[0], route.url)) return;
      if (route.websocket || route.wsHandler) {
        const shed: onRequestHookHandler = (_req, _reply, done) => done(overloaded());
        route.onRequest = [...[route.onRequest ?? []].flat(), shed];
        return;
      }
      const handler = route.handler;
      route.handler = function (this: FastifyInstance, req, reply) {
        const err = overloaded();
        if (err) throw err;
        return handler.call(this, req, reply);
      };
    });
  }
}
