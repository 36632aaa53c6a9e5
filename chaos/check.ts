/**
 * The checker: reads a run's history and judges five invariants. It is meant to be sound
 * (no false violation): every judgement of "before" compares the answer time of one act
 * with the send time of another on the clock the processes share, so clock granularity and
 * network time can only hide a violation, never invent one. Where Redis without
 * persistence lost its data, what that loss can explain is excused (and counted), provided
 * the loss was reported. Nothing is excused anywhere else: not with AOF, not with a
 * replica acknowledging every write (an overlap there is a violation, whatever failed),
 * and not when Redis was restarted from an older snapshot, where only the loss of
 * acknowledged writes is unavoidable, and must have been reported.
 *
 * With a replica acknowledging, a change can still be told and then lost: a script
 * publishes its change as it runs, before WAIT, and a failover drops what no replica held
 * (a paused primary, resumed, runs what was sent to it before it learns it was demoted).
 * Such a rolled-back change (told to a watcher, absent from the log read back, which holds
 * changes before and after it) was never acknowledged: it is no part of the history others
 * must have seen, and proves no lease over; but a watcher told it must get a snapshot next.
 */
import { durabilityOf, planContent, type Durability, type History, type HistoryRecord, type Holder, type OpRecord, type SetupName } from './history.js';

export interface InvariantResult {
  id: number;
  title: string;
  violations: string[];
  /** What was checked, and what was excused. */
  summary: string;
}

export interface CheckReport {
  results: InvariantResult[];
  faults: number;
  operations: number;
  /** How many operations ended each way: `ok`, an error code, `unknown (503)`, … */
  outcomes: Record<string, number>;
  violations: number;
}

/** Outcomes that say the writer is not the leader: nothing was written. */
const REFUSED = new Set(['FencingTokenStale', 'FencingTokenRequired', 'NotLeader']);

type Rec<K extends HistoryRecord['k']> = Extract<HistoryRecord, { k: K }>;

interface ProcInfo {
  setup: SetupName;
  role: 'contender' | 'watcher';
}

/** Redis without persistence died between `start` (kill sent) and `dead` (exit seen);
 * restarted from a snapshot taken at `taken`, it lost only what came after that. */
interface Loss {
  start: number;
  dead: number;
  taken?: number;
}

/** A replicated setup had no replica that could hold a write from `start` to `end`. */
interface NoReplica {
  start: number;
  end: number;
}

interface Window {
  proc: string;
  key: string;
  contenderId: string;
  session: string;
  token: number;
  sent: number;
  start: number;
  end: number;
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** Facts gathered once from the records. */
class Facts {
  readonly procs = new Map<string, ProcInfo>();
  readonly ops: OpRecord[] = [];
  readonly losses = new Map<SetupName, Loss[]>();
  readonly noReplica = new Map<SetupName, NoReplica[]>();
  readonly windows: Window[] = [];
  /** setup/component → when a token was first seen dead, and why. */
  readonly dead = new Map<string, Map<number, { t: number; why: string }>>();
  /** setup/component → every sighting of a token: [token, time]. */
  readonly sightings = new Map<string, Array<[number, number]>>();
  /** Per key, aligned with its sorted sightings: the earliest time from there on. */
  private readonly earliestFrom = new Map<string, number[]>();
  readonly finals: Rec<'final'>[] = [];
  /** `setup/component|token` of every grant a contender received. */
  private readonly grantedTokens = new Set<string>();
  readonly faults: Rec<'fault'>[] = [];
  /** Per setup with a replica acknowledging: the indexes of changes told to a watcher and
   * then rolled back (see the top of this file). */
  private readonly rolledBack = new Map<SetupName, Set<number>>();

  constructor(readonly h: History) {
    for (const name of Object.keys(h.setups) as SetupName[]) {
      this.losses.set(name, []);
      this.noReplica.set(name, []);
    }
    const unanswered = new Map<string, Rec<'send'>>();
    for (const r of h.records) {
      if (r.k === 'send') unanswered.set(`${r.proc}|${r.owner}|${r.seq}`, r);
      if (r.k === 'op') unanswered.delete(`${r.proc}|${r.owner}|${r.seq}`);
    }
    for (const r of h.records) {
      if (r.k === 'spawn') this.procs.set(r.proc, { setup: r.setup, role: r.role });
      else if (r.k === 'op') this.ops.push(r);
      else if (r.k === 'final') this.finals.push(r);
      else if (r.k === 'fault' && r.kind === 'no-replica') this.noReplica.get(r.setup)!.push({ start: r.start, end: r.end });
      else if (r.k === 'fault') {
        this.faults.push(r);
        if (r.kind.startsWith('kill-redis') && this.durability(r.setup) === 'none') this.losses.get(r.setup)!.push({ start: r.start, dead: r.dead ?? r.end });
        if (r.kind === 'restore-snapshot') this.losses.get(r.setup)!.push({ start: r.start, dead: r.dead ?? r.end, taken: r.taken ?? -Infinity });
      }
    }
    // Sent by a process that died before the answer: it may have been applied.
    for (const r of unanswered.values()) this.ops.push({ ...r, k: 'op', answered: Infinity, outcome: 'unknown' });
    this.findRolledBack();
    this.buildWindows();
    this.buildSightings();
    this.buildDeaths();
  }

  key(setup: SetupName, component: string): string {
    return `${setup}/${component}`;
  }

  /** The key of a component of the setup that `proc` belongs to. */
  keyOf(proc: string, component: string): string {
    return this.key(this.procs.get(proc)!.setup, component);
  }

  setupOf(key: string): SetupName {
    return key.slice(0, key.indexOf('/')) as SetupName;
  }

  durability(setup: SetupName): Durability {
    return durabilityOf(this.h.setups[setup]!);
  }

  /** A loss of `setup` that could fall between an act done by `before` and one done from
   * `after` on, and that excuses what it explains: only Redis without persistence (killed)
   * excuses two leaders, a value handed out twice or a gap. */
  lossBetween(setup: SetupName, before: number, after: number): Loss | undefined {
    if (this.durability(setup) !== 'none') return undefined;
    return this.losses.get(setup)?.find((l) => l.dead > before && l.start < after);
  }

  private findRolledBack(): void {
    for (const log of this.h.records) {
      if (log.k !== 'log' || this.durability(log.setup) !== 'replicated' || log.entries.length === 0) continue;
      const kept = new Set(log.entries.map(([index]) => index));
      const [first, last] = [Math.min(...kept), Math.max(...kept)];
      const gone = new Set<number>();
      // (One above the last was made after the log was read: leases still change then.)
      for (const r of this.h.records) {
        if (r.k === 'ws' && r.type === 'change' && this.procs.get(r.proc)?.setup === log.setup && r.index > first && r.index < last && !kept.has(r.index)) gone.add(r.index);
      }
      this.rolledBack.set(log.setup, gone);
    }
  }

  /** Whether a change told to `proc` was rolled back. */
  rolledBackChange(proc: string, index: number): boolean {
    return this.rolledBack.get(this.procs.get(proc)!.setup)?.has(index) ?? false;
  }

  private buildWindows(): void {
    const open = new Map<string, Window>();
    const close = (id: string) => {
      const w = open.get(id);
      if (w) this.windows.push(w);
      open.delete(id);
    };
    for (const r of this.h.records) {
      if (r.k !== 'grant' && r.k !== 'valid' && r.k !== 'revoke') continue;
      const id = `${r.proc}|${r.component}`;
      if (r.k === 'grant') {
        close(id);
        open.set(id, { proc: r.proc, key: this.keyOf(r.proc, r.component), contenderId: r.contenderId, session: r.session, token: r.token, sent: r.sent, start: r.t, end: r.until });
      } else if (r.k === 'valid') {
        const w = open.get(id);
        if (w && w.session === r.session) w.end = Math.max(w.end, r.until);
      } else {
        const w = open.get(id);
        // NotLeader from a renewal: at that moment the lease was not this session's, and a
        // session never gets its lease back.
        if (w && r.reason === 'lost') this.markDead(w.key, w.token, r.t, `${r.proc} was told NotLeader`);
        close(id);
      }
    }
    for (const id of [...open.keys()]) close(id);
  }

  private sight(key: string, token: number, t: number): void {
    let list = this.sightings.get(key);
    if (!list) this.sightings.set(key, (list = []));
    list.push([token, t]);
  }

  private buildSightings(): void {
    for (const r of this.h.records) {
      if (r.k === 'grant') {
        this.sight(this.keyOf(r.proc, r.component), r.token, r.t);
        this.grantedTokens.add(`${this.keyOf(r.proc, r.component)}|${r.token}`);
      } else if (r.k === 'op' && r.outcome === 'ok') {
        this.sight(this.keyOf(r.proc, r.owner), r.token, r.answered);
      } else if (r.k === 'ws') {
        const setup = this.procs.get(r.proc)!.setup;
        if (r.type === 'change') {
          if (r.leader && !this.rolledBackChange(r.proc, r.index)) this.sight(this.key(setup, r.component), r.leader.t, r.t);
        } else {
          for (const [c, l] of Object.entries(r.leaders)) if (l) this.sight(this.key(setup, c), l.t, r.t);
        }
      } else if (r.k === 'final') {
        for (const [c, l] of Object.entries(r.leaders)) if (l) this.sight(this.key(r.setup, c), l.t, r.t);
      }
    }
    for (const [key, list] of this.sightings) {
      list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      const earliest = list.map(([, t]) => t);
      for (let i = earliest.length - 2; i >= 0; i--) earliest[i] = Math.min(earliest[i], earliest[i + 1]);
      this.earliestFrom.set(key, earliest);
    }
  }

  markDead(key: string, token: number, t: number, why: string): void {
    let m = this.dead.get(key);
    if (!m) this.dead.set(key, (m = new Map()));
    const d = m.get(token);
    if (!d || t < d.t) m.set(token, { t, why });
  }

  private buildDeaths(): void {
    // A watcher that learned a token from a change and then saw a later change of that
    // component name another leader (or none): the token's lease had ended by then.
    const last = new Map<string, number | null>();
    for (const r of this.h.records) {
      if (r.k !== 'ws' || r.type !== 'change' || this.rolledBackChange(r.proc, r.index)) continue;
      const key = this.key(this.procs.get(r.proc)!.setup, r.component);
      const w = `${r.proc}@${r.server}/${r.component}`;
      const before = last.get(w);
      const now = r.leader?.t ?? null;
      if (before != null && before !== now) this.markDead(key, before, r.t, `${r.proc}@${r.server} saw ${r.event} at index ${r.index}`);
      last.set(w, now);
    }
    // Redis without persistence lost every lease it held: tokens seen before its kill are
    // dead once it surely died.
    for (const [key, list] of this.sightings) {
      // (A snapshot restored keeps the leases it held, which may still be the newest.)
      const losses = this.durability(this.setupOf(key)) === 'none' ? (this.losses.get(this.setupOf(key)) ?? []) : [];
      const first = new Map<number, number>();
      for (const [token, t] of list) if (!first.has(token) || t < first.get(token)!) first.set(token, t);
      for (const loss of losses) {
        for (const [token, t] of first) if (t < loss.start) this.markDead(key, token, loss.dead, 'Redis without persistence was killed');
      }
    }
  }

  /** When the lease of `token` was surely over: a higher token was seen, or one of the
   * deaths above. */
  deadAt(key: string, token: number): { t: number; why: string } | null {
    let best = this.dead.get(key)?.get(token) ?? null;
    const list = this.sightings.get(key) ?? [];
    let a = 0;
    let b = list.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (list[m][0] <= token) a = m + 1;
      else b = m;
    }
    if (a < list.length) {
      const t = this.earliestFrom.get(key)![a];
      if (!best || t < best.t) best = { t, why: `a higher token, ${list[a][0]} or above, was seen` };
    }
    return best;
  }

  granted(key: string, token: number): boolean {
    return this.grantedTokens.has(`${key}|${token}`);
  }
}

export function check(h: History): CheckReport {
  const f = new Facts(h);
  const results = [holders(f), fencing(f), increasing(f), watchers(f), durability(f)];
  const outcomes: Record<string, number> = {};
  for (const op of f.ops) {
    const why = op.answered === Infinity ? 'its process was killed' : op.status ? String(op.status) : 'timeout or network';
    const k = op.outcome === 'unknown' ? `unknown (${why})` : op.outcome;
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  }
  return {
    results,
    faults: f.faults.length,
    operations: f.ops.length,
    outcomes,
    violations: results.reduce((n, r) => n + r.violations.length, 0),
  };
}

/** 1. Belief windows [grant, latest validUntil] of different sessions never overlap. */
function holders(f: Facts): InvariantResult {
  const violations: string[] = [];
  let excused = 0;
  const byKey = new Map<string, Window[]>();
  for (const w of f.windows) {
    if (!byKey.has(w.key)) byKey.set(w.key, []);
    byKey.get(w.key)!.push(w);
  }
  for (const [key, ws] of byKey) {
    ws.sort((a, b) => a.start - b.start);
    for (let i = 0; i < ws.length; i++) {
      for (let j = i + 1; j < ws.length && ws[j].start < ws[i].end; j++) {
        const [a, b] = [ws[i], ws[j]];
        // The same grant picked up by a restarted contender with the same contenderId.
        if (a.session === b.session && a.contenderId === b.contenderId) continue;
        if (f.lossBetween(f.setupOf(key), a.sent, b.start)) {
          excused++;
          continue;
        }
        const why = f.durability(f.setupOf(key)) === 'replicated' ? ' (a replica acknowledged every write: nothing excuses it)' : '';
        violations.push(
          `${key}: ${a.proc} (token ${a.token}) believed it led until ${fmt(a.end - b.start)} after ${b.proc} (token ${b.token}) was granted${why}`,
        );
      }
    }
  }
  return {
    id: 1,
    title: 'at most one valid holder per component',
    violations,
    summary: `${f.windows.length} leaderships${excused ? `, ${excused} overlaps after Redis without persistence lost its leases (excused)` : ''}`,
  };
}

/** 2. An accepted write carries a granted token whose lease was not known over when the
 * write was sent. */
function fencing(f: Facts): InvariantResult {
  const violations: string[] = [];
  let accepted = 0;
  let refused = 0;
  let unknown = 0;
  for (const op of f.ops) {
    if (REFUSED.has(op.outcome)) refused++;
    if (op.outcome === 'unknown') unknown++;
    if (op.outcome !== 'ok') continue;
    accepted++;
    const key = `${f.procs.get(op.proc)!.setup}/${op.owner}`;
    const what = `${op.op} ${op.jobId}${op.checkpointId === undefined ? '' : `/${op.checkpointId}`} by ${op.proc} with token ${op.token}`;
    if (!f.granted(key, op.token)) {
      violations.push(`${key}: ${what} was accepted, a token never granted for it`);
      continue;
    }
    const dead = f.deadAt(key, op.token);
    if (dead && op.sent > dead.t) violations.push(`${key}: ${what} was accepted though sent ${fmt(op.sent - dead.t)} after that lease was over (${dead.why})`);
  }
  return {
    id: 2,
    title: 'no store write accepted from anything but the current holder',
    violations,
    summary: `${accepted} writes accepted, ${refused} refused as not the leader's, ${unknown} of unknown outcome`,
  };
}

/** 3. Tokens of successive grants rise and belong to one session each; checkpoint ids and
 * counter values rise and are never handed out twice. */
function increasing(f: Facts): InvariantResult {
  const violations: string[] = [];
  let excused = 0;
  // One session per token, one token and contender per session.
  const bySession = new Map<string, { token: number; contenderId: string }>();
  const byToken = new Map<string, string>();
  const pair = (key: string, l: Holder, where: string) => {
    const s = bySession.get(`${key}|${l.s}`);
    if (s && (s.token !== l.t || s.contenderId !== l.c)) violations.push(`${key}: session ${l.s} has token ${s.token} of ${s.contenderId} and token ${l.t} of ${l.c} (${where})`);
    else bySession.set(`${key}|${l.s}`, { token: l.t, contenderId: l.c });
    const t = byToken.get(`${key}|${l.t}`);
    if (t && t !== l.s) violations.push(`${key}: token ${l.t} belongs to sessions ${t} and ${l.s} (${where})`);
    else byToken.set(`${key}|${l.t}`, l.s);
  };
  const grants = new Map<string, Rec<'grant'>[]>();
  const granted = new Map<string, Map<number, { key: string; token: number; event: string }>>();
  for (const r of f.h.records) {
    if (r.k === 'grant') {
      const key = f.keyOf(r.proc, r.component);
      pair(key, { c: r.contenderId, s: r.session, t: r.token, a: null }, `grant to ${r.proc}`);
      if (!grants.has(key)) grants.set(key, []);
      grants.get(key)!.push(r);
    } else if (r.k === 'ws') {
      const setup = f.procs.get(r.proc)!.setup;
      if (r.type === 'snapshot') {
        for (const [c, l] of Object.entries(r.leaders)) if (l) pair(f.key(setup, c), l, `snapshot to ${r.proc}@${r.server}`);
        continue;
      }
      // A rolled-back change handed nothing out: its campaign was answered 503.
      if (f.rolledBackChange(r.proc, r.index)) continue;
      const key = f.key(setup, r.component);
      if (r.leader) pair(key, r.leader, `change ${r.index} to ${r.proc}@${r.server}`);
      // One change per index: every watcher must have been told the same.
      if (!granted.has(setup)) granted.set(setup, new Map());
      const seen = granted.get(setup)!.get(r.index);
      const now = { key, token: r.leader?.t ?? -1, event: r.event };
      if (seen && (seen.key !== now.key || seen.token !== now.token || seen.event !== now.event)) {
        violations.push(`${setup}: index ${r.index} is ${seen.event} ${seen.key} ${seen.token} for one watcher, ${now.event} ${now.key} ${now.token} for ${r.proc}@${r.server}`);
      } else granted.get(setup)!.set(r.index, now);
    }
  }
  // A grant answered before another session's campaign was sent has the lower token.
  for (const [key, gs] of grants) {
    for (const a of gs) {
      for (const b of gs) {
        if (a.session !== b.session && a.t < b.sent && a.token >= b.token) {
          violations.push(`${key}: ${b.proc} was granted token ${b.token} after ${a.proc} had been granted ${a.token}`);
        }
      }
    }
  }
  // Grants in index order have rising tokens.
  for (const [setup, byIndex] of granted) {
    const last = new Map<string, { index: number; token: number }>();
    for (const [index, c] of [...byIndex].sort((a, b) => a[0] - b[0])) {
      if (c.event !== 'granted') continue;
      const prev = last.get(c.key);
      if (prev && c.token <= prev.token) violations.push(`${setup}: ${c.key} granted token ${c.token} at index ${index} after ${prev.token} at ${prev.index}`);
      last.set(c.key, { index, token: c.token });
    }
  }
  // Counter values and checkpoint ids: acts answered before others were sent hold lower
  // values; no value twice (unless Redis without persistence lost it in between).
  const series = new Map<string, Array<{ v: number; op: OpRecord }>>();
  for (const op of f.ops) {
    const setup = f.procs.get(op.proc)!.setup;
    if (op.op === 'addCheckpoint' && op.outcome === 'CheckpointIdNotIncreasing' && f.h.setups[setup]!.persistent) {
      violations.push(`${setup}: checkpoint ${op.jobId}/${op.checkpointId} from the counter was refused as not increasing`);
    }
    if (op.outcome !== 'ok') continue;
    const v = op.op === 'increment' ? op.value : op.op === 'addCheckpoint' ? op.checkpointId : undefined;
    if (v === undefined) continue;
    const key = `${setup} ${op.op === 'increment' ? 'counter value' : 'checkpoint id'} of ${op.jobId}`;
    if (!series.has(key)) series.set(key, []);
    series.get(key)!.push({ v, op });
  }
  let values = 0;
  for (const [key, xs] of series) {
    values += xs.length;
    const setup = key.slice(0, key.indexOf(' ')) as SetupName;
    for (const y of xs) {
      let lost = false;
      for (const x of xs) {
        if (x === y) continue;
        const twice = x.v === y.v && x.op.sent < y.op.sent;
        const backwards = x.op.answered < y.op.sent && x.v > y.v;
        if (!twice && !backwards) continue;
        if (f.lossBetween(setup, x.op.sent, y.op.answered)) {
          lost = true;
          continue;
        }
        violations.push(
          twice ? `${key}: ${y.v} handed out again to ${y.op.proc} (first to ${x.op.proc})` : `${key}: ${y.v} (${y.op.proc}) came after ${x.v} (${x.op.proc})`,
        );
      }
      if (lost) excused++;
    }
  }
  return {
    id: 3,
    title: 'tokens, checkpoint ids and counter values strictly increasing, never reused',
    violations,
    summary: `${bySession.size} sessions, ${values} counter values and checkpoint ids${excused ? `, ${excused} of them at or below values handed out before Redis without persistence lost them (excused)` : ''}`,
  };
}

/** 4. Watchers see changes in index order with no gap they were not told of, and end with
 * the leaders the servers answer after quiescence: what a watcher knew when the harness
 * found it agreeing with its server, and recorded that server's answer (the `final`
 * record); leases that still change after it (a lease that its contender keeps losing
 * while every write answers 503, say) are no part of that comparison. */
function watchers(f: Facts): InvariantResult {
  const violations: string[] = [];
  let excused = 0;
  const truth = new Map<SetupName, number[]>();
  const add = (setup: SetupName, index: number) => {
    if (!truth.has(setup)) truth.set(setup, []);
    truth.get(setup)!.push(index);
  };
  for (const r of f.h.records) {
    if (r.k === 'log') for (const [index] of r.entries) add(r.setup, index);
    else if (r.k === 'ws' && r.type === 'change' && !f.rolledBackChange(r.proc, r.index)) add(f.procs.get(r.proc)!.setup, r.index);
  }
  for (const [setup, xs] of truth) truth.set(setup, [...new Set(xs)].sort((a, b) => a - b));

  // Each record with its place in the history (the order the harness received them).
  const streams = new Map<string, { setup: SetupName; server: string; recs: Rec<'ws'>[]; at: number[] }>();
  for (const [i, r] of f.h.records.entries()) {
    if (r.k !== 'ws') continue;
    const k = `${r.proc}@${r.server}`;
    if (!streams.has(k)) streams.set(k, { setup: f.procs.get(r.proc)!.setup, server: r.server, recs: [], at: [] });
    streams.get(k)!.recs.push(r);
    streams.get(k)!.at.push(i);
  }
  let changes = 0;
  let rolledBack = 0;
  for (const [name, { setup, server, recs, at }] of streams) {
    const final = f.finals.find((x) => x.setup === setup && x.server === server);
    const finalAt = final ? f.h.records.indexOf(final) : Infinity;
    const state = new Map<string, string | null>();
    /** What the watcher knew when its server's final answer was recorded. */
    let known: Map<string, string | null> | null = null;
    let told = -1;
    let toldAt = -Infinity;
    /** The first rolled-back change told since the last snapshot. */
    let branch: number | null = null;
    for (const [j, r] of recs.entries()) {
      if (!known && at[j] > finalAt) known = new Map(state);
      if (r.type === 'snapshot') {
        if (r.index < told) violations.push(`${name}: snapshot at index ${r.index} after index ${told}`);
        state.clear();
        for (const [c, l] of Object.entries(r.leaders)) state.set(c, l?.s ?? null);
        branch = null;
      } else {
        changes++;
        if (r.index <= told) violations.push(`${name}: change ${r.index} after index ${told}`);
        const missed = between(truth.get(setup) ?? [], told, r.index);
        if (f.rolledBackChange(r.proc, r.index)) {
          rolledBack++;
          branch ??= r.index;
        } else if (branch !== null) {
          violations.push(`${name}: after change ${branch}, which a failover rolled back, came change ${r.index} with no snapshot`);
          branch = null;
        } else if (told >= 0 && missed.length > 0) {
          if (f.lossBetween(setup, toldAt, r.t)) excused++;
          else violations.push(`${name}: after index ${told} came ${r.index}, missing ${missed.slice(0, 3).join(', ')}${missed.length > 3 ? ` and ${missed.length - 3} more` : ''}, with no snapshot`);
        }
        state.set(r.component, r.leader?.s ?? null);
      }
      told = Math.max(told, r.index);
      toldAt = r.t;
    }
    if (branch !== null) violations.push(`${name}: ends on change ${branch}, which a failover rolled back, with no snapshot after it`);
    if (!final) {
      violations.push(`${name}: no final leaders read from ${server}`);
      continue;
    }
    known ??= state;
    for (const c of new Set([...known.keys(), ...Object.keys(final.leaders)])) {
      const want = final.leaders[c]?.s ?? null;
      const have = known.get(c) ?? null;
      if (want !== have) violations.push(`${name}: ends with ${c} led by session ${have}, the server answers ${want}`);
    }
  }
  // A server whose link was cut while more changes than its log holds went through must
  // tell its watchers with a snapshot, at an index above every one they had.
  let resyncs = 0;
  const cuts = f.faults.filter((x) => x.kind === 'cut-past-log').sort((a, b) => a.start - b.start);
  for (const [i, cut] of cuts.entries()) {
    const next = cuts.slice(i + 1).find((x) => x.target === cut.target)?.start ?? Infinity;
    for (const [name, { setup, server, recs }] of streams) {
      if (setup !== cut.setup || server !== cut.target) continue;
      const had = Math.max(-1, ...recs.filter((r) => r.t < cut.start).map((r) => r.index));
      const snap = recs.find((r) => r.type === 'snapshot' && r.t >= cut.start && r.t < next);
      if (!snap) violations.push(`${name}: no snapshot after ${cut.changes ?? 'many'} changes went by while ${server}'s link was cut (${cut.detail ?? ''})`);
      else if (snap.index <= had) violations.push(`${name}: the snapshot after ${server}'s link was cut has index ${snap.index}, not above ${had}`);
      else resyncs++;
    }
  }
  // Every replica of a setup answers the same leaders in the end.
  for (const setup of Object.keys(f.h.setups) as SetupName[]) {
    const fs = f.finals.filter((x) => x.setup === setup);
    for (const x of fs.slice(1)) {
      for (const c of new Set([...Object.keys(x.leaders), ...Object.keys(fs[0].leaders)])) {
        if ((x.leaders[c]?.s ?? null) !== (fs[0].leaders[c]?.s ?? null)) violations.push(`${setup}: ${x.server} and ${fs[0].server} disagree on the leader of ${c}`);
      }
    }
  }
  return {
    id: 4,
    title: 'watchers end with the true leaders, changes in index order, no untold gap',
    violations,
    summary: `${streams.size} watcher streams, ${changes} changes received${rolledBack ? `, ${rolledBack} of them rolled back by a failover (never acknowledged; a snapshot came next)` : ''}${cuts.length ? `, ${resyncs} resyncs past the change log told by a snapshot with a new index` : ''}${excused ? `, ${excused} gaps across a loss of Redis without persistence (excused)` : ''}`,
  };
}

/** Values of sorted `xs` strictly between `lo` and `hi`. */
function between(xs: number[], lo: number, hi: number): number[] {
  let a = 0;
  let b = xs.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (xs[m] <= lo) a = m + 1;
    else b = m;
  }
  const out: number[] = [];
  for (let i = a; i < xs.length && xs[i] < hi; i++) out.push(xs[i]);
  return out;
}

/** Why an acknowledged write that is gone is a violation, by durability. */
const GONE: Record<Durability, string> = {
  aof: ' (Redis has AOF)',
  replicated: ' (a replica had acknowledged it)',
  none: ', and no loss of Redis data explains it',
  restored: ', and no restore of a snapshot taken before it explains it',
};

/** 5. Acknowledged writes are all there at the end with AOF or a replica acknowledging, and
 * with a replica acknowledging nothing is acknowledged while no replica can hold it; without
 * persistence, or restored from an older snapshot, what is missing went with a loss that
 * was reported. Refused writes are never there. */
function durability(f: Facts): InvariantResult {
  const violations: string[] = [];
  const counts = { checked: 0, lostReported: 0, refusedNoReplica: 0, noReplica: 0, probes: 0, probesRefused: 0 };
  const lossWords: string[] = [];
  const reports: string[] = [];
  for (const [setup, info] of Object.entries(f.h.setups) as Array<[SetupName, NonNullable<History['setups'][SetupName]>]>) {
    const kind = durabilityOf(info);
    const back = f.h.records.find((r): r is Rec<'readback'> => r.k === 'readback' && r.setup === setup);
    const health = f.h.records.filter((r): r is Rec<'health'> => r.k === 'health' && r.setup === setup);
    if (!back) {
      violations.push(`${setup}: nothing was read back`);
      continue;
    }
    const losses = f.losses.get(setup)!;
    const ops = f.ops.filter((op) => f.procs.get(op.proc)!.setup === setup);
    const results = new Set(back.jobResults);
    // What a write that may have been applied (accepted, or of unknown outcome) could have stored.
    const attempted = { results: new Set<string>(), plans: new Set<string>(), checkpoints: new Set<string>() };
    for (const op of ops) {
      if (op.outcome !== 'ok' && op.outcome !== 'unknown') continue;
      if (op.op === 'createResult') attempted.results.add(op.jobId);
      if (op.op === 'putPlan') attempted.plans.add(op.jobId);
      if (op.op === 'addCheckpoint') attempted.checkpoints.add(`${op.jobId}/${op.checkpointId}`);
    }
    // The losses that took an acknowledged write with them.
    const lostTo = new Set<Loss>();
    const missing = (op: OpRecord, what: string) => {
      const loss = losses.find((l) => op.sent < l.dead && (l.taken === undefined || op.answered >= l.taken));
      if (loss) {
        counts.lostReported++;
        lostTo.add(loss);
      } else violations.push(`${setup}: acknowledged ${what} is gone${GONE[kind]}`);
    };
    // With a replica acknowledging: nothing sent while no replica could hold it, and
    // answered before one could again, is acknowledged.
    for (const w of f.noReplica.get(setup) ?? []) {
      counts.noReplica++;
      const inside = (sent: number, answered: number) => sent >= w.start && answered <= w.end;
      for (const op of ops) {
        if (!inside(op.sent, op.answered)) continue;
        if (op.status === 503) counts.refusedNoReplica++;
        if (op.outcome === 'ok') violations.push(`${setup}: ${op.op} ${op.jobId} by ${op.proc} was acknowledged though no replica could hold it (sent ${fmt(op.sent - w.start)} into a window of ${fmt(w.end - w.start)})`);
      }
      for (const r of f.h.records) {
        if (r.k === 'grant' && f.procs.get(r.proc)?.setup === setup && inside(r.sent, r.t)) {
          violations.push(`${setup}: ${r.proc} was granted ${r.component} (token ${r.token}) though no replica could hold the grant`);
        }
        if (r.k === 'valid' && r.sent !== undefined && f.procs.get(r.proc)?.setup === setup && inside(r.sent, r.t)) {
          violations.push(`${setup}: a renewal of ${r.component} by ${r.proc} was acknowledged though no replica could hold it`);
        }
        if (r.k === 'probe' && r.setup === setup && inside(r.sent, r.answered)) {
          counts.probes++;
          if (r.status === 503) counts.probesRefused++;
          else if (r.status !== null && r.status < 300) violations.push(`${setup}: a ${r.what} sent to ${r.server} while no replica could hold it answered ${r.status}, not 503`);
        }
      }
    }
    for (const op of ops) {
      const name = `${op.op} ${op.jobId}${op.checkpointId === undefined ? '' : `/${op.checkpointId}`} by ${op.proc}`;
      if (REFUSED.has(op.outcome)) {
        // (Unless another write, of the same id handed out again after a loss, say, stored it.)
        const there =
          op.op === 'createResult' ? results.has(op.jobId) && !attempted.results.has(op.jobId)
          : op.op === 'putPlan' ? op.jobId in back.plans && !attempted.plans.has(op.jobId)
          : op.op === 'addCheckpoint' ? (back.checkpoints[op.jobId] ?? []).includes(op.checkpointId!) && !attempted.checkpoints.has(`${op.jobId}/${op.checkpointId}`)
          : false;
        if (there) violations.push(`${setup}: ${name} was refused (${op.outcome}) but is stored`);
        continue;
      }
      if (op.outcome === 'JobResultExists') violations.push(`${setup}: ${name} found a result already there: a retry was not idempotent`);
      if (op.outcome !== 'ok') continue;
      counts.checked++;
      if (op.op === 'createResult' && !results.has(op.jobId)) missing(op, `job result ${op.jobId}`);
      if (op.op === 'putPlan') {
        const plan = back.plans[op.jobId];
        if (plan === undefined) missing(op, `plan of ${op.jobId}`);
        else if (plan !== planContent(op.jobId, op.token)) violations.push(`${setup}: plan of ${op.jobId} holds '${plan}', not what ${op.proc} stored`);
      }
      if (op.op === 'addCheckpoint') {
        const ids = back.checkpoints[op.jobId] ?? [];
        const newer = ids.filter((id) => id > op.checkpointId!).length;
        if (!ids.includes(op.checkpointId!) && newer < f.h.maxRetained) missing(op, `checkpoint ${op.jobId}/${op.checkpointId}`);
      }
      if (op.op === 'increment' && !((back.counters[op.jobId] ?? 0) > op.value!)) missing(op, `counter value ${op.value} of ${op.jobId} (counter now ${back.counters[op.jobId]})`);
    }
    // Nothing stored that was never written.
    for (const jobId of back.jobResults) if (!attempted.results.has(jobId)) violations.push(`${setup}: job result ${jobId} is stored but no write of it was accepted or pending`);
    for (const [jobId, ids] of Object.entries(back.checkpoints)) {
      for (const id of ids) if (!attempted.checkpoints.has(`${jobId}/${id}`)) violations.push(`${setup}: checkpoint ${jobId}/${id} is stored but no write of it was accepted or pending`);
    }
    // Losses reported (by every replica, for a Redis without persistence, whose marker
    // every one of them watches; by a replica at least, for each restore that lost an
    // acknowledged write), and none that did not happen with AOF.
    for (const s of info.servers) {
      const hs = health.find((x) => x.server === s);
      if (!hs) violations.push(`${setup}: no health read from ${s}`);
      else if (kind === 'none' && (hs.dataLossCount < losses.length || (hs.dataLossMetric ?? -1) < losses.length)) {
        violations.push(`${setup}: ${s} reports ${hs.dataLossCount} data losses (metric ${hs.dataLossMetric}) after ${losses.length} kills of Redis without persistence`);
      } else if (kind === 'aof' && hs.dataLossCount > 0) violations.push(`${setup}: ${s} reports ${hs.dataLossCount} data losses of a Redis with AOF`);
    }
    const counted = health.map((x) => `${x.server} ${x.dataLossCount}`).join(', ');
    if (kind === 'restored') {
      const most = Math.max(0, ...health.map((x) => Math.min(x.dataLossCount, x.dataLossMetric ?? 0)));
      if (most < lostTo.size) violations.push(`${setup}: ${lostTo.size} restores of an older snapshot lost acknowledged writes, and the servers report at most ${most} data losses (${counted}): a silent loss`);
      if (losses.length) lossWords.push(`${setup}: ${losses.length} restores of an older snapshot, ${lostTo.size} of them losing acknowledged writes`);
    } else if (kind === 'none' && losses.length) lossWords.push(`${setup}: ${losses.length} kills of Redis without persistence`);
    if (kind !== 'aof' && health.some((x) => x.dataLossCount > 0)) reports.push(`${setup} ${counted}`);
  }
  const noReplica = counts.noReplica
    ? `; ${counts.noReplica} windows without a replica, nothing acknowledged in them: ${counts.probesRefused} of ${counts.probes} probe campaigns and ${counts.refusedNoReplica} writes answered 503`
    : '';
  return {
    id: 5,
    title: 'no acknowledged write lost with AOF or a replica acknowledging; otherwise the loss is reported',
    violations,
    summary:
      `${counts.checked} acknowledged writes checked against what was read back${noReplica}` +
      `${counts.lostReported ? `; ${counts.lostReported} of them lost (${lossWords.join('; ')}), the loss reported` : ''}` +
      `${reports.length ? `; data losses reported by server: ${reports.join('; ')}` : ''}`,
  };
}

/** The lines a run prints for a report. */
export function formatReport(report: CheckReport, examples = 5): string[] {
  const lines: string[] = [];
  for (const r of report.results) {
    if (r.violations.length === 0) {
      lines.push(`invariant ${r.id} (${r.title}): ok: ${r.summary}`);
      continue;
    }
    lines.push(`invariant ${r.id} (${r.title}): VIOLATED: ${r.violations.length}, e.g.`);
    for (const v of r.violations.slice(0, examples)) lines.push(`    ${v}`);
  }
  lines.push(`outcomes: ${Object.entries(report.outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  lines.push(`faults injected ${report.faults}, operations ${report.operations}, violations ${report.violations}`);
  return lines;
}
