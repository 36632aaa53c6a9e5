/**
 * The websocket watch: a snapshot (or the changes after `since`), then every change.
 * The cluster's view is opened before the upgrade, so that an unavailable Redis answers a
 * plain 503. Ping/pong drops dead peers; a peer too slow to read is closed (1013) and can
 * resume with `since`; at shutdown every socket is closed with 1001.
 */
import type { WebSocket } from 'ws';
import type { HaServices } from '../../ha/index.js';
import { watchMessage } from '../encode.js';
import { httpError, sendError } from '../errors.js';
import { ClusterParams, WatchQuery } from '../schemas.js';
import type { App } from '../types.js';
import type { Log } from '../../ha/log.js';

/** Messages are text frames, even when passed as bytes. */
const TEXT = { binary: false };

/** Unsent bytes after which a watcher counts as too slow. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

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

export function watchRoutes(app: App, ha: HaServices, sockets: WatcherSockets, log: Log, allowedOrigins: string[]): void {
  const origins = new Set(allowedOrigins);
  app.route({
    method: 'GET',
    url: '/v1/clusters/:clusterId/watch',
    schema: { params: ClusterParams, querystring: WatchQuery },
    // A browser says where the page that opens the socket came from; other clients send no
    // Origin, and are judged by their token alone.
    onRequest: (req, _reply, done) => {
      const origin = req.headers.origin;
      const refused = origins.size > 0 && origin !== undefined && !origins.has(origin);
      done(refused ? httpError(403, `origin '${origin}' is not allowed (WS_ALLOWED_ORIGINS)`) : undefined);
    },
    preHandler: async (req) => {
      await ha.views.get(req.params.clusterId);
    },
    handler: async (_req, reply) =>
      sendError(reply.header('upgrade', 'websocket'), 426, 'UpgradeRequired', 'this route is a websocket: send an upgrade request'),
    wsHandler: async (socket, req) => {
      sockets.add(socket);
      const components = req.query.components ? new Set(req.query.components.split(',').map(normalise)) : null;
      const since = req.query.since === undefined ? undefined : Number(req.query.since);
      try {
        const view = await ha.views.get(req.params.clusterId);
        const stop = await view.watch(components, since, (m) => {
          if (socket.readyState !== socket.OPEN) return;
          if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
            socket.close(1013, 'too slow: reconnect with since');
            return;
          }
          socket.send(watchMessage(m), TEXT);
        });
        if (socket.readyState === socket.OPEN) socket.on('close', stop);
        else stop();
      } catch (err) {
        log.warn({ err, reqId: req.id }, 'watch could not start');
        socket.close(1013, 'redis unavailable: try again');
      }
    },
  });
}

/** Job ids are answered in lower case. */
function normalise(component: string): string {
  return component.startsWith('jobmanager/') ? component.toLowerCase() : component;
}
