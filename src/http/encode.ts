/** How leaders, snapshots and changes look on the wire (their schemas: schemas.ts). */
import type { Static } from 'typebox';
import type { Change, Component, ComponentState, Leader, LeaderState, Snapshot, WatchMessage } from '../ha/index.js';
import type { LeaderObject } from './schemas.js';

/** A leader as answers carry it (schemas.ts); the texts below are put together in its shape. */
export type LeaderJson = Static<typeof LeaderObject>;

const isoCache = new WeakMap<Leader, string>();

function iso(l: Leader): string {
  let s = isoCache.get(l);
  if (s === undefined) {
    s = new Date(l.acquiredAt).toISOString();
    isoCache.set(l, s);
  }
  return s;
}

export function leaderJson(l: Leader | null, remainingMs: number): LeaderJson | null {
  if (!l) return null;
  return {
    contenderId: l.contenderId,
    sessionId: l.sessionId,
    fencingToken: l.fencingToken,
    address: l.address,
    acquiredAt: iso(l),
    leaseRemainingMs: remainingMs,
  };
}

const prefixCache = new WeakMap<Leader, string>();

/**
 * A leader as JSON text, for the hottest reads: all but its lease time is encoded once
 * per leader, and the answer is put together as a string (sent as it is, not serialized).
 */
export function stateText(s: LeaderState | null): string {
  if (!s) return 'null';
  const l = s.leader;
  let prefix = prefixCache.get(l);
  if (prefix === undefined) {
    // Session ids are UUIDs, so only the contender and the address need escaping.
    prefix =
      '{"contenderId":' + JSON.stringify(l.contenderId) + ',"sessionId":"' + l.sessionId + '","fencingToken":' +
      l.fencingToken + ',"address":' + (l.address === null ? 'null' : JSON.stringify(l.address)) +
      ',"acquiredAt":"' + iso(l) + '","leaseRemainingMs":';
    prefixCache.set(l, prefix);
  }
  return prefix + s.remainingMs + '}';
}

/** Whole answers kept per leader, with what they were made of. */
interface Kept {
  ms: number;
  index: string;
  text: string;
}

const readCache = new WeakMap<Leader, Kept>();

/**
 * A leader read's answer. Under load many reads fall in the same millisecond of the same
 * index, so the last one made is kept per leader and answered again while both hold: its
 * text is then neither put together nor flattened again.
 */
export function leaderText(component: Component, s: LeaderState | null, indexText: string): string {
  const c = s ? readCache.get(s.leader) : undefined;
  if (c !== undefined && c.ms === s!.remainingMs && c.index === indexText) return c.text;
  const text = '{"component":"' + component + '","leader":' + stateText(s) + ',"index":' + indexText + '}';
  if (s) readCache.set(s.leader, { ms: s.remainingMs, index: indexText, text });
  return text;
}

const renewedCache = new WeakMap<Leader, { ms: number; text: string }>();

/** A renewal's answer. Its lease time is the TTL just set, the same from one renewal to the
 * next, so the whole text is kept per leader: made, and flattened when first sent, once. */
export function renewedText(s: LeaderState): string {
  let c = renewedCache.get(s.leader);
  if (c === undefined || c.ms !== s.remainingMs) {
    c = { ms: s.remainingMs, text: '{"leader":' + stateText(s) + '}' };
    renewedCache.set(s.leader, c);
  }
  return c.text;
}

/** Components are validated names, safe to put in JSON as they are. */
export function componentsText(states: ComponentState[]): string {
  let text = '[';
  for (let i = 0; i < states.length; i++) {
    if (i > 0) text += ',';
    text += '{"component":"' + states[i].component + '","leader":' + stateText(states[i].leader) + '}';
  }
  return text + ']';
}

export function stateJson(s: LeaderState | null): LeaderJson | null {
  return s ? leaderJson(s.leader, s.remainingMs) : null;
}

const changeCache = new WeakMap<Change, Buffer>();

/** A change is encoded once, to bytes, however many watchers it goes to (a socket then
 * neither measures nor encodes it again); its lease time is as of the change. */
function changeMessage(c: Change): Buffer {
  let b = changeCache.get(c);
  if (b === undefined) {
    b = Buffer.from(
      JSON.stringify({
        type: 'change',
        event: c.event,
        component: c.component,
        leader: leaderJson(c.leader, c.ttlMs),
        index: c.index,
      }),
    );
    changeCache.set(c, b);
  }
  return b;
}

function snapshotMessage(s: Snapshot): string {
  return '{"type":"snapshot","index":' + s.index + ',"leaders":' + componentsText(s.leaders) + '}';
}

/** A watch message as a websocket text frame's payload. */
export function watchMessage(m: WatchMessage): string | Buffer {
  return m.type === 'change' ? changeMessage(m.change) : snapshotMessage(m);
}
