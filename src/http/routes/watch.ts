/**
 * The websocket watch: a snapshot (or the changes after `since`), then every change.
 * The cluster's view is opened before the upgrade, so that an unavailable Redis answers a
 * plain 503. Ping/pong drops dead peers; a peer too slow to read is closed (1013) and can
 * resume with `since`; at shutdown every socket is closed with 1001.
 */
import { watchMessage } from '../encode.js';
import { httpError, sendError } from '../errors.js';
import { ClusterParams, WatchQuery } from '../schemas.js';
import type { App, RouteContext } from '../types.js';

/** Messages are text frames, even when passed as bytes. */
const TEXT = { binary: false };

/** Unsent bytes after which a watcher counts as too slow. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

export function watchRoutes(app: App, { ha, sockets, log, config, metrics }: RouteContext): void {
  const allowed = originRule(config.wsAllowedOrigins, config.tokens.length === 0);
  app.route({
    method: 'GET',
    url: '/v1/clusters/:clusterId/watch',
    schema: { params: ClusterParams, querystring: WatchQuery },
    // A browser says where the page that opens the socket came from; other clients send no
    // Origin, and are judged by their token alone.
    onRequest: (req, _reply, done) => {
      const origin = req.headers.origin;
      const refused = origin !== undefined && !allowed(origin, req.headers.host);
      done(refused ? httpError(403, `origin '${origin}' is not allowed (WS_ALLOWED_ORIGINS)`) : undefined);
    },
    preHandler: async (req) => {
      await ha.views.get(req.params.clusterId);
    },
    handler: async (_req, reply) =>
      sendError(reply.header('upgrade', 'websocket'), 426, 'UpgradeRequired', 'this route is a websocket: send an upgrade request'),
    wsHandler: async (socket, req) => {
      sockets.add(socket);
      socket.once('close', metrics.watcher(req.params.clusterId));
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

/**
 * Which browser pages may open a watch: those WS_ALLOWED_ORIGINS lists (`*`: any); unlisted,
 * any when tokens guard the API (a browser cannot send one on a websocket, so the token
 * decides), but when it is open, only pages of the server's own origin: else any site a
 * user visits could watch, from the user's network, a server that trusts its network.
 */
export function originRule(list: string[], open: boolean): (origin: string, host: string | undefined) => boolean {
  if (list.includes('*')) return () => true;
  if (list.length > 0) {
    const origins = new Set(list);
    return (origin) => origins.has(origin);
  }
  if (!open) return () => true;
  return (origin, host) => {
    try {
      return host !== undefined && new URL(origin).host === new URL(`http://${host}`).host;
    } catch {
      return false; // 'null' (a sandboxed page, a file) or not a URL
    }
  };
}

/** Job ids are answered in lower case. */
export function normalise(component: string): string {
  return component.startsWith('jobmanager/') ? component.toLowerCase() : component;
}
