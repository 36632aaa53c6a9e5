/**
 * The Lua contract, TypeScript side: the scripts' return codes (the enum of
 * scripts/lib/codes.lua; test/scripts.test.ts checks that the two agree and that every code
 * a script's header lists is here), the one table mapping codes to errors, and the decoding
 * of each script's reply into its own typed result. Nothing else reads a script's reply.
 */
import { parseChange, parseLeader, takeoverGapOf, type Change, type Leader } from './changes.js';
import { HaError } from './errors.js';
import type { Component } from './ids.js';
import { parseHistoryEntry, type HistoryEntry } from './history.js';
import type { Page } from './paging.js';
import type { LeadershipScript, ScriptName, ScriptReply } from './scripts.js';
export { LEADERSHIP_SCRIPTS, type LeadershipScript } from './scripts.js';

/** The scripts' return codes: one name, one value, one meaning across every script. */
export const Code = {
  /** The script did what it was asked. */
  Done: 0,
  /** The fencing token is not that of a live lease. */
  FenceStale: -1,
  /** The Idempotency-Key was used for another request. */
  IdempotencyKeyReused: -2,
  JobResultExists: -3,
  JobResultNotFound: -4,
  /** The checkpoint id is not above the latest one (whose id follows). */
  CheckpointIdNotAbove: -5,
  ExecutionPlanNotFound: -6,
  /** The staged chunks of an upload are gone (expired, or Redis lost them). */
  StagedUploadGone: -7,
  /** The new value is below the counter's (which follows). */
  CounterBelow: -8,
  /** Keys the caller read changed meanwhile: read them again and retry. */
  Changed: -9,
  /** A quota of the cluster is reached: its name, limit (and, for idempotency records, ms
   * until one frees up) follow (scripts/lib/quota.lua). */
  QuotaExceeded: -10,
  /** A remembered answer points to data that is since gone or changed. */
  AnswerGone: -11,
  /** The lease is held, not by the caller. */
  Held: 1,
  /** The lease is free. */
  Free: 2,
  /** campaign: this contender holds the lease already (extended, address confirmed). */
  AlreadyHeld: 3,
  /** renew: renewed, and the leader is not the one the caller knows (it follows). */
  RenewedNewLeader: 4,
  /** Redis's index is below one the caller has seen: Redis lost data (a failover to a
   * replica that lagged, a restored backup). Nothing was granted; a grace period began. */
  RolledBack: 5,
  /** campaign: no grant until the leases that may have been lost with Redis's data have
   * run out (the grace period's time left follows). */
  InGrace: 6,
  /** campaign: no grant until the lock delay after the last lease's expiry ends (its time
   * left follows). */
  LockDelay: 7,
  /** campaign: a leadership leads the cluster, so no per-component lease is granted. */
  LeadershipHeld: 8,
  /** leadership_campaign: per-component leases live in the cluster (they follow). */
  ComponentLeasesHeld: 9,
  /** expire: the lease ran out with the leadership it was published under: end that. */
  Published: 10,
  /** The leadership was campaigned for with another access token. */
  NotOwner: 11,
  /** renew, confirm, resign: the lease was campaigned for with another access token. */
  NotLeaseOwner: 12,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

/** The fields of a component's leader hash (scripts/lib/leader_hash.lua). */
export const LEADER_FIELDS = {
  contenderId: 'cid',
  sessionId: 'sid',
  fencingToken: 'tok',
  address: 'addr',
  acquiredAt: 'at',
  live: 'live',
  ttlMs: 'ttl',
  lockDelayMs: 'ld',
  delayedUntil: 'ldu',
  owner: 'own',
} as const;

/** A script answered what its header does not say: a bug, or a script and server that
 * do not match. */
export function unexpectedReply(name: ScriptName, code: unknown): HaError {
  return new HaError('RedisUnavailable', `${name} answered code ${String(code)}`);
}

export function staleFence(owner: Component): HaError {
  return new HaError('FencingTokenStale', `X-Fencing-Token is not the token of a live lease of ${owner}`);
}

/** The one table from codes to errors; each script's header says which it may answer. */
const CODE_ERRORS: Partial<Record<Code, (owner: Component, values: string[]) => HaError>> = {
  [Code.FenceStale]: (owner) => staleFence(owner),
  [Code.IdempotencyKeyReused]: () =>
    new HaError('IdempotencyKeyReused', 'Idempotency-Key was already used for another request'),
  [Code.JobResultExists]: () => new HaError('JobResultExists', 'the job already has a job result entry'),
  [Code.JobResultNotFound]: () => new HaError('JobResultNotFound', 'the job has no job result entry'),
  [Code.CheckpointIdNotAbove]: (_, v) =>
    new HaError('CheckpointIdNotIncreasing', `the checkpoint id must be above the latest one, ${v[0]}`, {
      latestCheckpointId: Number(v[0]),
    }),
  [Code.ExecutionPlanNotFound]: () => new HaError('ExecutionPlanNotFound', 'the job has no execution plan'),
  [Code.StagedUploadGone]: () => new HaError('RedisUnavailable', 'the staged upload is gone from Redis; upload again'),
  [Code.CounterBelow]: (_, v) =>
    new HaError('CheckpointIdNotIncreasing', `the counter never goes below its value, ${v[0]}`, { value: Number(v[0]) }),
  [Code.NotOwner]: () => new HaError('NotLeadershipOwner', 'this leadership was campaigned for with another access token'),
  [Code.QuotaExceeded]: (_, [quota, limit, retryMs]) => quotaError(quota, Number(limit), retryMs === undefined ? undefined : Number(retryMs)),
  [Code.AnswerGone]: () =>
    new HaError(
      'IdempotentAnswerGone',
      'the request with this Idempotency-Key was done, but what it answered is gone or changed since, so its answer cannot be repeated; read the current state',
    ),
  [Code.NotLeaseOwner]: (owner) =>
    new HaError('NotLeaseOwner', `the lease of ${owner} was campaigned for with another access token; only that token (or an admin's resignation) acts on it`),
};

/** A quota's refusal: idempotency records free up as they expire (429, with the time until
 * the first does); stored data stays until deleted (507). docs/decisions.md says why. */
export function quotaError(quota: string, limit: number, retryAfterMs?: number): HaError {
  if (retryAfterMs !== undefined) {
    return new HaError('IdempotencyQuotaExceeded', `the cluster holds its quota of ${limit} idempotency records; retry after the oldest expires, or without an Idempotency-Key`, {
      quota,
      limit,
      retryAfterMs,
    });
  }
  return new HaError('StorageQuotaExceeded', `the cluster holds its quota of ${quota} (${limit}); delete some to store more`, { quota, limit });
}

/** The error a code stands for, with what followed it; undefined for codes that are not
 * errors (Done, Changed, and the leadership outcomes). */
export function codeError(code: Code, owner: Component, values: string[] = []): HaError | undefined {
  return CODE_ERRORS[code]?.(owner, values);
}

function changesOf(r: ScriptReply, from: number, to = r.length): Change[] {
  const out: Change[] = [];
  for (let i = from; i < to; i++) out.push(parseChange(r[i] as string));
  return out;
}

// ---- leadership: campaign, confirm, resign, expire, renew -------------------------------

/** What a leadership script answers: its code, the holder after the call (null when the
 * lease is free), the lease's time left, and the changes it recorded. */
export interface OpResult<C extends Code = Code> {
  code: C;
  leader: Leader | null;
  ttlMs: number;
  changes: Change[];
  /** What followed a refusal's code: QuotaExceeded's quota and limit (lib/quota.lua). */
  values?: string[];
  /** A grant's takeover gap (ms), when the history knows one (lib/history.lua). */
  takeoverGapMs?: number | null;
  /** A renewal's slack: the ms its lease had left when it came. */
  slackMs?: number;
}

/** RolledBack, InGrace and LockDelay grant nothing; their ttlMs is the grace period's, or
 * the lock delay's, time left. */
export type CampaignResult = OpResult<
  | typeof Code.Done
  | typeof Code.AlreadyHeld
  | typeof Code.Held
  | typeof Code.RolledBack
  | typeof Code.InGrace
  | typeof Code.LockDelay
  | typeof Code.LeadershipHeld
  | typeof Code.QuotaExceeded
>;
export type ConfirmResult = OpResult<typeof Code.Done | typeof Code.Held | typeof Code.Free | typeof Code.NotLeaseOwner>;
export type ResignResult = OpResult<typeof Code.Done | typeof Code.Free | typeof Code.Held | typeof Code.NotLeaseOwner>;
/** Done: expired now; Held: still held (renewed meanwhile); Free: nothing to record. */
export type ExpireResult = OpResult<typeof Code.Done | typeof Code.Held | typeof Code.Free | typeof Code.Published>;
/** Done: renewed (the leader is null when it is the one the caller knows). */
export type RenewResult = OpResult<typeof Code.Done | typeof Code.Held | typeof Code.Free | typeof Code.NotLeaseOwner>;

/** The scripts whose reply is {code, leader json or false, lease ms left, changes...}. */
const OP_CODES = {
  campaign: [Code.Done, Code.AlreadyHeld, Code.Held, Code.RolledBack, Code.InGrace, Code.LockDelay, Code.LeadershipHeld, Code.QuotaExceeded],
  confirm: [Code.Done, Code.Held, Code.Free, Code.NotLeaseOwner],
  resign: [Code.Done, Code.Free, Code.Held, Code.NotLeaseOwner],
  expire: [Code.Done, Code.Held, Code.Free, Code.Published],
} as const;
export type OpScript = keyof typeof OP_CODES;
type OpCode<N extends OpScript> = (typeof OP_CODES)[N][number];

export function decodeOp<N extends OpScript>(name: N, r: ScriptReply): OpResult<OpCode<N>> {
  const code = r[0] as OpCode<N>;
  if (!(OP_CODES[name] as readonly Code[]).includes(code)) throw unexpectedReply(name, code);
  if (code === Code.QuotaExceeded) return { code, leader: null, ttlMs: 0, changes: [], values: r.slice(1).map(String) };
  const out: OpResult<OpCode<N>> = { code, leader: parseLeader(r[1] as string | null), ttlMs: r[2] as number, changes: changesOf(r, 3) };
  if (name === 'campaign' && code === Code.Done) out.takeoverGapMs = takeoverGapOf(r[1] as string);
  return out;
}

/** Decodes a batch of renewals (renew.lua) and hands each its result, in order. `deliver`
 * is best a function made once, so that decoding allocates nothing but the results. */
export function decodeRenewals<T>(r: ScriptReply, items: readonly T[], deliver: (item: T, result: RenewResult) => void): void {
  let at = 0;
  for (const item of items) {
    const code = r[at];
    if (code === Code.Done) {
      deliver(item, { code: Code.Done, leader: null, ttlMs: r[at + 1] as number, changes: [], slackMs: r[at + 2] as number });
      at += 3;
    } else if (code === Code.RenewedNewLeader) {
      deliver(item, { code: Code.Done, leader: parseLeader(r[at + 1] as string), ttlMs: r[at + 2] as number, changes: [], slackMs: r[at + 3] as number });
      at += 4;
    } else if (code === Code.Held || code === Code.Free) {
      const n = r[at + 3] as number;
      deliver(item, {
        code,
        leader: parseLeader(r[at + 1] as string | null),
        ttlMs: r[at + 2] as number,
        changes: changesOf(r, at + 4, at + 4 + n),
      });
      at += 4 + n;
    } else if (code === Code.NotLeaseOwner) {
      deliver(item, { code, leader: null, ttlMs: 0, changes: [] });
      at += 1;
    } else {
      throw unexpectedReply('renew', code);
    }
  }
}

// ---- the cluster's leadership ----------------------------------------------------------

/** What every leadership script answers (scripts/lib/cluster_leadership.lua's reply): the
 * holder (or the component's leader, for publish) and its time left, its TTL, the changes
 * recorded, and what the script adds, flat (published components and their addresses, say). */
export interface LeadershipReply {
  code: Code;
  leader: Leader | null;
  remainingMs: number;
  ttlMs: number;
  changes: Change[];
  extra: string[];
  /** leadership_campaign's grant: its takeover gap (ms), when the history knows one. */
  takeoverGapMs?: number | null;
  /** leadership_renew: the ms the lease had left when the renewal came. */
  slackMs?: number;
}

const LEADERSHIP_CODES: Record<LeadershipScript, readonly Code[]> = {
  leadership_campaign: [Code.Done, Code.AlreadyHeld, Code.Held, Code.ComponentLeasesHeld, Code.RolledBack, Code.InGrace, Code.Changed],
  leadership_renew: [Code.Done, Code.Held, Code.Free, Code.NotOwner, Code.Changed],
  leadership_resign: [Code.Done, Code.Free, Code.Held, Code.NotOwner, Code.Changed],
  leadership_revoke: [Code.Done, Code.Free, Code.Held, Code.Changed],
  leadership_expire: [Code.Done, Code.Held, Code.Free, Code.Changed],
  leadership_publish: [Code.Done, Code.Held, Code.Free, Code.NotOwner, Code.QuotaExceeded],
  leadership_unpublish: [Code.Done, Code.Held, Code.Free, Code.NotOwner],
  leadership_get: [Code.Held, Code.Free],
};

export function decodeLeadership(name: LeadershipScript, r: ScriptReply): LeadershipReply {
  const code = r[0] as Code;
  if (!LEADERSHIP_CODES[name].includes(code)) throw unexpectedReply(name, code);
  if (code === Code.Changed) return { code, leader: null, remainingMs: 0, ttlMs: 0, changes: [], extra: [] };
  // The quota and the limit follow (lib/quota.lua).
  if (code === Code.QuotaExceeded) return { code, leader: null, remainingMs: 0, ttlMs: 0, changes: [], extra: r.slice(1).map(String) };
  const n = r[4] as number;
  const out: LeadershipReply = {
    code,
    leader: parseLeader(r[1] as string | null),
    remainingMs: r[2] as number,
    ttlMs: r[3] as number,
    changes: changesOf(r, 5, 5 + n),
    extra: r.slice(5 + n).map(String),
  };
  if (code === Code.Done && name === 'leadership_renew') out.slackMs = Number(out.extra.shift());
  if (code === Code.Done && name === 'leadership_campaign') out.takeoverGapMs = takeoverGapOf(r[1] as string);
  return out;
}

// ---- views: sync, changes ---------------------------------------------------------------

export interface SyncResult {
  index: number;
  /** Redis's index was below the caller's floor: Redis lost data (sync.lua repaired it). */
  rolledBack: boolean;
  /** Expiries the sync itself recorded, in order. */
  changes: Change[];
  state: Map<Component, { leader: Leader | null; ttlMs: number }>;
  /** The index before the call's own changes (sync.lua; leaseStore.ts reads it). */
  startIndex?: number;
  /** False when the cluster has no index (no data): `index` then comes from Redis's clock
   * and was not stored (issue 16: reads create no state). */
  stored: boolean;
}

export interface ChangesResult {
  index: number;
  /** false when the log no longer holds every change asked for. */
  complete: boolean;
  changes: Change[];
}

/** sync.lua's reply for the components passed, in their order; Changed when the cluster
 * has components that were not passed. */
export function decodeSync(r: ScriptReply, components: readonly Component[]): SyncResult | typeof Code.Changed {
  if (r[0] === Code.Changed) return Code.Changed;
  if (typeof r[0] !== 'number' || r[0] < 0) throw unexpectedReply('sync', r[0]);
  const n = r[2] as number;
  const state = new Map<Component, { leader: Leader | null; ttlMs: number }>();
  components.forEach((c, k) => {
    state.set(c, { leader: parseLeader(r[3 + n + 2 * k] as string | null), ttlMs: r[4 + n + 2 * k] as number });
  });
  const startIndex = r[3 + n + 2 * components.length] as number;
  const stored = r[4 + n + 2 * components.length] === 1;
  return { index: r[0], rolledBack: r[1] === 1, changes: changesOf(r, 3, 3 + n), state, startIndex, stored };
}

/** raise_index.lua: the new index. */
export function decodeRaiseIndex(r: ScriptReply): number {
  if (r[0] !== Code.Done || typeof r[1] !== 'number') throw unexpectedReply('raise_index', r[0]);
  return r[1];
}

/** index_migrate.lua: how many ids the old set still holds. */
export function decodeIndexMigrate(r: ScriptReply): number {
  if (r[0] !== Code.Done || typeof r[1] !== 'number') throw unexpectedReply('index_migrate', r[0]);
  return r[1];
}

/** Whether Redis was found below what the caller answered of the cluster (`behind`): its
 * index rolled back (and raised), or a checkpoint id counter below a value handed out
 * (raised); whether the cluster is gone (no index, no loss known); Redis's clock. */
export function decodeFloorsWriteback(r: ScriptReply): { behind: boolean; gone: boolean; nowUs: number } {
  if (r[0] !== Code.Done) throw unexpectedReply('floors_writeback', r[0]);
  return { behind: r[1] === 1 || r[2] === 1, gone: r[3] === 1, nowUs: Number(r[4]) };
}

/** failover_grace.lua: the grace period's time left (ms). */
export function decodeFailoverGrace(r: ScriptReply): number {
  if (r[0] !== Code.Done || typeof r[1] !== 'number') throw unexpectedReply('failover_grace', r[0]);
  return r[1];
}

export function decodeChanges(r: ScriptReply): ChangesResult {
  return { index: r[0] as number, complete: r[1] === 1, changes: changesOf(r, 2) };
}

// ---- stores -----------------------------------------------------------------------------

/** What each store write answers after its code when it is Done, decoded. */
const STORE_VALUES = {
  /** The entry's fields and values, flat. */
  jobresult_create: (v: string[]) => v,
  jobresult_clean: (v: string[]) => v,
  plan_put: () => undefined,
  plan_requirements: () => undefined,
  /** The checkpoints subsumed, oldest first. */
  checkpoint_add: (v: string[]) => {
    const subsumed: Array<{ checkpointId: number; externalPointer: string }> = [];
    for (let i = 0; i < v.length; i += 2) subsumed.push({ checkpointId: Number(v[i]), externalPointer: v[i + 1] });
    return subsumed;
  },
  /** The ids discarded. */
  checkpoint_shutdown: (v: string[]) => v.map(Number),
  /** The value before. */
  counter_increment: (v: string[]) => Number(v[0]),
  /** The value set. */
  counter_set: (v: string[]) => Number(v[0]),
  /** Whether the counter was removed. */
  counter_shutdown: (v: string[]) => v[0] === '1',
  blob_commit: () => undefined,
  /** How many blobs were deleted. */
  blob_delete: (v: string[]) => Number(v[0]),
} satisfies Partial<Record<ScriptName, (values: string[]) => unknown>>;

export type StoreScript = keyof typeof STORE_VALUES;
export type StoreValue<N extends StoreScript> = ReturnType<(typeof STORE_VALUES)[N]>;

/** A store write's reply: {replayed, code, values...} (scripts/lib/store.lua). */
export type StoreReply<N extends StoreScript> =
  | { code: typeof Code.Done; replayed: boolean; value: StoreValue<N> }
  | { code: typeof Code.Changed }
  | { code: Exclude<Code, typeof Code.Done | typeof Code.Changed>; values: string[] };

export function decodeStoreWrite<N extends StoreScript>(name: N, r: ScriptReply): StoreReply<N> {
  const code = r[1] as Code;
  const values = r.slice(2) as string[];
  if (code === Code.Done) {
    return { code, replayed: r[0] === 1, value: STORE_VALUES[name](values) as StoreValue<N> };
  }
  if (code === Code.Changed) return { code };
  return { code, values };
}

/** fence_check.lua: whether the fence holds. */
export function decodeFenceCheck(r: unknown): boolean {
  if (r === Code.Done) return true;
  if (r === Code.FenceStale) return false;
  throw unexpectedReply('fence_check', r);
}

// ---- cleanup ----------------------------------------------------------------------------

/** The parts of a job that cleanup_job.lua deletes, in the order of its reply. */
export const JOB_PARTS = ['leader', 'executionPlan', 'checkpoints', 'checkpointIdCounter', 'blobs'] as const;
export type JobPart = (typeof JOB_PARTS)[number];

export type CleanupJobReply =
  | { code: typeof Code.Done; deleted: Record<JobPart, boolean>; changes: Change[] }
  | { code: typeof Code.FenceStale }
  | { code: typeof Code.Changed };

export function decodeCleanupJob(r: ScriptReply): CleanupJobReply {
  const code = r[0];
  if (code === Code.FenceStale || code === Code.Changed) return { code };
  if (code !== Code.Done) throw unexpectedReply('cleanup_job', code);
  const deleted = {} as Record<JobPart, boolean>;
  JOB_PARTS.forEach((p, i) => (deleted[p] = r[1 + i] === 1));
  return { code, deleted, changes: changesOf(r, 1 + JOB_PARTS.length) };
}

export type CleanupClusterReply =
  | { code: typeof Code.Done; changes: Change[]; tally: Record<string, number> }
  | { code: typeof Code.Changed };

/** cleanup_cluster.lua: the changes of a begin or batch step; the tally after finish. */
export function decodeCleanupCluster(r: ScriptReply, phase: 'begin' | 'batch' | 'finish'): CleanupClusterReply {
  const code = r[0];
  if (code === Code.Changed) return { code };
  if (code !== Code.Done) throw unexpectedReply('cleanup_cluster', code);
  if (phase !== 'finish') return { code, changes: changesOf(r, 1), tally: {} };
  const tally: Record<string, number> = {};
  for (let i = 1; i + 1 < r.length; i += 2) tally[r[i] as string] = Number(r[i + 1]);
  return { code, changes: [], tally };
}

// ---- the cluster listing ---------------------------------------------------------------

/** A lease as cluster_summary.lua reads it: its holder and the ms left on it. */
export interface HeldLease {
  leader: Leader;
  remainingMs: number;
}

export interface ClusterSummaryReply {
  /** null: the cluster has no stored index (no lease was ever granted in it). */
  index: number | null;
  jobManagers: number;
  leadership: (HeldLease & { ttlMs: number; published: number }) | null;
  /** By singleton, in the order the script was given them; null when free. */
  singletons: Array<HeldLease | null>;
}

/** cluster_summary.lua: {index, job managers, leadership, its ms left, ttl, published,
 * then per singleton: leader, ms left}. */
export function decodeClusterSummary(r: ScriptReply): ClusterSummaryReply {
  if (!Array.isArray(r) || r.length < 6 || (r.length - 6) % 2 !== 0) throw unexpectedReply('cluster_summary', r?.[0]);
  const held = (json: unknown, ms: unknown): HeldLease | null => {
    const leader = parseLeader(typeof json === 'string' ? json : null);
    return leader && { leader, remainingMs: Math.max(0, Number(ms)) };
  };
  const ls = held(r[2], r[3]);
  const singletons: Array<HeldLease | null> = [];
  for (let i = 6; i + 1 < r.length; i += 2) singletons.push(held(r[i], r[i + 1]));
  return {
    index: r[0] === null ? null : Number(r[0]),
    jobManagers: Math.max(0, Number(r[1])),
    leadership: ls && { ...ls, ttlMs: Number(r[4]), published: Number(r[5]) },
    singletons,
  };
}

// ---- the leadership history -------------------------------------------------------------

/** history_read.lua: {Done, cursor or false, then per entry id, grant, address, end}. */
export function decodeHistoryRead(r: ScriptReply): Page<HistoryEntry> {
  if (r[0] !== Code.Done) throw unexpectedReply('history_read', r[0]);
  const items: HistoryEntry[] = [];
  for (let i = 2; i + 3 < r.length; i += 4) {
    items.push(parseHistoryEntry(r[i + 1] as string, r[i + 2] as string | null, r[i + 3] as string | null));
  }
  const next = r[1] ? String(r[1]) : undefined;
  return next === undefined ? { items } : { items, next };
}

/** history_lost.lua: {Done, 1 recorded or 0}. */
export function decodeHistoryLost(r: ScriptReply): boolean {
  if (r[0] !== Code.Done) throw unexpectedReply('history_lost', r[0]);
  return r[1] === 1;
}
