/**
 * A follower's view of a cluster's leaders (Flink's `LeaderRetrievalService`): the
 * current leader of each component, and every change, over the websocket watch.
 *
 * It reconnects by itself (exponential backoff with jitter) and resumes with `since`, so
 * that every change arrives once and in index order across server and Redis restarts.
 * When the websocket cannot be had at all (a proxy that refuses upgrades), it falls back
 * to long-polling, which sees states rather than single changes: it emits `snapshot`
 * and `leader`, not `change`.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { componentPath, seg, type Http } from './http.js';
import { backoffMs, nextEvent, sleep } from './timing.js';
import type { Change, ComponentLeader, Leader, LeadersState } from './types.js';

export interface LeaderRetrievalOptions {
  clusterId: string;
  /** Components to follow (default: all of the cluster's). */
  components?: string[];
  /** Start after this index: the changes after it are replayed. */
  since?: number;
  /** `auto` (default): websocket, long-poll if the server or a proxy refuses upgrades. */
  transport?: 'auto' | 'websocket' | 'long-poll';
  /** Reconnect backoff bounds (default 100 ms to 5 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A socket silent this long (no message, no ping) is dropped and reconnected
   * (default 40 s; the server pings every 15 s). */
  idleTimeoutMs?: number;
}

interface Events {
  /** A full picture of the followed components (on connect, or after the server re-read
   * its state); it replaces what was known. */
  snapshot: [leaders: ComponentLeader[], index: number];
  /** One change, in index order, each once (websocket only). */
  change: [change: Change];
  /** A component's leader is now `leader` (after a change or a snapshot). */
  leader: [component: string, leader: Leader | null];
  connected: [transport: 'websocket' | 'long-poll'];
  disconnected: [reason: string];
  /** Failures, for logging; it retries by itself. Emitted only while someone listens. */
  error: [err: Error];
}

/** An HTTP answer to an upgrade that says websockets will not work here. */
const NO_UPGRADE = new Set([400, 404, 405, 426, 501, 505]);

export class LeaderRetrieval extends EventEmitter<Events> {
  /** The index of the last change or snapshot seen (-1 before the first). */
  index: number;
  private readonly leaders = new Map<string, Leader | null>();
  private readonly filter: Set<string> | null;
  private transport: 'auto' | 'websocket' | 'long-poll';
  private socket: WebSocket | null = null;
  private closed = false;
  private failures = 0;
  private readonly stop = new AbortController();
  private idle: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly http: Http,
    private readonly options: LeaderRetrievalOptions,
  ) {
    super();
    this.index = options.since ?? -1;
    this.transport = options.transport ?? 'auto';
    this.filter = options.components?.length ? new Set(options.components.map(normalise)) : null;
  }

  start(): this {
    if (this.transport === 'long-poll') void this.poll();
    else this.connect();
    return this;
  }

  /** The known leader of `component`: null when it has none, undefined when not known yet. */
  leader(component: string): Leader | null | undefined {
    return this.leaders.get(normalise(component));
  }

  /** Every known component with its leader, as `GET leaders` lists them: the singletons
   * always, job managers while they have a leader. */
  all(): ComponentLeader[] {
    return [...this.leaders]
      .filter(([component, leader]) => leader || !component.startsWith('jobmanager/'))
      .map(([component, leader]) => ({ component, leader }));
  }

  /** Resolves with the leader of `component` once it has one. */
  waitForLeader(component: string, signal?: AbortSignal): Promise<Leader> {
    const c = normalise(component);
    const now = this.leaders.get(c);
    if (now) return Promise.resolve(now);
    return nextEvent(this, 'leader', (which: string, leader: Leader | null) => (which === c && leader ? leader : undefined), signal);
  }

  close(): void {
    this.closed = true;
    this.stop.abort();
    clearTimeout(this.idle);
    clearTimeout(this.retry);
    this.socket?.terminate();
  }

  private connect(): void {
    if (this.closed) return;
    const url = new URL(`${this.http.baseUrl}/v1/clusters/${seg(this.options.clusterId)}/watch`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.filter) url.searchParams.set('components', [...this.filter].join(','));
    if (this.index >= 0) url.searchParams.set('since', String(this.index));
    const socket = new WebSocket(url, {
      headers: this.http.token ? { authorization: `Bearer ${this.http.token}` } : {},
      handshakeTimeout: this.http.timeoutMs,
    });
    this.socket = socket;
    let refused: number | undefined;
    socket.on('open', () => {
      this.failures = 0;
      this.touch(socket);
      this.emit('connected', 'websocket');
    });
    socket.on('ping', () => this.touch(socket));
    socket.on('message', (data) => {
      this.touch(socket);
      this.onMessage(JSON.parse(data.toString()));
    });
    socket.on('unexpected-response', (_req, res) => {
      refused = res.statusCode;
      res.resume();
      socket.terminate();
    });
    socket.on('error', (err) => this.report(err));
    socket.on('close', (code) => {
      clearTimeout(this.idle);
      if (this.socket !== socket || this.closed) return;
      this.socket = null;
      this.emit('disconnected', refused ? `upgrade refused with ${refused}` : `closed (${code})`);
      if (refused && NO_UPGRADE.has(refused) && this.transport === 'auto') {
        this.transport = 'long-poll';
        void this.poll();
        return;
      }
      const delay = backoffMs(this.failures++, this.options.minBackoffMs ?? 100, this.options.maxBackoffMs ?? 5000);
      this.retry = setTimeout(() => this.connect(), delay);
    });
  }

  /** Drops a socket that has gone silent: the server pings, so silence means it is gone. */
  private touch(socket: WebSocket): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => socket.terminate(), this.options.idleTimeoutMs ?? 40_000);
  }

  private onMessage(m: { type: 'snapshot'; index: number; leaders: ComponentLeader[] } | ({ type: 'change' } & Change)): void {
    if (m.type === 'snapshot') this.applySnapshot(m.leaders, m.index);
    else if (m.index > this.index) {
      // A change at or below the index was seen before a reconnect: skip, never repeat.
      this.index = m.index;
      const { type: _type, ...change } = m;
      this.leaders.set(change.component, change.leader);
      this.emit('change', change);
      this.emit('leader', change.component, change.leader);
    }
  }

  private applySnapshot(leaders: ComponentLeader[], index: number): void {
    const before = new Map(this.leaders);
    this.leaders.clear();
    for (const { component, leader } of leaders) this.leaders.set(component, leader);
    this.index = Math.max(this.index, index);
    this.emit('snapshot', leaders, index);
    for (const [component, leader] of this.leaders) {
      if (!sameLeader(before.get(component), leader)) this.emit('leader', component, leader);
    }
    for (const [component, leader] of before) {
      if (leader && !this.leaders.has(component)) this.emit('leader', component, null);
    }
  }

  /** Long-poll: each answer is the state once the index passed the last one seen. */
  private async poll(): Promise<void> {
    const one = this.filter?.size === 1 ? [...this.filter][0] : null;
    const path = `/v1/clusters/${seg(this.options.clusterId)}/leaders${one ? `/${componentPath(one)}` : ''}`;
    let connected = false;
    while (!this.closed) {
      try {
        const query = this.index >= 0 ? `?index=${this.index}&wait=30s` : '';
        const res = await this.http.request<LeadersState & { component?: string; leader?: Leader | null }>(path + query, {
          signal: this.stop.signal,
          timeoutMs: 35_000,
        });
        if (!connected) {
          connected = true;
          this.failures = 0;
          this.emit('connected', 'long-poll');
        }
        const leaders = one ? [{ component: one, leader: res.leader ?? null }] : res.leaders.filter((l) => !this.filter || this.filter.has(l.component));
        if (res.index !== this.index) this.applySnapshot(leaders, res.index);
      } catch (err) {
        if (this.closed) return;
        this.report(err);
        if (connected) this.emit('disconnected', (err as Error).message);
        connected = false;
        await sleep(backoffMs(this.failures++, this.options.minBackoffMs ?? 100, this.options.maxBackoffMs ?? 5000), this.stop.signal);
      }
    }
  }

  private report(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err as Error);
  }
}

/** Job ids are answered in lower case. */
function normalise(component: string): string {
  return component.startsWith('jobmanager/') ? component.toLowerCase() : component;
}

function sameLeader(a: Leader | null | undefined, b: Leader | null): boolean {
  return a === b || (!!a && !!b && a.sessionId === b.sessionId && a.address === b.address);
}
