/**
 * Protection against overload and floods: load shedding (the event loop sampled here) and
 * rate limits per client (@fastify/rate-limit). Neither ever touches an election (campaign,
 * renew, confirm, resign): a renewal that fails costs a failover, a read that fails costs
 * a retry, so reads and store writes go first.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { routeRole } from './auth.js';
import { httpError } from './errors.js';
import type { ProtectionOptions } from '../config.js';
import type { App } from './types.js';

const SAMPLE_INTERVAL_MS = 1000;
const SAMPLE_RESOLUTION_MS = 10;

/**
 * The event loop's mean delay and utilisation over the last second. @fastify/under-pressure
 * did this, but it samples memory too, which opens a file: with every file in use (a flood
 * of connections) that threw out of its timer and ended the process, and its sampling
 * stopped for good. Nothing here opens a file or can throw.
 */
class LoadSampler {
  /** ms of mean delay beyond the histogram's resolution, and the busy share (0–1). */
  delayMs = 0;
  utilization = 0;
  private readonly histogram = monitorEventLoopDelay({ resolution: SAMPLE_RESOLUTION_MS });
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.histogram.enable();
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  private sample(): void {
    const mean = this.histogram.mean / 1e6 - SAMPLE_RESOLUTION_MS;
    this.delayMs = Number.isNaN(mean) ? Infinity : Math.max(0, mean);
    this.histogram.reset();
    const now = performance.eventLoopUtilization();
    this.utilization = performance.eventLoopUtilization(now, this.elu).utilization;
    this.elu = now;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}

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
    // Imported only when the limit is on (it is off by default), as the idle server's heap
    // holds whatever it imports.
    const { default: rateLimit } = await import('@fastify/rate-limit');
    await app.register(rateLimit, {
      global: true,
      max: options.rateLimitMax,
      timeWindow: options.rateLimitWindowMs,
      // The token's name, once checked (the access check runs first): never the raw header,
      // which a caller may spell in many ways, or make up when the API is open.
      keyGenerator: (req: FastifyRequest) => (req.grant ? `grant:${req.grant}` : `ip:${req.ip}`),
      errorResponseBuilder: (_req, ctx) =>
        httpError(429, `rate limit of ${ctx.max} requests per ${ctx.after} exceeded; retry later`, 'TooManyRequests'),
    });
  }
  const { shedEventLoopDelayMs: delay, shedEventLoopUtilization: utilization } = options;
  if (delay > 0 || utilization > 0) {
    const load = new LoadSampler();
    app.addHook('onClose', async () => load.stop());
    const overloaded = (): Error | undefined => {
      const over = delay > 0 && load.delayMs > delay ? 'eventLoopDelay' : utilization > 0 && load.utilization > utilization ? 'eventLoopUtilization' : null;
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
