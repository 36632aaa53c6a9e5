/**
 * Who may act as admin: an unfenced write (`X-Fencing-Token: override`) and cleanupAllData.
 * With no admin tokens configured every caller is admin, as the design says; with some, a
 * caller must present one as `Authorization: Bearer <token>`. (Roles for every route come
 * with the full auth of issue 5.)
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

export class AdminAuth {
  private readonly digests: Buffer[];

  constructor(tokens: string[]) {
    // Digests of equal length, so that every comparison takes the same time.
    this.digests = tokens.map(digest);
  }

  get open(): boolean {
    return this.digests.length === 0;
  }

  /** Throws 401 without a bearer token, 403 with one that is not an admin's. */
  require(req: FastifyRequest, what: string): void {
    if (this.open) return;
    const m = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '');
    if (!m) throw httpError(401, `${what} needs an admin token: Authorization: Bearer <token>`);
    const d = digest(m[1]);
    let admin = false;
    for (const x of this.digests) admin = timingSafeEqual(d, x) || admin;
    if (!admin) throw httpError(403, `${what} needs an admin token`);
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function httpError(statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode });
}
