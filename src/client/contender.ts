/**
 * What a per-component election and a cluster leadership share: the campaign/renew loop, the
 * step-down clock, and work run while leading.
 *
 * It never claims a leadership that may have ended: a lease counts from when the request
 * that won or renewed it was *sent*, on the monotonic clock, minus a margin, and
 * `leadership` checks that clock on every read, so even a process that was paused past
 * its lease sees no leadership on waking. When no renewal is confirmed in time (server or
 * Redis unreachable), it revokes locally, then campaigns again.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { LeadershipLostError, NotLeaderError } from './errors.js';
import { backoffMs, monotonicNow, nextEvent, sleep } from './timing.js';
import type { RenewalStream, StreamedLease } from './renewals.js';

/** `lost`: the server said the lease is not ours (409 `NotLeader`); `unconfirmed`: no
 * renewal was confirmed in time; `resigned`: `resign()` was called. */
export type RevokeReason = 'lost' | 'unconfirmed' | 'resigned';

/** What a contender holds, at the least. */
export interface Held {
  sessionId: string;
  fencingToken: number;
  /** On `monotonicNow()`'s clock: until when this contender may act as leader. */
  validUntil: number;
}

export interface ContenderEvents<H> {
  granted: [sessionId: string, fencingToken: number, held: H];
  revoked: [reason: RevokeReason];
  /** Failed requests, for logging; the contender retries by itself. Emitted only while
   * someone listens (so `events.once(contender, 'granted')`, which listens for `error`
   * too, rejects on the first failure: use `on`). */
  error: [err: Error];
}

export interface ContenderOptions {
  /** Names this contender (default: host, pid and a random suffix). */
  contenderId?: string;
  /** Lease TTL (default 10 s). */
  ttlMs?: number;
  /** Time between renewals (default TTL/3). */
  renewIntervalMs?: number;
  /** Leadership ends this long before the lease may end (default max(100 ms, TTL/10)). */
  marginMs?: number;
  /** `stream` (default): renew over the client's renewal stream (one websocket for all its
   * contenders), over HTTP while it cannot be opened or was cut, and for good against a
   * server without it; `http`: always over HTTP. */
  renewOver?: 'stream' | 'http';
}

const ABORTED = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
const REASON = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')!.get!;

type Holding<H> = H & { renewAt: number };

export abstract class Contender<H extends Held> extends EventEmitter<ContenderEvents<H>> {
  readonly contenderId: string;
  readonly ttlMs: number;
  readonly renewIntervalMs: number;
  readonly marginMs: number;
  protected held: Holding<H> | null = null;
  /** The session the server last granted us, held or not: what `resign()` releases. */
  protected session: string | null = null;
  protected running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake = new AbortController();
  private expiry: NodeJS.Timeout | undefined;
  /** The renewal stream, null when renewing over HTTP only. */
  private readonly stream: RenewalStream | null;
  /** Ends this contender's use of the stream (on resign). */
  private unuse: (() => void) | undefined;
  /** Stops listening for the server's `lost` of the lease held. */
  private unwatch: (() => void) | undefined;

  constructor(options: ContenderOptions, stream: RenewalStream) {
    super();
    this.stream = options.renewOver === 'http' ? null : stream;
    this.contenderId = options.contenderId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.floor(this.ttlMs / 3);
    this.marginMs = options.marginMs ?? Math.max(100, Math.floor(this.ttlMs / 10));
  }

  /** One campaign: holds (`hold`) when granted, else waits a while. */
  protected abstract campaignOnce(): Promise<void>;
  /** One renewal of `h` (due now): `extend` it, or `lost(h)` when the server says it is not ours. */
  protected abstract renew(h: Holding<H>): Promise<void>;
  /** Releases `session` on the server (resign). */
  protected abstract release(session: string): Promise<unknown>;
  /** What `fencingToken()` names when not leading. */
  protected abstract describeNotLeading(): string;

  /** Starts campaigning (again, after `resign()`). */
  start(): this {
    if (!this.running) {
      this.running = true;
      this.unuse = this.stream?.use();
      this.loopDone = this.loop();
    }
    return this;
  }

  /** The current leadership, or null, checked against the clock at every read. */
  get leadership(): H | null {
    const h = this.held;
    return h && monotonicNow() < h.validUntil ? h : null;
  }

  isLeader(): boolean {
    return this.leadership !== null;
  }

  /** The token to fence writes with; throws `NotLeaderError` when not leading. */
  fencingToken(): number {
    return this.current().fencingToken;
  }

  /** Stops campaigning and releases the lease if this contender holds it. */
  async resign(): Promise<void> {
    this.running = false;
    this.wake.abort();
    await this.loopDone;
    const session = this.session;
    if (this.held) this.revoke('resigned');
    if (session) {
      this.session = null;
      await this.release(session).catch((err) => this.report(err));
    }
    this.unuse?.();
  }

  /**
   * Runs `task` once this contender leads (waiting for a grant), with a signal that aborts
   * with `LeadershipLostError` when the leadership ends, or with `signal`'s reason. Work
   * done elsewhere should still carry the fencing token: an abort is seen only when the
   * task next looks.
   */
  async runWhileLeader<T>(task: (signal: AbortSignal, held: H) => Promise<T> | T, options: { signal?: AbortSignal } = {}): Promise<T> {
    this.start();
    const held = this.leadership ?? (await nextEvent(this, 'granted', (_s: string, _t: number, h: H) => h, options.signal));
    options.signal?.throwIfAborted();
    const abort = new AbortController();
    const onRevoked = (reason: RevokeReason) => abort.abort(new LeadershipLostError(reason));
    const onAbort = () => abort.abort(options.signal?.reason);
    this.on('revoked', onRevoked);
    options.signal?.addEventListener('abort', onAbort);
    try {
      return await task(this.leaseSignal(abort, held.sessionId), held);
    } finally {
      this.off('revoked', onRevoked);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A request's timeout: long enough for a busy server; a renewal that times out is
   * retried while the leadership lasts. */
  protected get requestTimeoutMs(): number {
    return Math.max(1000, this.renewIntervalMs);
  }

  /** The leadership, or `NotLeaderError`. */
  protected current(): H {
    const l = this.leadership;
    if (!l) throw new NotLeaderError('NotLeader', `${this.contenderId} does not lead ${this.describeNotLeading()}`);
    return l;
  }

  /** A wait before retrying after `err` (the `failures`-th in a row). */
  protected retryDelayMs(_err: unknown, failures: number): number {
    return backoffMs(failures, 100, Math.max(1000, this.renewIntervalMs));
  }

  /**
   * `abort`'s signal, which also checks the clock when it is read: after a stall past the
   * lease (GC, a blocked event loop, SIGSTOP), code that resumes before the expiry timer
   * has run still sees the abort.
   */
  private leaseSignal(abort: AbortController, sessionId: string): AbortSignal {
    const signal = abort.signal;
    const lapsed = () => {
      if (!ABORTED.call(signal) && this.leadership?.sessionId !== sessionId) abort.abort(new LeadershipLostError('unconfirmed'));
    };
    return Object.defineProperties(signal, {
      aborted: { get: () => (lapsed(), ABORTED.call(signal)) },
      reason: { get: () => (lapsed(), REASON.call(signal)) },
      throwIfAborted: { value: () => (lapsed(), AbortSignal.prototype.throwIfAborted.call(signal)) },
    });
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        const h = this.held;
        if (h) {
          await sleep(h.renewAt - monotonicNow(), this.wakeSignal());
          if (this.running && this.held === h) await this.renew(h);
        } else await this.campaignOnce();
        failures = 0;
      } catch (err) {
        if (!this.running) break;
        this.report(err);
        await sleep(this.retryDelayMs(err, failures++), this.wakeSignal());
      }
    }
  }

  /**
   * One renewal of `h`: over the renewal stream when it is open, else `overHttp()`. The
   * answer is the same either way; a stream cut before it is an unknown outcome
   * (`UnavailableError`), as a 503 is. Once the stream renewed `h`, a `lost` the server
   * pushes for it revokes it at once.
   */
  protected async renewal<T>(h: Holding<H>, lease: StreamedLease, overHttp: () => Promise<T>): Promise<T> {
    const streamed = this.stream?.renew<T>(lease, this.ttlMs, this.requestTimeoutMs, this.wakeSignal());
    if (!streamed) return overHttp();
    const answer = await streamed;
    if (this.held === h && this.unwatch === undefined) {
      this.unwatch = this.stream!.watch(h.sessionId, () => {
        if (this.held === h) this.lost(h);
      });
    }
    return answer;
  }

  /** The lease of a grant sent at `sentAt` with `remainingMs` left, or null when the answer
   * came too late to be of use (campaign again: we get this grant back). */
  protected holding(fields: Omit<H, 'validUntil'>, remainingMs: number, sentAt: number): Holding<H> | null {
    const validUntil = sentAt + remainingMs - this.marginMs;
    if (validUntil <= monotonicNow()) return null;
    return { ...fields, validUntil, renewAt: sentAt + this.renewIntervalMs } as Holding<H>;
  }

  /** Holds `h`: from now on `leadership` answers it; `granted` once `prepare` is done, if it still is. */
  protected async hold(h: Holding<H>, prepare?: () => Promise<void>): Promise<void> {
    this.held = h;
    this.armExpiry(h);
    await prepare?.();
    if (this.held === h) this.emit('granted', h.sessionId, h.fencingToken, h);
  }

  /** A confirmed renewal of `h`, sent at `sentAt`. */
  protected extend(h: Holding<H>, remainingMs: number, sentAt: number): void {
    h.validUntil = sentAt + remainingMs - this.marginMs;
    h.renewAt = sentAt + this.renewIntervalMs;
    this.armExpiry(h);
  }

  /** The server said `h` is not ours. */
  protected lost(h: Holding<H>): void {
    this.session = null;
    if (this.held === h) this.revoke('lost');
  }

  /** Revokes locally when the leadership's time is up without a confirmed renewal. */
  private armExpiry(h: Held): void {
    clearTimeout(this.expiry);
    const check = () => {
      if (this.held !== h) return;
      const left = h.validUntil - monotonicNow();
      if (left <= 0) this.revoke('unconfirmed');
      else this.expiry = setTimeout(check, Math.ceil(left));
    };
    check();
  }

  protected revoke(reason: RevokeReason): void {
    this.held = null;
    this.unwatch?.();
    this.unwatch = undefined;
    clearTimeout(this.expiry);
    this.wake.abort();
    this.emit('revoked', reason);
  }

  /** A signal that aborts on the next revoke or resign, to cut waits short. */
  protected wakeSignal(): AbortSignal {
    if (this.wake.signal.aborted && this.running) this.wake = new AbortController();
    return this.wake.signal;
  }

  protected report(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err as Error);
  }
}
