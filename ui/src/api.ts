/**
 * The console's link to the server: JSON requests with the bearer token of this tab, and the
 * watch websocket, reconnected with `since` after any drop. The token lives in
 * sessionStorage only: it goes with the tab, never to disk.
 */

const TOKEN_KEY = 'leasehold.token';

export function getToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API ({error, message, statusCode}). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Options {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

async function send(path: string, opts: Options): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method: opts.method ?? 'GET', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  if (!res.ok) {
    const text = await res.text();
    let err: { error?: string; message?: string } = {};
    try {
      err = JSON.parse(text);
    } catch {
      // not JSON: the text says it
    }
    throw new ApiError(res.status, err.error ?? String(res.status), err.message ?? text);
  }
  return res;
}

/** A JSON answer; `null` for a 404 when `missing` allows it. */
export async function api<T>(path: string, opts: Options = {}): Promise<T> {
  return (await send(path, opts)).json() as Promise<T>;
}

/** As api, but a 404 answers null (a store entry that is not there). */
export async function maybe<T>(path: string): Promise<T | null> {
  try {
    return await api<T>(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

/** The size in bytes of a binary answer (an execution plan), null when there is none. */
export async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await (await send(path, {})).arrayBuffer()).byteLength;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export const enc = encodeURIComponent;

// --- wire shapes (openapi.yaml) -------------------------------------------------------------

export interface Leader {
  contenderId: string;
  sessionId: string;
  fencingToken: number;
  address: string | null;
  acquiredAt: string;
  leaseRemainingMs: number;
}

export interface ComponentLeader {
  component: string;
  leader: Leader | null;
}

export type WatchMessage =
  | { type: 'snapshot'; index: number; leaders: ComponentLeader[] }
  | { type: 'change'; event: string; component: string; leader: Leader | null; index: number };

export interface Session {
  name: string | null;
  role: 'read' | 'contend' | 'write' | 'admin';
  clusters: string[];
}

export interface ClusterSummary {
  clusterId: string;
  /** The cluster-wide components' leaders. */
  leaders: Record<string, Leader | null>;
  leadership: { contenderId: string; sessionId: string; token: number; ttlMs: number; remainingMs: number; publishedCount: number } | null;
  jobCount: number;
  lastChangeAt: string | null;
  index: number | null;
}

/** One leadership of a component (or of the cluster: `leadership`), newest first. */
export interface HistoryEntry {
  component: string;
  contenderId: string;
  sessionId: string;
  token: number;
  address: string | null;
  grantedAt: string;
  endedAt: string | null;
  ended: 'resigned' | 'expired' | 'revoked' | 'lost' | null;
  takeoverGapMs: number | null;
}

// --- the watch ------------------------------------------------------------------------------

export type WatchState = 'connecting' | 'live' | 'reconnecting';

/** base64url of a string's bytes, for the bearer subprotocol (src/http/auth.ts). */
function base64url(s: string): string {
  return btoa(unescape(encodeURIComponent(s))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * A cluster's watch: every message to `onMessage`, its state to `onState`. After a drop it
 * reconnects, with `since` the index of the last message, after a pause that grows to 5 s;
 * the server then sends exactly the missed changes (or a snapshot). A browser cannot set
 * an Authorization header on a websocket: the token goes as a subprotocol.
 */
export class Watch {
  private ws: WebSocket | null = null;
  private index: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempts = 0;
  private stopped = false;

  constructor(
    private readonly clusterId: string,
    private readonly onMessage: (m: WatchMessage) => void,
    private readonly onState: (s: WatchState, index: number | undefined) => void,
  ) {
    this.open();
  }

  private open(): void {
    const since = this.index === undefined ? '' : `?since=${this.index}`;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const token = getToken();
    const protocols = token ? ['leasehold', `leasehold.bearer.${base64url(token)}`] : ['leasehold'];
    const ws = new WebSocket(`${scheme}://${location.host}/v1/clusters/${enc(this.clusterId)}/watch${since}`, protocols);
    this.ws = ws;
    this.onState(this.attempts === 0 ? 'connecting' : 'reconnecting', this.index);
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as WatchMessage;
      this.index = m.index;
      if (this.attempts > 0 || m.type === 'snapshot') this.onState('live', this.index);
      this.attempts = 0;
      this.onMessage(m);
    };
    ws.onopen = () => {
      // With since and nothing missed, the server sends nothing: being open is being live.
      this.attempts = 0;
      this.onState('live', this.index);
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      this.attempts++;
      this.onState('reconnecting', this.index);
      this.timer = setTimeout(() => this.open(), Math.min(5000, 250 * 2 ** Math.min(this.attempts - 1, 5)));
    };
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }
}
