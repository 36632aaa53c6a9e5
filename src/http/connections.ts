/**
 * What one client connection may hold of the server: a cap on open connections below the
 * process's file limit, and timeouts on every stage of a request, so that neither idle
 * connections nor bodies trickled byte by byte can use up its files (docs/operations.md,
 * Connections).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ConnectionOptions } from '../config.js';

/** The process's limit of open files (`ulimit -n`, soft), or null if it has none we can tell. */
export function fileLimit(): number | null {
  try {
    // Linux: "Max open files            1024                 1048576              files"
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? null : Number(m[1]);
  } catch {
    // Not Linux: a shell inherits our limits.
  }
  try {
    const n = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * The most connections the server keeps open: the file limit less a reserve for what else
 * the process opens (Redis connections, a local redis-server's pipes, the floors file,
 * logs, Node's own handles), lowered further by MAX_CONNECTIONS; 0: no cap (no limit known,
 * none set).
 */
export function connectionCap(maxConnections: number, files: number | null): number {
  if (files === null) return maxConnections;
  const derived = Math.max(16, files - Math.max(64, Math.ceil(files / 10)));
  return maxConnections > 0 ? Math.min(maxConnections, derived) : derived;
}

/** A request that sends a body (Node's parser takes either header to mean one). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Sets the server's cap and timeouts. */
export function limitConnections(server: Server, options: ConnectionOptions, cap: number): void {
  if (cap > 0) server.maxConnections = cap;
  server.headersTimeout = options.headersTimeoutMs;
  server.requestTimeout = options.requestTimeoutMs;
  server.keepAliveTimeout = options.keepAliveTimeoutMs;
  // No idle timeout on the socket as such: a long poll or a websocket is silent for long,
  // by design. The stages that are not are timed: headers, request, body, keep-alive.
  server.setTimeout(0);
}

/** Node checks the headers and request timeouts of every connection this often (its default,
 * 30 s, would let a timeout of 10 s run 40). */
export function checkingIntervalMs(options: ConnectionOptions): number {
  return Math.max(100, Math.min(1000, Math.floor(options.headersTimeoutMs / 2)));
}

/**
 * Cuts the connection when a request's body pauses for longer than `idleMs`: when the
 * socket was silent that long while the server waited for more of the body. A pause of the
 * server's own (it has bytes of the body it did not read yet: a slow Redis holds it up) is
 * not the client's. The timer ends with the body. Only requests with a body pay for it.
 */
export function timeBody(req: IncomingMessage, res: ServerResponse, idleMs: number): void {
  const socket = req.socket;
  // On the answer rather than the request: Node tells the request of a timeout only while its
  // body is incomplete, and destroys the socket itself if nobody listens.
  res.setTimeout(idleMs, () => {
    if (req.complete) socket.setTimeout(0);
    else if (req.readableLength > 0) socket.setTimeout(idleMs);
    else socket.destroy();
  });
  req.once('end', () => {
    // Once the answer is finished, Node has set the socket's keep-alive timeout: keep it.
    if (!res.writableFinished) socket.setTimeout(0);
  });
}
