/** The websocket watchers' sockets: a sliced ping/pong heartbeat that drops dead peers, and
 * a close of every socket (1001) when the server shuts down. */
import type { WebSocket } from 'ws';

/** The heartbeat pings one slice of the sockets at a time, so that thousands of pings
 * (and their pongs) never hold up a change for long. */
const SLICES = 16;

export class WatcherSockets {
  private readonly alive = new Map<WebSocket, boolean>();
  private readonly slices = Array.from({ length: SLICES }, () => new Set<WebSocket>());
  private added = 0;
  private tick = 0;
  private readonly heartbeat: NodeJS.Timeout;

  /** Every socket is pinged once per `heartbeatMs`, and dropped if it did not answer the
   * ping before. */
  constructor(heartbeatMs: number) {
    this.heartbeat = setInterval(() => this.beat(), heartbeatMs / SLICES);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.alive.size;
  }

  add(socket: WebSocket): void {
    const slice = this.slices[this.added++ % SLICES];
    this.alive.set(socket, true);
    slice.add(socket);
    socket.on('pong', () => this.alive.set(socket, true));
    socket.on('close', () => {
      this.alive.delete(socket);
      slice.delete(socket);
    });
  }

  private beat(): void {
    for (const socket of this.slices[this.tick++ % SLICES]) {
      if (!this.alive.get(socket)) {
        socket.terminate();
        continue;
      }
      this.alive.set(socket, false);
      socket.ping();
    }
  }

  /** Tells every watcher to go elsewhere: the server is going away. */
  closeAll(): void {
    clearInterval(this.heartbeat);
    for (const socket of this.alive.keys()) socket.close(1001, 'server shutting down');
  }
}
