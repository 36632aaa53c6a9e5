/** Reading lists in bounded pages: no Redis command of a list reads more than a page (or
 * a batch of the legacy migration), whatever the size of the tenant's data. */
import type { Redis } from 'ioredis';
import type { ClusterKeys } from './ids.js';
import { redisCall } from './redisCall.js';
import { decodeIndexMigrate } from './replies.js';
import type { Scripts } from './scripts.js';

/** At most this many entries per page (the HTTP layer's maximum limit). */
export const PAGE_MAX = 1000;
/** Ids moved from a legacy set per script run. */
const MIGRATE_BATCH = 1000;

export interface PageRequest {
  limit: number;
  /** The position the page starts after (the last entry of the page before). */
  after?: string;
}

export interface Page<T> {
  items: T[];
  /** The position to start the next page after; undefined on the last page. */
  next?: string;
}

/** A byte above every character of the ids paged here (ASCII): the end of a prefix range. */
const ABOVE_ASCII = '\x7f';

/** Up to `limit` members of a sorted set whose scores are all 0, in byte order, after
 * `after`; with `prefix`, only those that begin with it (ASCII members). */
export async function lexPage(redis: Redis, key: string, page: PageRequest, prefix = ''): Promise<Page<string>> {
  const limit = Math.min(page.limit, PAGE_MAX);
  const from = page.after !== undefined && page.after >= prefix ? `(${page.after}` : prefix === '' ? '-' : `[${prefix}`;
  const to = prefix === '' ? '+' : `(${prefix}${ABOVE_ASCII}`;
  // One more than asked tells whether there is a next page.
  return pageCut(await redisCall(() => redis.zrangebylex(key, from, to, 'LIMIT', 0, limit + 1)), limit);
}

/** A page of `limit` of `ids`, fetched one more than asked to tell whether a next follows. */
export function pageCut(ids: string[], limit: number): Page<string> {
  return ids.length > limit ? { items: ids.slice(0, limit), next: ids[limit - 1] } : { items: ids };
}

/** Moves the ids of the cluster's indexes kept the old way (sets) into their sorted sets,
 * a bounded batch per script, once: afterwards one EXISTS per list tells there is nothing. */
export async function migrateIndexes(redis: Redis, scripts: Scripts, keys: ClusterKeys): Promise<void> {
  const legacy = keys.legacyIndexes;
  const present = await redisCall(() => redis.exists(...legacy.map((l) => l.legacy)));
  if (present === 0) return;
  for (const { legacy: from, index } of legacy) {
    for (let left = 1; left > 0; ) {
      left = decodeIndexMigrate(await redisCall(() => scripts.run('index_migrate', [from, index], [MIGRATE_BATCH])));
    }
  }
}
