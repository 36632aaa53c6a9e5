/**
 * The client's renewal stream (docs/api.md, "Renewals over a stream"): one websocket to
 * `GET /v1/renewals`, shared by every contender of a client, that carries their renewals
 * and the server's answers, and tells of a lease the server saw end (`lost`).
 *
 * It never stands in the way of a renewal: when the stream is not open, `renew` answers
 * `undefined` and the contender renews over HTTP (meanwhile the stream is opened, or
 * reopened with backoff). A server without the route (404 on the upgrade, an older one)
 * is renewed over HTTP for good. A renewal whose stream closes before its answer has an
 * unknown outcome, as a 503 over HTTP: it rejects with `UnavailableError`, and the
 * contender's next try goes over HTTP.
 */
import WebSocket from 'ws';
import { errorFor, UnavailableError } from './errors.js';
import type { Http } from './http.js';
import { backoffMs } from './timing.js';

/** What names a lease on the stream: a per-component lease, or a cluster's leadership. */
export type StreamedLease = { clusterId: string; contenderId: string; sessionId: string } & ({ component: string } | { leadership: true });

/** Upgrade answers of a server that has no renewal stream. */
const NO_STREAM = new Set([400, 404, 405, 426, 501, 505]);

interface Pending {
  resolve: (body: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class RenewalStream {
  /** Renewals answered over the stream, those left to HTTP (stream not open), and those
   * whose stream closed before their answer. */
  readonly stats = { streamed: 0, overHttp: 0, cut: 0 };
  private socket: WebSocket | null = null;
  private unsupported = false;
  private failures = 0;
  /** No reconnect before this (Date.now()), after a failure. */
  private retryAt = 0;
  private nextId = 1;
  private users = 0;
  private readonly pending = new Map<number, Pending>();
  /** sessionId -> what to call when the server tells the lease is lost. */
  private readonly watchers = new Map<string, () => void>();

  constructor(private readonly http: Http) {}

  /** Renewals sent over the stream and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Whether renewals go over the stream now. */
  get open(): boolean {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  /** A contender starts using the stream: it opens now, and closes once no contender uses
   * it (so that it keeps no process alive); the answer ends this use. */
  use(): () => void {
    this.users++;
    this.connect();
    let used = true;
    return () => {
      if (!used) return;
      used = false;
      if (--this.users === 0) this.close();
    };
  }

  /** Opens the stream unless it is open, opening, backing off, or unsupported. */
  connect(): void {
    if (this.unsupported || this.socket !== null || Date.now() < this.retryAt) return;
    const url = new URL(`${this.http.baseUrl}/v1/renewals`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url, {
      headers: this.http.token ? { authorization: `Bearer ${this.http.token}` } : {},
      handshakeTimeout: this.http.timeoutMs,
    });
    this.socket = socket;
    socket.on('open', () => {
      this.failures = 0;
      if (this.users === 0) socket.close(1000);
    });
    socket.on('message', (data) => this.receive(data.toString()));
    socket.on('unexpected-response', (_req, res) => {
      if (NO_STREAM.has(res.statusCode ?? 0)) this.unsupported = true;
      res.resume();
      socket.terminate();
    });
    socket.on('error', () => {}); // followed by close
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.retryAt = Date.now() + backoffMs(this.failures++, 100, 5000);
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        this.stats.cut++;
        p.reject(new UnavailableError('Unavailable', 'the renewal stream closed before the answer: the outcome is unknown'));
      }
    });
  }

  /**
   * Renews over the stream: the server's answer (the body of the HTTP renewal's), or its
   * error as `errorFor` makes it; `undefined` when the stream is not open (renew over
   * HTTP). Times out after `timeoutMs` (outcome unknown), and drops the stream then, which
   * a server or network that stopped answering would otherwise keep.
   */
  renew<T>(lease: StreamedLease, ttlMs: number, timeoutMs: number, signal?: AbortSignal): Promise<T> | undefined {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      this.connect();
      this.stats.overHttp++;
      return undefined;
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        this.pending.delete(id);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        done();
        socket.terminate();
        reject(new UnavailableError('Unavailable', `a streamed renewal timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (body) => {
          done();
          this.stats.streamed++;
          resolve(body as T);
        },
        reject: (err) => {
          done();
          reject(err);
        },
        timer,
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.send(JSON.stringify({ id, ...lease, ttlMs }));
    });
  }

  /** Calls `onLost` when the server tells that `sessionId`'s lease ended; undone by the
   * function it answers. */
  watch(sessionId: string, onLost: () => void): () => void {
    this.watchers.set(sessionId, onLost);
    return () => {
      if (this.watchers.get(sessionId) === onLost) this.watchers.delete(sessionId);
    };
  }

  /** Closes the stream; it opens again on the next renewal. */
  close(): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.close(1000);
  }

  private receive(text: string): void {
    let m: { id?: number; type?: string; sessionId?: string; statusCode?: number; error?: string };
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (m.type === 'lost' && m.sessionId) {
      const onLost = this.watchers.get(m.sessionId);
      this.watchers.delete(m.sessionId);
      onLost?.();
      return;
    }
    const p = typeof m.id === 'number' ? this.pending.get(m.id) : undefined;
    if (!p) return;
    if (m.error !== undefined) {
      const { id: _id, ...body } = m;
      p.reject(errorFor(m.statusCode ?? 500, body));
    } else p.resolve(m);
  }
}
