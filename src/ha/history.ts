/**
 * The leadership history of a cluster (docs/design.md §3.3): every grant of a component's
 * leader, and of the cluster's leadership, with how and when it ended and the takeover
 * gap before it. The scripts that make the changes write it (scripts/lib/history.lua);
 * this reads it in pages, and records the leaders Redis lost (a failover, a rollback),
 * which only a server that acknowledged them can tell.
 */
import type { Leader } from './changes.js';
import type { ClusterKeys, Component } from './ids.js';
import { redisCall } from './redisCall.js';
import { decodeHistoryLost, decodeHistoryRead } from './replies.js';
import type { Scripts } from './scripts.js';
import { PAGE_MAX, type Page, type PageRequest } from './paging.js';

/** The history's name for a cluster's leadership, beside its components. */
export const LEADERSHIP_COMPONENT = 'leadership';
export const ENDINGS = ['resigned', 'expired', 'revoked', 'lost'] as const;
export type Ending = (typeof ENDINGS)[number];

export interface HistoryRetention {
  /** The most entries a cluster's history keeps (0: no history). */
  maxEntries: number;
  /** The oldest entry kept, by its grant (ms). */
  maxAgeMs: number;
}

export const DEFAULT_HISTORY: HistoryRetention = { maxEntries: 10_000, maxAgeMs: 30 * 86_400_000 };

/** ARGV[3] of the scripts that record changes: the change log's size, then the history's
 * retention (scripts/lib/leadership.lua). */
export function retentionArg(changeLogSize: number, h: HistoryRetention): string {
  return `${changeLogSize} ${h.maxEntries} ${h.maxAgeMs}`;
}

export interface HistoryEntry {
  component: Component;
  contenderId: string;
  sessionId: string;
  token: number;
  address: string | null;
  /** ms since the epoch, by Redis's clock. */
  grantedAt: number;
  /** null while it leads (or when the history never heard of its end). */
  endedAt: number | null;
  ended: Ending | null;
  /** ms from the end of the component's previous leader to this grant; null if none known. */
  takeoverGapMs: number | null;
}

export interface HistoryQuery extends PageRequest {
  /** A component, or LEADERSHIP_COMPONENT; all when absent. */
  component?: Component;
  /** Entries recorded from, and up to, these times (ms, inclusive). */
  from?: number;
  to?: number;
}

/** A stream id: the position of an entry, and of a cursor. */
export const HISTORY_POSITION = /^[0-9]{1,16}-[0-9]{1,20}$/;
/** The most entries one read looks at, matching or not: a filter that matches few of many
 * answers a short page with a cursor rather than reading the whole history at once. */
const BUDGET = 5_000;

export class LeadershipHistory {
  constructor(
    /** The reads' connection (the stores'); */
    private readonly reads: Scripts,
    /** the writes' (the leases'). */
    private readonly writes: Scripts,
    private readonly changeLogSize: number,
    private readonly retention: HistoryRetention,
  ) {}

  /** A page of the history, newest first. */
  async read(keys: ClusterKeys, q: HistoryQuery): Promise<Page<HistoryEntry>> {
    const limit = Math.min(q.limit, PAGE_MAX);
    const before = q.after !== undefined ? `(${q.after}` : q.to !== undefined ? String(q.to) : '+';
    // The writes trim a few entries each: one past the age may wait for the next write, but
    // is never answered.
    const min = String(Math.max(q.from ?? 0, Date.now() - this.retention.maxAgeMs));
    const r = await redisCall(() =>
      this.reads.run('history_read', [keys.history, keys.historyEntries], [before, min, q.component ?? '', limit, Math.max(BUDGET, limit)]),
    );
    return decodeHistoryRead(r);
  }

  /**
   * Records `leader` of `component`, which this server acknowledged and Redis no longer
   * has, as `lost` (history_lost.lua: once, whoever asks). Answers whether it recorded it.
   */
  async lost(keys: ClusterKeys, component: Component, leader: Leader): Promise<boolean> {
    const json = JSON.stringify({ cid: leader.contenderId, sid: leader.sessionId, tok: leader.fencingToken, addr: leader.address, at: leader.acquiredAt });
    const r = await redisCall(() => this.writes.run('history_lost', [keys.index, keys.log, ...keys.historyKeys], [keys.channel, 0, retentionArg(this.changeLogSize, this.retention), component, json]));
    return decodeHistoryLost(r);
  }
}

/** An entry as history_read.lua answers it: its grant's JSON, the address confirmed since,
 * and its end. */
export function parseHistoryEntry(grant: string, address: string | false | null, end: string | false | null): HistoryEntry {
  const g = JSON.parse(grant) as { c: string; t: number; g: number | null; l: { cid: string; sid: string; tok: number; addr: string | null } };
  const space = end ? end.indexOf(' ') : -1;
  return {
    component: g.c,
    contenderId: g.l.cid,
    sessionId: g.l.sid,
    token: g.l.tok,
    address: address || g.l.addr,
    grantedAt: g.t,
    endedAt: end ? Number(end.slice(0, space)) : null,
    ended: end ? (end.slice(space + 1) as Ending) : null,
    takeoverGapMs: g.g,
  };
}
