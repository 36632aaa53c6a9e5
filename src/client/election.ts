/**
 * A contender for one component (Flink's `LeaderElection`): campaigns, renews in the
 * background, and says `granted` and `revoked`.
 * Its step-down clock and loop are `Contender`'s (contender.ts).
 */
import { LeaseholdError, NotLeaderError } from './errors.js';
import { componentPath, seg, type Http } from './http.js';
import { Contender, type ContenderOptions, type RevokeReason } from './contender.js';
import { monotonicNow } from './timing.js';
import type { CampaignResult, Component, Leader } from './types.js';

export type { RevokeReason };

export interface LeaderElectionOptions extends ContenderOptions {
  clusterId: string;
  component: Component;
  /** Published with the grant (Flink's `confirmLeadership`); see also `confirm()`. */
  address?: string;
  /** Consul's lock-delay: when a lease granted to this contender expires (not when it
   * resigns), nobody is granted the component for this long (ms; default 0). */
  lockDelayMs?: number;
}

export interface Leadership {
  sessionId: string;
  fencingToken: number;
  /** The lease as the server last answered it. */
  leader: Leader;
  /** On `monotonicNow()`'s clock: until when this contender may act as leader. */
  validUntil: number;
}

export class LeaderElection extends Contender<Leadership> {
  readonly clusterId: string;
  readonly component: Component;
  readonly lockDelayMs: number;
  private address: string | undefined;
  private readonly path: string;

  constructor(
    private readonly http: Http,
    options: LeaderElectionOptions,
  ) {
    super(options, http.renewals);
    this.clusterId = options.clusterId;
    this.component = options.component;
    this.address = options.address;
    this.lockDelayMs = options.lockDelayMs ?? 0;
    this.path = `/v1/clusters/${seg(this.clusterId)}/leaders/${componentPath(this.component)}`;
  }

  /** Publishes the leader's address; kept for later grants too. */
  async confirm(address: string): Promise<Leader> {
    this.address = address;
    const l = this.current();
    const res = await this.post<{ leader: Leader }>('confirm', { sessionId: l.sessionId, address });
    return res.leader;
  }

  protected describeNotLeading(): string {
    return this.component;
  }

  protected release(session: string): Promise<unknown> {
    return this.post('resign', { sessionId: session });
  }

  /** A lock delay says how long it lasts: campaign again when it ends, not before. */
  protected retryDelayMs(err: unknown, failures: number): number {
    return lockDelayLeft(err) ?? super.retryDelayMs(err, failures);
  }

  protected async campaignOnce(): Promise<void> {
    const sentAt = monotonicNow();
    const res = await this.post<CampaignResult>('campaign', {
      ttlMs: this.ttlMs,
      ...(this.lockDelayMs ? { lockDelayMs: this.lockDelayMs } : {}),
      ...(this.address === undefined ? {} : { address: this.address }),
    });
    if (res.granted) {
      this.session = res.leader.sessionId;
      const { leader } = res;
      const h = this.holding({ sessionId: leader.sessionId, fencingToken: leader.fencingToken, leader }, leader.leaseRemainingMs, sentAt);
      if (this.running && h) await this.hold(h);
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

  protected async renew(h: Leadership & { renewAt: number }): Promise<void> {
    const sentAt = monotonicNow();
    try {
      const { clusterId, component, contenderId } = this;
      const res = await this.renewal(h, { clusterId, component, contenderId, sessionId: h.sessionId }, () =>
        this.post<{ leader: Leader }>('renew', { sessionId: h.sessionId, ttlMs: this.ttlMs }, this.wakeSignal()),
      );
      if (this.held === h) {
        h.leader = res.leader;
        this.extend(h, res.leader.leaseRemainingMs, sentAt);
      }
    } catch (err) {
      if (!(err instanceof NotLeaderError)) throw err;
      this.lost(h);
    }
  }

  /** A campaign is never cut short by `signal`: its grant would be lost unreleased. */
  private post<T>(action: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    return this.http.request<T>(`${this.path}/${action}`, {
      body: { contenderId: this.contenderId, ...body },
      signal,
      timeoutMs: this.requestTimeoutMs,
    });
  }
}

/** The time left (ms) of a `409 LockDelay` answer, else undefined. */
function lockDelayLeft(err: unknown): number | undefined {
  if (!(err instanceof LeaseholdError) || err.code !== 'LockDelay') return undefined;
  const ms = err.details.retryAfterMs;
  return typeof ms === 'number' && ms > 0 ? ms : undefined;
}
