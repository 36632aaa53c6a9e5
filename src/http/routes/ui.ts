/**
 * The operator console (ui/, built by `npm run build` into dist/ui): its page at /ui, its
 * files at /ui/<name>, and /ui/session, which tells the page who its token is (to show the
 * admin actions to an admin only; the API refuses them to others anyway). The files are read
 * once, at start, and sent gzipped to a browser that takes it. The page gets a strict
 * Content-Security-Policy: its own scripts, styles and images only, and requests to this
 * server (HTTP and its websockets) only.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from '../errors.js';
import { authorizationOf } from '../auth.js';
import type { App, RouteContext } from '../types.js';

/** dist/ui, from src/http/routes (tsx) and dist/http/routes (built) alike. */
const UI_DIR = fileURLToPath(new URL('../../../dist/ui', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface UiFile {
  type: string;
  body: Buffer;
  gzipped: Buffer;
  etag: string;
}

/** The built files by name; empty when the console was not built. */
export function loadUi(dir = UI_DIR): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const type = TYPES[name.slice(name.lastIndexOf('.'))];
    if (!type) continue; // source maps and the like are not served
    const body = readFileSync(join(dir, name));
    files.set(name, { type, body, gzipped: gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return files;
}

/** A Host header fit to name an origin in a header (anything else: none is named). */
const HOST = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/;

/** The page's policy. connect-src names the websocket origins as well as 'self': browsers
 * before CSP 3 do not count ws: of the same host as 'self'. */
export function contentSecurityPolicy(host: string | undefined): string {
  const sockets = host && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function uiRoutes(app: App, { access }: RouteContext): void {
  const files = loadUi();
  const send = (name: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    const file = files.get(name);
    if (!file) return sendError(reply, 404, 'NotFound', files.size === 0 ? 'the console is not built: run npm run build' : `no file /ui/${name}`);
    reply.header('content-type', file.type).header('etag', file.etag).header('vary', 'accept-encoding');
    reply.header('cache-control', 'no-cache').header('referrer-policy', 'no-referrer');
    if (name === 'index.html') reply.header('content-security-policy', contentSecurityPolicy(req.headers.host));
    if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gzip) reply.header('content-encoding', 'gzip');
    return reply.send(gzip ? file.gzipped : file.body);
  };
  app.get('/ui', send('index.html'));
  // Not the page under another name: /ui/ (an empty file) is a 404 like any other unknown file.
  app.get<{ Params: { file: string } }>('/ui/:file', async (req, reply) => send(req.params.file === 'index.html' ? '' : req.params.file)(req, reply));

  // Not under /v1/clusters/, so no role is checked by the app's hook: any known token may ask
  // who it is; an unknown one is a 401. Open (no tokens): everyone is an admin.
  app.get('/ui/session', async (req) => {
    const who = access.whoIs(authorizationOf(req.headers));
    return who ?? { name: null, role: 'admin', clusters: ['*'] };
  });
}
