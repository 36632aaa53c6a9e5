/** Pagination of the list routes: `limit` and an opaque `cursor` in, `nextCursor` out.
 * A cursor is base64url of `<kind>:<position>`: the kind ties it to the list that issued it,
 * the position is the last entry of the page before (a job id, a blob scan cursor, a
 * checkpoint id). The HA core pages by that position; only this module knows the encoding. */
import { Type, type TSchema } from 'typebox';
import { PAGE_MAX, type PageRequest } from '../ha/index.js';
import { badRequest } from './errors.js';

export const PAGE_DEFAULT = 100;

export const Limit = Type.String({
  // 1 to 1000 (PAGE_MAX), in the schema so that openapi.yaml and the bad-input sweep see it.
  pattern: '^(?:[1-9][0-9]{0,2}|1000)$',
  description: `How many entries a page holds at most: 1 to ${PAGE_MAX} (default ${PAGE_DEFAULT}); more is a 400.`,
  examples: ['100'],
});
export const Cursor = Type.String({
  pattern: '^[A-Za-z0-9_-]{1,400}$',
  description: "The previous page's `nextCursor`, as it was answered (opaque); a malformed one is a 400.",
});
export const NextCursor = Type.Optional(
  Type.String({ description: 'Present when there may be more entries: pass it as `cursor` for the next page; absent on the last page.' }),
);

export const PageQuery = { limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) } satisfies Record<string, TSchema>;

/** The page a query asks for; a cursor not issued for `kind`, or not matching `valid`, is a 400. */
export function pageOf(query: { limit?: string; cursor?: string }, kind: string, valid: RegExp): PageRequest {
  const limit = query.limit === undefined ? PAGE_DEFAULT : Number(query.limit);
  if (query.cursor === undefined) return { limit };
  const text = Buffer.from(query.cursor, 'base64url').toString('utf8');
  const prefix = `${kind}:`;
  const after = text.startsWith(prefix) ? text.slice(prefix.length) : undefined;
  if (after === undefined || !valid.test(after) || Buffer.from(text).toString('base64url') !== query.cursor) {
    throw badRequest(`querystring/cursor is not a cursor of this list: pass the nextCursor of the previous page as it was answered`);
  }
  return { limit, after };
}

/** The `nextCursor` of a page that ended at `position` (undefined: the last page). */
export function cursorOf(kind: string, position: string | undefined): { nextCursor?: string } {
  return position === undefined ? {} : { nextCursor: Buffer.from(`${kind}:${position}`).toString('base64url') };
}

/** Positions of the lists paged by id. */
export const JOB_ID = /^[0-9a-f]{32}$/;
export const CHECKPOINT_ID = /^(?:0|[1-9][0-9]{0,15})$/;
