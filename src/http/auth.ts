/**
 * Who may do what (docs/design.md §7): bearer tokens, each with a role and the clusters it may
 * touch. Roles rank `read` < `contend` < `write` < `admin`; each includes the ones below
 * it. With no token configured the server is open, and every caller counts as admin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { ROLES, type Role, type TokenGrant } from '../config.js';
import { httpError } from './errors.js';

export { ROLES, type Role, type TokenGrant };

/** A caller whose token was checked: its name, whether it is an admin's, and a check of
 * each cluster it names. */
export interface Caller {
  name: string;
  admin: boolean;
  mayTouch(clusterId: string | undefined): void;
  /** The clusters the token may touch; null: all of them. */
  clusters: ReadonlySet<string> | null;
}

interface Grant {
  digest: Buffer;
  name: string;
  rank: number;
  clusters: Set<string> | null;
}

export class Access {
  private readonly grants: Grant[];

  constructor(tokens: TokenGrant[]) {
    this.grants = tokens.map((t) => ({
      digest: digest(t.token),
      name: t.name,
      rank: ROLES.indexOf(t.role),
      clusters: t.clusters.includes('*') ? null : new Set(t.clusters),
    }));
  }

  get open(): boolean {
    return this.grants.length === 0;
  }

  /** Throws 401 without a known bearer token, 403 when its role or clusters do not allow
   * `role` on `clusterId`; answers the token's name and whether it is an admin's (null when
   * open). */
  check(authorization: string | undefined, role: Role, clusterId: string | undefined): { name: string; admin: boolean } | null {
    const caller = this.caller(authorization, role);
    if (caller) caller.mayTouch(clusterId);
    return caller;
  }

  /** As `check`, for a caller that names its clusters later (the renewal stream, one
   * cluster per message): 401 or 403 for the token and its role now, and `mayTouch`, which
   * throws 403 for a cluster the token may not touch. null when open. */
  caller(authorization: string | undefined, role: Role): Caller | null {
    if (this.open) return null;
    const grant = this.grantOf(authorization);
    if (grant.rank < ROLES.indexOf(role)) throw httpError(403, `token '${grant.name}' has a role below '${role}', which this needs`);
    const { name, clusters } = grant;
    return {
      name,
      admin: grant.rank === ROLES.indexOf('admin'),
      clusters,
      mayTouch: (clusterId) => {
        if (clusters && !(clusterId !== undefined && clusters.has(clusterId))) {
          throw httpError(403, `token '${name}' may not touch cluster '${clusterId}'`);
        }
      },
    };
  }

  /** Who a token is: its name, role and clusters (null when open); 401 for an unknown one.
   * The console asks, to show a token's admin actions only to an admin. */
  whoIs(authorization: string | undefined): { name: string; role: Role; clusters: string[] } | null {
    if (this.open) return null;
    const grant = this.grantOf(authorization);
    return { name: grant.name, role: ROLES[grant.rank], clusters: grant.clusters ? [...grant.clusters] : ['*'] };
  }

  /** The grant of a bearer token; 401 without a known one. */
  private grantOf(authorization: string | undefined): Grant {
    const m = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
    const grant = m && this.find(m[1]);
    if (!grant) throw httpError(401, 'this needs a valid token: Authorization: Bearer <token>');
    return grant;
  }

  /** Compares the digest against every grant's, all of them, in constant time each. */
  private find(token: string): Grant | null {
    const d = digest(token);
    let found: Grant | null = null;
    for (const g of this.grants) if (timingSafeEqual(d, g.digest)) found = g;
    return found;
  }
}

/** The role a route needs: reads need `read`, elections (and a leadership) `contend`, store
 * writes `write`, deleting a cluster and revoking a leadership `admin`; the listing of clusters
 * `read`; routes outside a cluster (probes, metrics) need none. */
export function routeRole(method: string, url: string): Role | null {
  // The listing of clusters: each caller sees those its token may touch (routes/clusters.ts).
  if (url === '/v1/clusters') return method === 'GET' || method === 'HEAD' ? 'read' : null;
  if (!url.startsWith('/v1/clusters/')) return null;
  if (method === 'GET' || method === 'HEAD') return 'read';
  if (url === '/v1/clusters/:clusterId/leadership/revoke') return 'admin';
  if (url.startsWith('/v1/clusters/:clusterId/leaders/') || url.startsWith('/v1/clusters/:clusterId/leadership/')) return 'contend';
  if (url === '/v1/clusters/:clusterId') return 'admin';
  return 'write';
}

/** Who calls, as leases and leaderships keep it: the name of the caller's token, '' when the
 * server runs open (where any caller may act on any lease). */
export function ownerOf(req: FastifyRequest): string {
  return req.grant ?? '';
}

/** Whether the caller may end a lease or leadership campaigned for with another token: an
 * admin's (open: anyone's, but there every lease has the same owner anyway). */
export function mayForce(req: FastifyRequest): boolean {
  return req.grantAdmin === true;
}

/** The subprotocol that carries a bearer token on a browser's websocket (a browser can set
 * no Authorization header there): `leasehold.bearer.` and the token in base64url. The
 * server answers with another of the offered subprotocols (pickProtocol). */
export const BEARER_PROTOCOL = 'leasehold.bearer.';

/** The request's Authorization header, else one made of a bearer subprotocol. */
export function authorizationOf(headers: IncomingHttpHeaders): string | undefined {
  if (headers.authorization !== undefined) return headers.authorization;
  const offered = headers['sec-websocket-protocol'];
  if (offered === undefined) return undefined;
  for (const p of offered.split(',')) {
    const name = p.trim();
    if (name.startsWith(BEARER_PROTOCOL)) return `Bearer ${Buffer.from(name.slice(BEARER_PROTOCOL.length), 'base64url').toString('latin1')}`;
  }
  return undefined;
}

/** The subprotocol the server answers a websocket with: the first offered that is not a
 * token (none: the upgrade goes on without one), so that no token is ever echoed. */
export function pickProtocol(offered: Set<string>): string | false {
  for (const p of offered) if (!p.startsWith(BEARER_PROTOCOL)) return p;
  return false;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
