/**
 * Heavy reads (store lists, execution plans, blobs: anything under a cluster's stores) are
 * limited in concurrency per client, its token's name, else its address: a tenant that
 * floods them waits for its own slots, and beyond a bounded wait is answered `429` with
 * `Retry-After`. So one tenant cannot fill Redis's output buffers and this server's memory
 * with forty copies of a 32 MiB plan while other clusters' renewals wait (docs/design.md
 * §8). Elections, leader reads and the watch are never limited here: a hook on the store
 * routes only, added as they are registered, so that their handlers stay as they are.
 *
 * Slots alone do not make a tenant's share small: four reads at a time of a plan, each
 * streamed as fast as the socket takes it, kept hundreds of MiB a second going through
 * Redis, this server and the reader, and on a small machine that CPU is the other tenants'
 * renewals (bench/RESULTS.md, Tenant isolation). So a client's heavy reads together are also
 * sent at no more than a budget of bytes a second (`heavyReadBytesPerSec`): their answers
 * are paced a chunk at a time, never refused, and a read waiting for its budget holds its
 * slot, so that nothing more of it is read from Redis meanwhile.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler } from 'fastify';
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

/**
 * Bytes a second per key: a token bucket (as GCRA: per key, the time at which the bytes
 * charged so far are paid for) holding up to `burstBytes`, so that a small read is sent at
 * once and a long one at the rate. Charges are served first come first served across a
 * key's reads; a key whose bytes are paid for is forgotten.
 */
export class ByteBudget {
  private readonly paidAt = new Map<string, number>();
  private readonly burstMs: number;
  private sweptAt = 0;

  constructor(
    private readonly bytesPerSec: number,
    burstBytes: number,
  ) {
    this.burstMs = (burstBytes / bytesPerSec) * 1000;
  }

  /** Charges `bytes` to `key`: answers how long (ms) to wait before sending them. */
  charge(key: string, bytes: number, now = performance.now()): number {
    const paidAt = Math.max(this.paidAt.get(key) ?? now, now) + (bytes / this.bytesPerSec) * 1000;
    this.paidAt.set(key, paidAt);
    this.sweep(now);
    return Math.max(0, paidAt - now - this.burstMs);
  }

  /** At most once a second, so that a charge stays O(1) however many clients there are. */
  private sweep(now: number): void {
    if (now - this.sweptAt < 1000) return;
    this.sweptAt = now;
    for (const [key, at] of this.paidAt) if (at + this.burstMs <= now) this.paidAt.delete(key);
  }
}

/** `body`'s chunks, each sent once `key`'s budget allows. */
export function paced(body: AsyncIterable<Buffer | string>, budget: ByteBudget, key: string): Readable {
  async function* chunks() {
    for await (const chunk of body) {
      const wait = budget.charge(key, Buffer.byteLength(chunk));
      if (wait > 0) await sleep(wait);
      yield chunk;
    }
  }
  // highWaterMark 1: nothing is pulled from the store ahead of what the budget lets out.
  return Readable.from(chunks(), { objectMode: false, highWaterMark: 1 });
}

export function clientKey(req: FastifyRequest): string {
  return req.grant ? `grant:${req.grant}` : `ip:${req.ip}`;
}

/** Most a client's reads may send at once before the pace applies: one store chunk (1 MiB)
 * and the page or headers around it, so that a read of a chunk is never split. */
const BURST_BYTES = 1.25 * 2 ** 20;

/** Registers the limits; call after the access check's hook, whose token name they key on. */
export function limitHeavyReads(
  app: App,
  options: { heavyReadsPerClient: number; heavyReadWaitMs: number; heavyReadBytesPerSec: number },
): void {
  const hooks = { onRequest: slotsHook(options), onSend: paceHook(options.heavyReadBytesPerSec) };
  app.addHook('onRoute', (route) => {
    if (!isHeavyRead([route.method].flat()[0], route.url)) return;
    if (hooks.onRequest) route.onRequest = [...[route.onRequest ?? []].flat(), hooks.onRequest];
    if (hooks.onSend) route.onSend = [...[route.onSend ?? []].flat(), hooks.onSend];
  });
}

/** Paces every answer of a heavy read: a stream chunk by chunk, a page (already a string
 * or buffer) as a whole. Not an error: a 429 (or 404) is small, and one held back behind
 * the client's paced reads would only keep its socket longer before it honours Retry-After. */
function paceHook(bytesPerSec: number): onSendHookHandler | undefined {
  if (bytesPerSec <= 0) return undefined;
  const budget = new ByteBudget(bytesPerSec, Math.max(BURST_BYTES, bytesPerSec / 10));
  return (req, reply, payload, done) => {
    if (reply.statusCode >= 400) return done(null, payload);
    const key = clientKey(req);
    if (payload instanceof Readable) return done(null, paced(payload, budget, key));
    const bytes = typeof payload === 'string' || Buffer.isBuffer(payload) ? Buffer.byteLength(payload) : 0;
    const wait = budget.charge(key, bytes);
    if (wait > 0) setTimeout(() => done(null, payload), wait);
    else done(null, payload);
  };
}

function slotsHook(options: { heavyReadsPerClient: number; heavyReadWaitMs: number }): onRequestHookHandler | undefined {
  const { heavyReadsPerClient: perClient, heavyReadWaitMs: waitMs } = options;
  if (perClient <= 0) return undefined;
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
  return limit;
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
