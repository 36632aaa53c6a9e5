/**
 * What a chaos run records: every record its processes printed (NDJSON on stdout) and
 * what the harness itself did and read back, all timed on one clock that the processes
 * share (CLOCK_MONOTONIC in ms: `process.hrtime`; `performance.now()` has a per-process
 * origin).
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** Now on the clock every process of the run shares. */
export const sharedNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The setups of a run: `aof` and `volatile` in the single-Redis topology, `shard1` to
 * `shard3` (a leasehold cluster on each shard of a Redis Cluster, at first) in the cluster
 * topology, one per other topology (see cluster.ts). */
export type SetupName = 'aof' | 'volatile' | 'replicated' | 'restored' | 'cutoff' | 'shard1' | 'shard2' | 'shard3';

/** What runs the harness: `single` (a Redis with AOF and one without persistence, side by
 * side) or one of the Redis-topology lanes. */
export type TopologyName = 'single' | 'sentinel' | 'restore' | 'logcut' | 'cluster';
export const TOPOLOGIES: readonly TopologyName[] = ['single', 'sentinel', 'restore', 'logcut', 'cluster'];

/** How a setup's Redis keeps its data, which decides what the checker may excuse:
 *   aof         one Redis, AOF with `appendfsync always`: nothing acknowledged is lost;
 *   none        one Redis without persistence, killed: loss unavoidable, reported, and what
 *               it explains is excused;
 *   replicated  a primary, a replica and Sentinels (or a Redis Cluster's shard: a primary
 *               and its replica), one replica acknowledging every write: nothing
 *               acknowledged is lost, nothing is excused;
 *   restored    one Redis without persistence, restarted from older snapshots: loss of
 *               acknowledged writes unavoidable and reported, and nothing else excused
 *               (no two leaders, nothing reused, watchers converge). */
export type Durability = 'aof' | 'none' | 'replicated' | 'restored';

/** A setup's durability; histories from before the lanes have only `persistent`. */
export function durabilityOf(info: SetupInfo): Durability {
  return info.durability ?? (info.persistent ? 'aof' : 'none');
}

/** A leader as recorded: contender, session, token, address. */
export interface Holder {
  c: string;
  s: string;
  t: number;
  a: string | null;
}

export type OpKind = 'createResult' | 'putPlan' | 'increment' | 'addCheckpoint';

/** A store operation as one SDK call: sent before the call, answered when it settled (after
 * the SDK's own retries). `ok`, `unknown` (timeout, 503, network) or the error code. */
export interface OpRecord {
  k: 'op';
  proc: string;
  /** Numbers the operations of a process: its `send` record has the same. */
  seq: number;
  /** The component whose leader owns the data, which fences the write (and whose
   * contender in `proc` wrote it). */
  owner: string;
  op: OpKind;
  token: number;
  jobId: string;
  checkpointId?: number;
  /** What an `increment` handed out. */
  value?: number;
  sent: number;
  answered: number;
  outcome: string;
  status?: number;
}

/** An operation about to be sent: a process killed before the answer leaves only this. */
export type SendRecord = Pick<OpRecord, 'proc' | 'seq' | 'owner' | 'op' | 'token' | 'jobId' | 'checkpointId' | 'sent'> & { k: 'send' };

export type ChildRecord =
  | SendRecord
  | { k: 'grant'; t: number; proc: string; component: string; session: string; token: number; contenderId: string; sent: number; until: number }
  /** A renewal extended the leadership until `until`; `sent`: when that renewal was sent
   * (absent in histories from before it was recorded). */
  | { k: 'valid'; t: number; proc: string; component: string; session: string; sent?: number; until: number }
  | { k: 'revoke'; t: number; proc: string; component: string; reason: string }
  | OpRecord
  | { k: 'idle'; t: number; proc: string }
  | { k: 'ws'; t: number; proc: string; server: string; type: 'snapshot'; index: number; leaders: Record<string, Holder | null> }
  | { k: 'ws'; t: number; proc: string; server: string; type: 'change'; index: number; event: string; component: string; leader: Holder | null }
  | { k: 'wsConn'; t: number; proc: string; server: string; up: boolean; reason?: string };

export type HarnessRecord =
  /** A process started: its contenders (component → contenderId) or a watcher. */
  | { k: 'spawn'; t: number; proc: string; setup: SetupName; role: 'contender' | 'watcher'; server: string; contenders?: Record<string, string> }
  | { k: 'exit'; t: number; proc: string; signal: string | null; code: number | null }
  /** `start`: first act; `dead`: the target is surely down (exit seen); `end`: healed.
   * `no-replica`: from `start` to `end` no replica could take a write (what was sent in
   * it and answered in it must not be acknowledged). `restore-snapshot`: `taken` is when the snapshot was
   * taken. `cut-past-log`: `changes` went through while `target`'s link was cut. */
  | { k: 'fault'; kind: string; setup: SetupName; target: string; start: number; dead?: number; end: number; detail?: string; taken?: number; changes?: number }
  /** The leaders a server answers after quiescence. */
  | { k: 'final'; setup: SetupName; server: string; t: number; index: number; leaders: Record<string, Holder | null> }
  /** The change log Redis holds at the end: [index, component]. */
  | { k: 'log'; setup: SetupName; entries: Array<[number, string]> }
  | { k: 'readback'; setup: SetupName; jobResults: string[]; plans: Record<string, string>; checkpoints: Record<string, number[]>; counters: Record<string, number> }
  | { k: 'health'; setup: SetupName; server: string; dataLossCount: number; dataLossMetric: number | null }
  /** What a Sentinel announced (`+switch-master`, `+sdown`, …): a failover the harness did
   * not cause shows here. */
  | { k: 'sentinel'; t: number; setup: SetupName; event: string; detail: string }
  /** A request the harness sent itself, once, without retries: a campaign while no replica
   * could hold it, say. */
  | { k: 'probe'; setup: SetupName; server: string; what: string; sent: number; answered: number; status: number | null };

export type HistoryRecord = ChildRecord | HarnessRecord;

export interface SetupInfo {
  clusterId: string;
  /** Nothing acknowledged is ever lost (AOF, or a replica acknowledging). */
  persistent: boolean;
  durability?: Durability;
  /** The server replicas' CHANGE_LOG_SIZE when it is not the harness's default. */
  changeLogSize?: number;
  servers: string[];
  components: string[];
}

export interface History {
  version: 1;
  /** Absent in histories from before the lanes: `single`. */
  topology?: TopologyName;
  seed: number;
  durationMs: number;
  maxRetained: number;
  /** The setups of its topology. */
  setups: Partial<Record<SetupName, SetupInfo>>;
  records: HistoryRecord[];
}

export function saveHistory(path: string, h: History): void {
  writeFileSync(path, JSON.stringify(h));
}

export function loadHistory(path: string): History {
  const h = JSON.parse(readFileSync(path, 'utf8')) as History;
  if (h.version !== 1 || !Array.isArray(h.records)) throw new Error(`${path} is not a chaos history`);
  return h;
}

/** A leader object of the API, as recorded. */
export function holder(l: { contenderId: string; sessionId: string; fencingToken: number; address: string | null } | null): Holder | null {
  return l && { c: l.contenderId, s: l.sessionId, t: l.fencingToken, a: l.address };
}

/** The bytes of the plan a dispatcher stores for a job, read back at the end. */
export function planContent(jobId: string, token: number): string {
  return `plan:${jobId}:${token}`;
}
