/** Leaders and change records as the Lua scripts encode them. */
import type { Component } from './ids.js';

export interface Leader {
  contenderId: string;
  sessionId: string;
  fencingToken: number;
  /** null until the leader confirmed it. */
  address: string | null;
  /** Milliseconds since the epoch, by Redis's clock. */
  acquiredAt: number;
}

export type ChangeEvent = 'granted' | 'confirmed' | 'revoked' | 'expired';

export interface Change {
  index: number;
  /** The cluster's index before this change: a change whose prev is not the index a
   * server holds tells it that it missed something. */
  prev: number;
  event: ChangeEvent;
  component: Component;
  /** The holder after the change; null after revoked and expired. */
  leader: Leader | null;
  /** Lease time left when the change was made. */
  ttlMs: number;
}

interface RawLeader {
  cid: string;
  sid: string;
  tok: number;
  addr: string | null;
  at: number;
}

interface RawChange {
  i: number;
  p: number;
  e: ChangeEvent;
  c: string;
  l: RawLeader | null;
  r: number;
}

/** The takeover gap (ms) a grant's script answers with its leader (lib/history.lua,
 * with_gap), or null when the history knows none. */
export function takeoverGapOf(json: string | null | false): number | null {
  const m = json ? /,"g":([0-9]+)\}$/.exec(json) : null;
  return m ? Number(m[1]) : null;
}

export function parseLeader(json: string | null | false): Leader | null {
  return json ? toLeader(JSON.parse(json) as RawLeader) : null;
}

function toLeader(raw: RawLeader | null): Leader | null {
  if (!raw) return null;
  return {
    contenderId: raw.cid,
    sessionId: raw.sid,
    fencingToken: raw.tok,
    address: raw.addr,
    acquiredAt: raw.at,
  };
}

/** A lease's new TTL after a renewal: published without an index, several in one message. */
export interface LeaseNotice {
  component: Component;
  sessionId: string;
  ttlMs: number;
}

/** The tag that begins a message of new TTLs: `ttls <origin> <notices as JSON>`. A change
 * is its JSON payload, which begins with `{`. */
const TTLS = 'ttls ';

/** The server that published a message of new TTLs ('' for none), or null for a change;
 * read from the message's own field, without decoding its notices. */
export function messageOrigin(message: string): string | null {
  if (!message.startsWith(TTLS)) return null;
  const end = message.indexOf(' ', TTLS.length);
  return end === -1 ? null : message.slice(TTLS.length, end);
}

/** What a cluster's pub/sub channel carries: changes, and lease notices. */
export function parseMessage(message: string): Change | LeaseNotice[] {
  if (!message.startsWith(TTLS)) return toChange(JSON.parse(message) as RawChange);
  const body = message.indexOf(' ', TTLS.length) + 1;
  if (body === 0) throw new Error('a message of new TTLs without notices');
  const ttls = JSON.parse(message.slice(body)) as Array<[Component, string, number]>;
  return ttls.map(([component, sessionId, ttlMs]) => ({ component, sessionId, ttlMs }));
}

export function parseChange(json: string): Change {
  return toChange(JSON.parse(json) as RawChange);
}

function toChange(raw: RawChange): Change {
  return {
    index: raw.i,
    prev: raw.p,
    event: raw.e,
    component: raw.c,
    leader: toLeader(raw.l),
    ttlMs: raw.r,
  };
}

export function sameLeader(a: Leader | null, b: Leader | null): boolean {
  if (a === null || b === null) return a === b;
  return a.sessionId === b.sessionId && a.address === b.address && a.fencingToken === b.fencingToken;
}
