/**
 * A contender for one component (Flink's `LeaderElection`): campaigns, renews in the
 * background, and says `granted` and `revoked`.
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
import { LeaseholdError, LeadershipLostError, NotLeaderError } from './errors.js';
import { componentPath, seg, type Http } from './http.js';
import { backoffMs, monotonicNow, nextEvent, sleep } from './timing.js';
import type { CampaignResult, Component, Leader } from './types.js';

export interface LeaderElectionOptions {
  clusterId: string;
  component: Component;
  /** Names this contender (default: host, pid and a random suffix). */
  contenderId?: string;
  /** Lease TTL (default 10 s). */
  ttlMs?: number;
  /** Published with the grant (Flink's `confirmLeadership`); see also `confirm()`. */
  address?: string;
  /** Consul's lock-delay: when a lease granted to this contender expires (not when it
   * resigns), nobody is granted the component for this long (ms; default 0). */
  lockDelayMs?: number;
  /** Time between renewals (default TTL/3). */
  renewIntervalMs?: number;
  /** Leadership ends this long before the lease may end (default max(100 ms, TTL/10)). */
  marginMs?: number;
}

export interface Leadership {
  sessionId: string;
  fencingToken: number;
  /** The lease as the server last answered it. */
  leader: Leader;
  /** On `monotonicNow()`'s clock: until when this contender may act as leader. */
  validUntil: number;
}

/** `lost`: the server said the lease is not ours (409 `NotLeader`); `unconfirmed`: no
 * renewal was confirmed in time; `resigned`: `resign()` was called. */
export type RevokeReason = 'lost' | 'unconfirmed' | 'resigned';

interface Events {
  granted: [sessionId: string, fencingToken: number, leadership: Leadership];
  revoked: [reason: RevokeReason];
  /** Failed requests, for logging; the election retries by itself. Emitted only while
   * someone listens (so `events.once(election, 'granted')`, which listens for `error`
   * too, rejects on the first failure: use `on`). */
  error: [err: Error];
}

const ABORTED = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
const REASON = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')!.get!;

export class LeaderElection extends EventEmitter<Events> {
  readonly clusterId: string;
  readonly component: Component;
  readonly contenderId: string;
  readonly ttlMs: number;
  readonly renewIntervalMs: number;
  readonly marginMs: number;
  readonly lockDelayMs: number;
  private address: string | undefined;
  private readonly path: string;
  private held: (Leadership & { renewAt: number }) | null = null;
  /** The session the server last granted us, held or not: what `resign()` releases. */
  private session: string | null = null;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake = new AbortController();
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly http: Http,
    options: LeaderElectionOptions,
  ) {
    super();
    this.clusterId = options.clusterId;
    this.component = options.component;
    this.contenderId = options.contenderId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.floor(this.ttlMs / 3);
    this.marginMs = options.marginMs ?? Math.max(100, Math.floor(this.ttlMs / 10));
    this.address = options.address;
    this.lockDelayMs = options.lockDelayMs ?? 0;
    this.path = `/v1/clusters/${seg(this.clusterId)}/leaders/${componentPath(this.component)}`;
  }

  /** Starts campaigning (again, after `resign()`). */
  start(): this {
    if (!this.running) {
      this.running = true;
      this.loopDone = this.loop();
    }
    return this;
  }

  /** The current leadership, or null, checked against the clock at every read. */
  get leadership(): Leadership | null {
    const h = this.held;
    return h && monotonicNow() < h.validUntil ? h : null;
  }

  isLeader(): boolean {
    return this.leadership !== null;
  }

  /** The token to fence writes with; throws `NotLeaderError` when not leading. */
  fencingToken(): number {
    const l = this.leadership;
    if (!l) throw new NotLeaderError('NotLeader', `${this.contenderId} does not lead ${this.component}`);
    return l.fencingToken;
  }

  /** Publishes the leader's address; kept for later grants too. */
  async confirm(address: string): Promise<Leader> {
    this.address = address;
    const l = this.leadership;
    if (!l) throw new NotLeaderError('NotLeader', `${this.contenderId} does not lead ${this.component}`);
    const res = await this.post<{ leader: Leader }>('confirm', { sessionId: l.sessionId, address });
    return res.leader;
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
      await this.post('resign', { sessionId: session }).catch((err) => this.report(err));
    }
  }

  /**
   * Runs `task` once this contender leads (waiting for a grant), with a signal that aborts
   * with `LeadershipLostError` when the leadership ends, or with `signal`'s reason. Work
   * done elsewhere should still carry the fencing token: an abort is seen only when the
   * task next looks.
   */
  async runWhileLeader<T>(
    task: (signal: AbortSignal, leadership: Leadership) => Promise<T> | T,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    this.start();
    const leadership = this.leadership ?? (await this.nextGrant(options.signal));
    options.signal?.throwIfAborted();
    const abort = new AbortController();
    const onRevoked = (reason: RevokeReason) => abort.abort(new LeadershipLostError(reason));
    const onAbort = () => abort.abort(options.signal?.reason);
    this.on('revoked', onRevoked);
    options.signal?.addEventListener('abort', onAbort);
    try {
      return await task(this.leaseSignal(abort, leadership.sessionId), leadership);
    } finally {
      this.off('revoked', onRevoked);
      options.signal?.removeEventListener('abort', onAbort);
    }
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

  private nextGrant(signal?: AbortSignal): Promise<Leadership> {
    return nextEvent(this, 'granted', (_s: string, _t: number, l: Leadership) => l, signal);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        if (this.held) await this.renewOnce();
        else await this.campaignOnce();
        failures = 0;
      } catch (err) {
        if (!this.running) break;
        this.report(err);
        // A lock delay says how long it lasts: campaign again when it ends, not before.
        const delayMs = lockDelayLeft(err);
        await sleep(delayMs ?? backoffMs(failures++, 100, Math.max(1000, this.renewIntervalMs)), this.wakeSignal());
      }
    }
  }

  private async campaignOnce(): Promise<void> {
    const sentAt = monotonicNow();
    const res = await this.post<CampaignResult>('campaign', {
      ttlMs: this.ttlMs,
      ...(this.lockDelayMs ? { lockDelayMs: this.lockDelayMs } : {}),
      ...(this.address === undefined ? {} : { address: this.address }),
    });
    if (res.granted) {
      this.session = res.leader.sessionId;
      if (this.running) this.grant(res.leader, sentAt);
      return;
    }
    await this.awaitChange(res.leader.leaseRemainingMs);
  }

  /** Waits (long-poll) until the component changes or its lease should have ended. */
  private async awaitChange(leaseRemainingMs: number): Promise<void> {
    const signal = this.wakeSignal();
    const now = await this.http.request<{ leader: Leader | null; index: number }>(this.path, { signal });
    if (!now.leader || !this.running) return;
    const waitMs = Math.min(30_000, leaseRemainingMs + 1000);
    await this.http
      .request(`${this.path}?index=${now.index}&wait=${waitMs}ms`, { signal, timeoutMs: waitMs + 5000 })
      .catch((err) => {
        if (!signal.aborted) throw err;
      });
  }

  private async renewOnce(): Promise<void> {
    const h = this.held!;
    await sleep(h.renewAt - monotonicNow(), this.wakeSignal());
    if (!this.running || this.held !== h) return;
    const sentAt = monotonicNow();
    try {
      const res = await this.post<{ leader: Leader }>('renew', { sessionId: h.sessionId, ttlMs: this.ttlMs }, this.wakeSignal());
      if (this.held === h) this.extend(h, res.leader, sentAt);
    } catch (err) {
      if (!(err instanceof NotLeaderError)) throw err;
      this.session = null;
      if (this.held === h) this.revoke('lost');
    }
  }

  private grant(leader: Leader, sentAt: number): void {
    const validUntil = sentAt + leader.leaseRemainingMs - this.marginMs;
    // An answer that came too late to be of use: campaign again (we get this grant back).
    if (validUntil <= monotonicNow()) return;
    const h = { sessionId: leader.sessionId, fencingToken: leader.fencingToken, leader, validUntil, renewAt: sentAt + this.renewIntervalMs };
    this.held = h;
    this.armExpiry(h);
    this.emit('granted', h.sessionId, h.fencingToken, h);
  }

  private extend(h: Leadership & { renewAt: number }, leader: Leader, sentAt: number): void {
    h.leader = leader;
    h.validUntil = sentAt + leader.leaseRemainingMs - this.marginMs;
    h.renewAt = sentAt + this.renewIntervalMs;
    this.armExpiry(h);
  }

  /** Revokes locally when the leadership's time is up without a confirmed renewal. */
  private armExpiry(h: Leadership): void {
    clearTimeout(this.expiry);
    const check = () => {
      if (this.held !== h) return;
      const left = h.validUntil - monotonicNow();
      if (left <= 0) this.revoke('unconfirmed');
      else this.expiry = setTimeout(check, Math.ceil(left));
    };
    check();
  }

  private revoke(reason: RevokeReason): void {
    this.held = null;
    clearTimeout(this.expiry);
    this.wake.abort();
    this.emit('revoked', reason);
  }

  /** A campaign is never cut short by `signal`: its grant would be lost unreleased. */
  private post<T>(action: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    return this.http.request<T>(`${this.path}/${action}`, {
      body: { contenderId: this.contenderId, ...body },
      signal,
      // Long enough for a busy server; a renewal that times out is retried while the
      // leadership lasts.
      timeoutMs: Math.max(1000, this.renewIntervalMs),
    });
  }

  /** A signal that aborts on the next revoke or resign, to cut waits short. */
  private wakeSignal(): AbortSignal {
    if (this.wake.signal.aborted && this.running) this.wake = new AbortController();
    return this.wake.signal;
  }

  private report(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err as Error);
  }
}

/** The time left (ms) of a `409 LockDelay` answer, else undefined. */
function lockDelayLeft(err: unknown): number | undefined {
  if (!(err instanceof LeaseholdError) || err.code !== 'LockDelay') return undefined;
  const ms = err.details.retryAfterMs;
  return typeof ms === 'number' && ms > 0 ? ms : undefined;
}
