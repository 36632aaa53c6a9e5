/**
 * A contender for the cluster's leadership (docs/api.md, "The leadership"): one lease, one
 * session and one fencing token for every component a Flink process leads, renewed once for
 * all of them, with each component's leader information published under it.
 *
 * It steps down as `LeaderElection` does (the loop and clock of `Contender`, contender.ts): a
 * lease counts from when the request that won or renewed it was *sent*, minus a margin; a
 * renewal with an unknown outcome (503, timeout) is retried while the lease lasts, and when
 * none is confirmed in time it revokes locally, then campaigns again. A standby waits on a
 * long-poll of `GET leaders` (every published component turns leaderless in one change when
 * a leadership ends), capped at the renew interval, before campaigning again.
 */
import { AuthError, NotLeaderError } from './errors.js';
import { seg, type Http } from './http.js';
import { Contender, type ContenderOptions, type RevokeReason } from './contender.js';
import { monotonicNow } from './timing.js';
import type { Component, Leader, LeadershipInfo, LeadersState } from './types.js';

export interface ClusterLeadershipOptions extends ContenderOptions {
  clusterId: string;
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

export class ClusterLeadership extends Contender<HeldLeadership> {
  readonly clusterId: string;
  readonly republish: boolean;
  private readonly base: string;
  /** component -> address, as this process published it. */
  private readonly published = new Map<string, string>();

  constructor(
    private readonly http: Http,
    options: ClusterLeadershipOptions,
  ) {
    super(options, http.renewals);
    this.clusterId = options.clusterId;
    this.republish = options.republish ?? false;
    this.base = `/v1/clusters/${seg(this.clusterId)}`;
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

  /** Resigns and forgets what was published: the end of this contender. */
  async close(): Promise<void> {
    await this.resign();
    this.published.clear();
  }

  protected describeNotLeading(): string {
    return `the leadership of ${this.clusterId}`;
  }

  protected release(session: string): Promise<unknown> {
    return this.post('resign', { contenderId: this.contenderId, sessionId: session });
  }

  protected async campaignOnce(): Promise<void> {
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
      const { leadership } = res;
      this.session = leadership.sessionId;
      const h = this.holding({ sessionId: leadership.sessionId, fencingToken: leadership.token, leadership }, leadership.remainingMs, sentAt);
      // Republished before `granted`, so that a listener sees the components as they were.
      if (this.running && h) await this.hold(h, this.republish ? () => this.publishAgain(h) : undefined);
      return;
    }
    await this.awaitChange(before.index, res.leadership.remainingMs);
  }

  private async publishAgain(h: HeldLeadership): Promise<void> {
    for (const [component, address] of this.published) {
      if (this.held !== h) return;
      await this.post('publish', { sessionId: h.sessionId, component, address }).catch((err) => this.report(err));
    }
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

  protected async renew(h: HeldLeadership & { renewAt: number }): Promise<void> {
    const sentAt = monotonicNow();
    try {
      const { clusterId, contenderId } = this;
      const res = await this.renewal(h, { clusterId, leadership: true, contenderId, sessionId: h.sessionId }, () =>
        this.post<{ leadership: LeadershipInfo }>('renew', { contenderId, sessionId: h.sessionId, ttlMs: this.ttlMs }, this.wakeSignal()),
      );
      if (this.held === h) {
        h.leadership = res.leadership;
        this.extend(h, res.leadership.remainingMs, sentAt);
      }
    } catch (err) {
      // 409: it is not ours any more; 403 (`NotLeadershipOwner`): it was won with another
      // access token, so no renewal of ours can ever succeed.
      if (!(err instanceof NotLeaderError || err instanceof AuthError)) throw err;
      if (err instanceof AuthError) this.report(err);
      this.lost(h);
    }
  }

  protected revoke(reason: RevokeReason): void {
    if (!this.republish) this.published.clear();
    super.revoke(reason);
  }

  /** A campaign is never cut short by `signal`: its grant would be lost unreleased. */
  private post<T>(action: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    return this.http.request<T>(`${this.base}/leadership/${action}`, {
      body,
      signal,
      timeoutMs: this.requestTimeoutMs,
    });
  }
}
