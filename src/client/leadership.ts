/**
 * A contender for the cluster's leadership (docs/api.md, "The leadership"): one lease, one
 * session and one fencing token for every component a Flink process leads, renewed once for
 * all of them, with each component's leader information published under it.
 *
 * It steps down as `LeaderElection` does: a lease counts from when the request that won or
 * renewed it was *sent*, on the monotonic clock, minus a margin, checked on every read; a
 * renewal with an unknown outcome (503, timeout) is retried while the lease lasts, and when
 * none is confirmed in time it revokes locally, then campaigns again. A standby waits on a
 * long-poll of `GET leaders` (every published component turns leaderless in one change when
 * a leadership ends), capped at the renew interval, before campaigning again.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AuthError, LeadershipLostError, NotLeaderError } from './errors.js';
import { seg, type Http } from './http.js';
import { backoffMs, monotonicNow, nextEvent, sleep } from './timing.js';
import type { Component, Leader, LeadershipInfo, LeadersState } from './types.js';
import type { RevokeReason } from './election.js';

export interface ClusterLeadershipOptions {
  clusterId: string;
  /** Names this contender (default: host, pid and a random suffix). */
  contenderId?: string;
  /** Lease TTL (default 10 s). */
  ttlMs?: number;
  /** Time between renewals (default TTL/3); also the longest a standby waits between campaigns. */
  renewIntervalMs?: number;
  /** Leadership ends this long before the lease may end (default max(100 ms, TTL/10)). */
  marginMs?: number;
  /** After a leadership ends and a new one is granted, publish again what was published
   * (default false: a new grant starts with nothing published, as Flink's contenders
   * confirm their addresses again on each grant). */
  republish?: boolean;
}

export interface HeldLeadership {
  sessionId: string;
  fencingToken: number;
  /** The leadership as the server last answered it. */
  leadership: LeadershipInfo;
  /** On `monotonicNow()`'s clock: until when this contender may act as leader. */
  validUntil: number;
}

interface Events {
  granted: [sessionId: string, fencingToken: number, held: HeldLeadership];
  revoked: [reason: RevokeReason];
  /** Failed requests, for logging; the contender retries by itself. Emitted only while
   * someone listens. */
  error: [err: Error];
}

export class ClusterLeadership extends EventEmitter<Events> {
  readonly clusterId: string;
  readonly contenderId: string;
  readonly ttlMs: number;
  readonly renewIntervalMs: number;
  readonly marginMs: number;
  readonly republish: boolean;
  private readonly base: string;
  private held: (HeldLeadership & { renewAt: number }) | null = null;
  /** The session the server last granted us, held or not: what `resign()` releases. */
  private session: string | null = null;
  /** component -> address, as this process published it. */
  private readonly published = new Map<string, string>();
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake = new AbortController();
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly http: Http,
    options: ClusterLeadershipOptions,
  ) {
    super();
    this.clusterId = options.clusterId;
    this.contenderId = options.contenderId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.floor(this.ttlMs / 3);
    this.marginMs = options.marginMs ?? Math.max(100, Math.floor(this.ttlMs / 10));
    this.republish = options.republish ?? false;
    this.base = `/v1/clusters/${seg(this.clusterId)}`;
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
  get leadership(): HeldLeadership | null {
    const h = this.held;
    return h && monotonicNow() < h.validUntil ? h : null;
  }

  isLeader(): boolean {
    return this.leadership !== null;
  }

  /** The token to fence store writes with (a store client takes this object as its fence);
   * throws `NotLeaderError` when not leading. */
  fencingToken(): number {
    return this.current().fencingToken;
  }

  /** Publishes `component`'s leader information under the leadership: readers see this
   * process lead it, with the leadership's session and token. */
  async publish(component: Component, address: string): Promise<Leader> {
    const l = this.current();
    this.published.set(component, address);
    const res = await this.post<{ leader: Leader }>('publish', { sessionId: l.sessionId, component, address });
    return res.leader;
  }

  /** Withdraws `component`: readers see it leaderless. */
  async unpublish(component: Component): Promise<boolean> {
    this.published.delete(component);
    const l = this.current();
    return (await this.post<{ removed: boolean }>('unpublish', { sessionId: l.sessionId, component })).removed;
  }

  /** Stops campaigning and releases the leadership if this contender holds it. */
  async resign(): Promise<void> {
    this.running = false;
    this.wake.abort();
    await this.loopDone;
    const session = this.session;
    if (this.held) this.revoke('resigned');
    if (session) {
      this.session = null;
      await this.post('resign', { contenderId: this.contenderId, sessionId: session }).catch((err) => this.report(err));
    }
  }

  /** Resigns and forgets what was published: the end of this contender. */
  async close(): Promise<void> {
    await this.resign();
    this.published.clear();
  }

  /**
   * Runs `task` once this contender leads (waiting for a grant), with a signal that aborts
   * with `LeadershipLostError` when the leadership ends, or with `signal`'s reason.
   */
  async runWhileLeader<T>(
    task: (signal: AbortSignal, held: HeldLeadership) => Promise<T> | T,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    this.start();
    const held = this.leadership ?? (await nextEvent(this, 'granted', (_s: string, _t: number, h: HeldLeadership) => h, options.signal));
    options.signal?.throwIfAborted();
    const abort = new AbortController();
    const onRevoked = (reason: RevokeReason) => abort.abort(new LeadershipLostError(reason));
    const onAbort = () => abort.abort(options.signal?.reason);
    this.on('revoked', onRevoked);
    options.signal?.addEventListener('abort', onAbort);
    // Ended already between the grant and here (a stall past the lease).
    if (this.leadership?.sessionId !== held.sessionId) abort.abort(new LeadershipLostError('unconfirmed'));
    try {
      return await task(abort.signal, held);
    } finally {
      this.off('revoked', onRevoked);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  private current(): HeldLeadership {
    const l = this.leadership;
    if (!l) throw new NotLeaderError('NotLeader', `${this.contenderId} does not hold the leadership of ${this.clusterId}`);
    return l;
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
        await sleep(backoffMs(failures++, 100, Math.max(1000, this.renewIntervalMs)), this.wakeSignal());
      }
    }
  }

  private async campaignOnce(): Promise<void> {
    // Taken before the campaign: a leadership that ends in between is then a change past it.
    const before = await this.http.request<LeadersState>(`${this.base}/leaders`, { signal: this.wakeSignal() });
    if (!this.running) return;
    const sentAt = monotonicNow();
    // A 503 or timeout leaves the outcome unknown: the loop campaigns again with the same
    // contender id, which gets a grant it may have won back.
    const res = await this.post<{ granted: boolean; leadership: LeadershipInfo }>('campaign', {
      contenderId: this.contenderId,
      ttlMs: this.ttlMs,
    });
    if (res.granted) {
      this.session = res.leadership.sessionId;
      if (this.running) await this.grant(res.leadership, sentAt);
      return;
    }
    await this.awaitChange(before.index, res.leadership.remainingMs);
  }

  /** A standby's wait: until the cluster's leaders change (a leadership's end turns its
   * components leaderless), the holder's lease should have run out, or one renew interval. */
  private async awaitChange(index: number, remainingMs: number): Promise<void> {
    const signal = this.wakeSignal();
    const waitMs = Math.max(1, Math.min(this.renewIntervalMs, remainingMs + 100));
    await this.http
      .request(`${this.base}/leaders?index=${index}&wait=${waitMs}ms`, { signal, timeoutMs: waitMs + 5000 })
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
      const res = await this.post<{ leadership: LeadershipInfo }>(
        'renew',
        { contenderId: this.contenderId, sessionId: h.sessionId, ttlMs: this.ttlMs },
        this.wakeSignal(),
      );
      if (this.held === h) this.extend(h, res.leadership, sentAt);
    } catch (err) {
      // 409: it is not ours any more; 403 (`NotLeadershipOwner`): it was won with another
      // access token, so no renewal of ours can ever succeed.
      if (!(err instanceof NotLeaderError || err instanceof AuthError)) throw err;
      if (err instanceof AuthError) this.report(err);
      this.session = null;
      if (this.held === h) this.revoke('lost');
    }
  }

  private async grant(leadership: LeadershipInfo, sentAt: number): Promise<void> {
    const validUntil = sentAt + leadership.remainingMs - this.marginMs;
    // An answer that came too late to be of use: campaign again (we get this grant back).
    if (validUntil <= monotonicNow()) return;
    const h = { sessionId: leadership.sessionId, fencingToken: leadership.token, leadership, validUntil, renewAt: sentAt + this.renewIntervalMs };
    this.held = h;
    this.armExpiry(h);
    if (this.republish) {
      // Before `granted`, so that a listener sees the components as they were.
      for (const [component, address] of this.published) {
        if (this.held !== h) break;
        await this.post('publish', { sessionId: h.sessionId, component, address }).catch((err) => this.report(err));
      }
    }
    if (this.held === h) this.emit('granted', h.sessionId, h.fencingToken, h);
  }

  private extend(h: HeldLeadership & { renewAt: number }, leadership: LeadershipInfo, sentAt: number): void {
    h.leadership = leadership;
    h.validUntil = sentAt + leadership.remainingMs - this.marginMs;
    h.renewAt = sentAt + this.renewIntervalMs;
    this.armExpiry(h);
  }

  /** Revokes locally when the leadership's time is up without a confirmed renewal. */
  private armExpiry(h: HeldLeadership): void {
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
    if (!this.republish) this.published.clear();
    this.wake.abort();
    this.emit('revoked', reason);
  }

  /** A campaign is never cut short by `signal`: its grant would be lost unreleased. */
  private post<T>(action: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    return this.http.request<T>(`${this.base}/leadership/${action}`, {
      body,
      signal,
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
