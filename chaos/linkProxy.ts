/**
 * The link between a server and Redis: 127.0.0.1:port forwards to 127.0.0.1:targetPort,
 * with a delay that can change while it runs (a slow link) and a blackhole (a partition:
 * sockets stay open, bytes are held in order and delivered on `restore()`, as TCP would
 * retransmit them). test/support/proxy.ts fixes its delay at start, hence this one.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

type Item = Buffer | 'end' | 'destroy';

export class LinkProxy {
  private delayMs = 0;
  private held = false;
  private readonly sockets = new Set<Socket>();
  private readonly flushers = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<LinkProxy> {
    let proxy: LinkProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy = new LinkProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Every byte (and close) from now on arrives this much later, in order. */
  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  blackhole(): void {
    this.held = true;
  }

  /** Heals the link: no delay, nothing held. */
  restore(): void {
    this.held = false;
    this.delayMs = 0;
    for (const flush of this.flushers) flush();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1');
    const flushers = [this.pipe(client, upstream), this.pipe(upstream, client)];
    let open = 2;
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {}); // a reset is passed on as a close
      s.once('close', () => {
        this.sockets.delete(s);
        if (--open === 0) for (const f of flushers) this.flushers.delete(f);
      });
    }
  }

  /** Forwards `from` to `to` through a queue of items, each due at its arrival plus the
   * delay (never before the one ahead of it); answers its flush. */
  private pipe(from: Socket, to: Socket): () => void {
    const queue: Array<{ due: number; item: Item }> = [];
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      const now = performance.now();
      while (queue.length > 0 && !this.held) {
        const head = queue[0];
        if (head.due > now && this.delayMs > 0) {
          timer = setTimeout(flush, head.due - now);
          return;
        }
        queue.shift();
        if (to.destroyed) continue;
        if (head.item === 'end') to.end();
        else if (head.item === 'destroy') to.destroy();
        else to.write(head.item);
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
    from.once('close', () => {
      if (!ended) offer('destroy');
    });
    this.flushers.add(flush);
    return flush;
  }
}
