/**
 * A TCP proxy for tests: 127.0.0.1:port forwards to 127.0.0.1:targetPort. `blackhole()`
 * stops forwarding bytes but keeps every socket open, as a partition does: what is sent
 * meanwhile is held (as TCP would hold it) and delivered in order on `restore()`.
 * `blackhole('answers')` holds only what the server sends, so that a request is applied
 * and its answer lost. A delay (at start, or changed while it runs: a slow link) postpones
 * every byte and close alike, in order.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

type Direction = 'toServer' | 'toClient';
/** A chunk, or the peer's end or close, delivered in order after the chunks before it. */
type Item = Buffer | 'end' | 'destroy';

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.[01]\r\n/;

export class TcpProxy {
  /** Connections accepted so far. */
  connections = 0;
  /** Each HTTP request passed on to the server, `METHOD path`, and when (on
   * `performance.now()`): one per chunk that starts with a request line, which is enough
   * for the small requests of tests. */
  readonly requests: Array<{ line: string; at: number }> = [];
  private held: 'none' | 'both' | 'answers' = 'none';
  private readonly sockets = new Set<Socket>();
  private readonly flushers = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private delayMs: number,
  ) {}

  static async start(targetPort: number, options: { delayMs?: number } = {}): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy = new TcpProxy(server, (server.address() as { port: number }).port, options.delayMs ?? 0);
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every byte (and close) from now on arrives this much later, in order. */
  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  blackhole(which: 'both' | 'answers' = 'both'): void {
    this.held = which;
  }

  restore(): void {
    this.held = 'none';
    for (const flush of this.flushers) flush();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private holds(dir: Direction): boolean {
    return this.held === 'both' || (this.held === 'answers' && dir === 'toClient');
  }

  private accept(client: Socket, targetPort: number): void {
    this.connections++;
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {}); // a reset is passed on as a close below
    }
    const flushers = [this.pipe(client, upstream, 'toServer'), this.pipe(upstream, client, 'toClient')];
    let open = 2;
    for (const s of [client, upstream]) {
      s.once('close', () => {
        this.sockets.delete(s);
        if (--open === 0) for (const f of flushers) this.flushers.delete(f);
      });
    }
  }

  private noteRequest(chunk: Buffer): void {
    const m = REQUEST_LINE.exec(chunk.subarray(0, 2048).toString('latin1'));
    if (m) this.requests.push({ line: `${m[1]} ${m[2]}`, at: performance.now() });
  }

  /** Forwards `from` to `to` through a queue that a blackhole holds, each item due at its
   * arrival plus the delay (never before the one ahead of it); answers its flush. */
  private pipe(from: Socket, to: Socket, dir: Direction): () => void {
    const queue: Array<{ due: number; item: Item }> = [];
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      const now = performance.now();
      while (queue.length > 0 && !this.holds(dir)) {
        const head = queue[0];
        if (head.due > now && this.delayMs > 0) {
          timer = setTimeout(flush, head.due - now);
          return;
        }
        queue.shift();
        if (to.destroyed) continue;
        if (head.item === 'end') to.end();
        else if (head.item === 'destroy') to.destroy();
        else {
          if (dir === 'toServer') this.noteRequest(head.item);
          to.write(head.item);
        }
      }
    };
    const offer = (item: Item) => {
      const last = queue.length > 0 ? queue[queue.length - 1].due : 0;
      queue.push({ due: Math.max(performance.now() + this.delayMs, last), item });
      flush();
    };
    from.on('data', (chunk: Buffer) => offer(chunk));
    let ended = false;
    from.once('end', () => {
      ended = true;
      offer('end');
    });
    // A close without an end is a reset: pass it on (after an end, `to.end()` suffices).
    from.once('close', () => {
      if (!ended) offer('destroy');
    });
    this.flushers.add(flush);
    return flush;
  }
}
