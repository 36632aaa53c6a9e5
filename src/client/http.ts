/** One HTTP connection point to a leasehold server: URLs, the bearer token, timeouts, and
 * error answers turned into typed errors. Uses Node's own fetch (keep-alive). */
import { errorFor, UnavailableError } from './errors.js';
import { RenewalStream } from './renewals.js';

export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:8080` (default: `LEASEHOLD_URL`, else that). */
  url?: string;
  /** A bearer token (default: `LEASEHOLD_TOKEN`). */
  token?: string;
  /** Timeout of a request, long-polls excepted (default 10 s). */
  timeoutMs?: number;
}

export interface RequestOptions {
  method?: string;
  /** JSON-encoded unless bytes or a stream. */
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Answer the raw response (for bytes), not parsed JSON. */
  raw?: boolean;
}

export class Http {
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly timeoutMs: number;
  private stream: RenewalStream | undefined;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.url ?? process.env.LEASEHOLD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.token = options.token ?? (process.env.LEASEHOLD_TOKEN || undefined);
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The renewal stream of this server's contenders (opened when one starts). */
  get renewals(): RenewalStream {
    return (this.stream ??= new RenewalStream(this));
  }

  /** `path` under the server, e.g. `/v1/clusters/c/leaders`. */
  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(path, options);
    if (options.raw) return res as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The response, or the typed error of an error answer; network errors and timeouts
   * become `UnavailableError`. */
  async send(path: string, options: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: BodyInit | undefined;
    if (options.body instanceof Uint8Array || isStream(options.body)) {
      headers['content-type'] ??= 'application/octet-stream';
      body = options.body as BodyInit;
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const method = options.method ?? (body === undefined ? 'GET' : 'POST');
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        body,
        signal,
        ...(isStream(body) ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      const why = timeout.aborted ? 'timed out' : `failed: ${(err as Error).cause ?? (err as Error).message}`;
      throw new UnavailableError('Unavailable', `${method} ${path} ${why}`, undefined, { cause: err });
    }
    if (res.ok || res.status === 304) return res;
    const text = await res.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { message: `the server answered ${res.status}: ${text.slice(0, 200)}` };
    }
    throw errorFor(res.status, parsed);
  }
}

/** A stream, or any async iterable of bytes (a Uint8Array is iterable, but not async). */
function isStream(body: unknown): boolean {
  return typeof body === 'object' && body !== null && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

/** Path segment escaping for ids that come from callers. */
export const seg = encodeURIComponent;

/** `jobmanager/abc…` keeps its slash: it is two segments of the route. */
export function componentPath(component: string): string {
  return component.split('/').map(seg).join('/');
}
