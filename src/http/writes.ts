/** What every store write takes from its headers: the fencing token and an optional
 * Idempotency-Key; and how a remembered answer is marked. */
import type { FastifyReply } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Fence, IdempotencyKey } from '../ha/index.js';

export const WriteHeaders = Type.Object({
  'x-fencing-token': Type.Optional(
    Type.String({ pattern: '^([0-9]{1,16}|override)$', description: "the owning leader's fencing token, or override (admin)" }),
  ),
  'idempotency-key': Type.Optional(Type.String({ pattern: '^[\\x21-\\x7E]{1,255}$' })),
});

export function writeOf(headers: Static<typeof WriteHeaders>): { fence: Fence; idem: IdempotencyKey } {
  const token = headers['x-fencing-token'];
  // Tokens are compared as Redis holds them: decimal digits without leading zeros.
  const fence = token === undefined || token === 'override' ? token : token.replace(/^0+(?=\d)/, '');
  return { fence, idem: headers['idempotency-key'] };
}

/** Marks a remembered answer to an earlier request with the same Idempotency-Key. */
export function markReplayed(reply: FastifyReply, replayed: boolean): void {
  if (replayed) reply.header('idempotent-replayed', 'true');
}
