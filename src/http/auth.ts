/**
 * Who may do what (docs/design.md §7): bearer tokens, each with a role and the clusters it may
 * touch. Roles rank `read` < `contend` < `write` < `admin`; each includes the ones below
 * it. With no token configured the server is open, and every caller counts as admin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
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
    const m = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
    const grant = m && this.find(m[1]);
    if (!grant) throw httpError(401, 'this needs a valid token: Authorization: Bearer <token>');
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

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
