/**
 * Heavy reads (store lists, execution plans, blobs: anything under a cluster's stores) are
 * limited in concurrency per client, its token's name, else its address: a tenant that
 * floods them waits for its own slots, and beyond a bounded wait is answered `429` with
 * `Retry-After`. So one tenant cannot fill Redis's output buffers and this server's memory
 * with forty copies of a 32 MiB plan while other clusters' renewals wait (docs/design.md
 * §8). Elections, leader reads and the watch are never limited here: a hook on the store
 * routes only, added as they are registered, so that their handlers stay as they are.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { httpError } from './errors.js';
import type { App } from './types.js';

/** The store routes, by their pattern; GET and HEAD of these are heavy reads. */
const STORE_ROUTE = /^\/v1\/clusters\/:clusterId\/(job-results|execution-plans|blobs|jobs)(\/|$)/;

export function isHeavyRead(method: string, url: string): boolean {
  return (method === 'GET' || method === 'HEAD') && STORE_ROUTE.test(url);
}

interface Tenant {
  running: number;
  /** Reads waiting for a slot, first come first served. */
  waiting: Array<(granted: boolean) => void>;
}

/** Counting slots per key; a key without reads running or waiting is forgotten. */
export class ClientSlots {
  private readonly tenants = new Map<string, Tenant>();

  constructor(
    private readonly perClient: number,
    private readonly waitMs: number,
  ) {}

  /** Calls `then(true)` once a slot is this caller's (at once when one is free), or
   * `then(false)` when none came free within the wait. */
  take(key: string, then: (granted: boolean) => void): void {
    let t = this.tenants.get(key);
    if (!t) this.tenants.set(key, (t = { running: 0, waiting: [] }));
    if (t.running < this.perClient) {
      t.running++;
      then(true);
      return;
    }
    if (this.waitMs === 0) return this.refuse(key, t, then);
    const timer = setTimeout(() => {
      const i = t.waiting.indexOf(grant);
      if (i >= 0) t.waiting.splice(i, 1);
      this.refuse(key, t, then);
    }, this.waitMs);
    const grant = (granted: boolean) => {
      clearTimeout(timer);
      then(granted);
    };
    t.waiting.push(grant);
  }

  /** Gives a slot back: to the next waiting read, if any. */
  release(key: string): void {
    const t = this.tenants.get(key);
    if (!t) return;
    const next = t.waiting.shift();
    if (next) return next(true); // the slot passes on: running stays
    t.running--;
    if (t.running === 0) this.tenants.delete(key);
  }

  /** Reads running for `key` (tests, metrics). */
  running(key: string): number {
    return this.tenants.get(key)?.running ?? 0;
  }

  private refuse(key: string, t: Tenant, then: (granted: boolean) => void): void {
    if (t.running === 0 && t.waiting.length === 0) this.tenants.delete(key);
    then(false);
  }
}

export function clientKey(req: FastifyRequest): string {
  return req.grant ? `grant:${req.grant}` : `ip:${req.ip}`;
}

/** Registers the limit; call after the access check's hook, whose token name it keys on. */
export function limitHeavyReads(app: App, options: { heavyReadsPerClient: number; heavyReadWaitMs: number }): void {
  const { heavyReadsPerClient: perClient, heavyReadWaitMs: waitMs } = options;
  if (perClient <= 0) return;
  const slots = new ClientSlots(perClient, waitMs);
  const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
  const limit: onRequestHookHandler = (req, reply, done) => {
    const key = clientKey(req);
    slots.take(key, (granted) => {
      if (!granted) {
        reply.header('retry-after', retryAfter);
        done(
          httpError(
            429,
            `more than ${perClient} store reads of this client at once, and none ended within ${waitMs} ms; retry later`,
            'TooManyConcurrentReads',
          ),
        );
        return;
      }
      // A client that hung up while its read waited: the slot passes straight on.
      if (reply.raw.destroyed || req.raw.destroyed) {
        slots.release(key);
        done(httpError(400, 'the client went away while its read waited', 'RequestAborted'));
        return;
      }
      releaseWhenDone(reply, () => slots.release(key));
      done();
    });
  };
  app.addHook('onRoute', (route) => {
    if (!isHeavyRead([route.method].flat()[0], route.url)) return;
    route.onRequest = [...[route.onRequest ?? []].flat(), limit];
  });
}

/** Once the answer is sent (a stream to its end) or the client is gone, whichever first. */
function releaseWhenDone(reply: FastifyReply, release: () => void): void {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    release();
  };
  reply.raw.once('finish', once);
  reply.raw.once('close', once);
}
