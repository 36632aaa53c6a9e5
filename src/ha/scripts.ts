/**
 * Loads the Lua scripts (one per file under scripts/) and runs them by EVALSHA, falling
 * back to EVAL when Redis does not know them yet (a restarted Redis forgets its scripts).
 *
 * Each script's header lists its KEYS, its ARGV and, under `Codes:`, the return codes it
 * may answer (lib/codes.lua; replies.ts decodes every reply). A line
 * `-- @include "lib/x.lua"` is replaced by that file, so that shared helpers live once; a
 * file already included in the script is not pasted again. A lib marked `-- @constants`
 * (the codes, the leader hash's fields) is not pasted either: each of its
 * `local NAME = value` is written in place wherever the script says NAME. Named in the
 * source, they cost Redis nothing: as locals, every function of the libs captured them
 * as upvalues, anew on every call, which made a renewal's script measurably dearer
 * (bench/RESULTS.md). Comments are left out of what Redis runs.
 *
 * Each script starts with a Redis 7 shebang, `#!lua` with its flags (`no-writes`,
 * `allow-oom`, or none: then a Redis at maxmemory refuses it before it runs, so that
 * nothing is half-written). Redis before 7 cannot compile a shebang: the first script it
 * refuses so switches this Scripts to the same sources without it, for good.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Command } from 'ioredis';
import type { RedisClient } from './redisLink.js';
import { RedisUnavailableError } from './errors.js';

export const SCRIPTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'scripts');
/** The scripts of a cluster's leadership (scripts/lib/cluster_leadership.lua). */
export const LEADERSHIP_SCRIPTS = [
  'leadership_campaign',
  'leadership_renew',
  'leadership_resign',
  'leadership_revoke',
  'leadership_expire',
  'leadership_publish',
  'leadership_unpublish',
  'leadership_get',
] as const;
export type LeadershipScript = (typeof LEADERSHIP_SCRIPTS)[number];
export const SCRIPT_NAMES = [
  // leadership
  'campaign',
  'renew',
  'confirm',
  'resign',
  'expire',
  'sync',
  'raise_index',
  'floors_writeback',
  'changes',
  'failover_grace',
  // the leadership history (lib/history.lua)
  'history_read',
  'history_lost',
  // the cluster's leadership (one lease for many components)
  ...LEADERSHIP_SCRIPTS,
  // stores
  'fence_check',
  'jobresult_create',
  'jobresult_clean',
  'plan_put',
  'plan_requirements',
  'checkpoint_add',
  'checkpoint_shutdown',
  'counter_increment',
  'counter_set',
  'counter_shutdown',
  'blob_commit',
  'blob_delete',
  'index_migrate',
  // cleanup
  'cleanup_job',
  'cleanup_cluster',
  // the cluster listing (clusterRegistry.ts)
  'cluster_summary',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

interface Loading {
  included: Set<string>;
  /** Name -> literal, from the constant libs included. */
  constants: Map<string, string>;
}

const INCLUDE = /^-- @include "([^"]+)"$/gm;
const CONSTANT = /^local ([A-Z][A-Z0-9_]*) = (-?\d+|'[^'\\]*')/gm;

function load(file: string, loading: Loading): string {
  return readFileSync(join(SCRIPTS_DIR, file), 'utf8').replace(INCLUDE, (_, lib: string) => {
    if (loading.included.has(lib)) return '';
    loading.included.add(lib);
    const text = load(lib, loading);
    if (!/^-- @constants$/m.test(text)) return text;
    for (const [, name, literal] of text.matchAll(CONSTANT)) loading.constants.set(name, literal);
    return '';
  });
}

/** A script as Redis runs it: libs pasted in, constants written in place (`overrides`
 * replacing some), no comments. */
function assemble(name: ScriptName, overrides: Record<string, string> = {}): string {
  const loading: Loading = { included: new Set(), constants: new Map() };
  let lua = load(`${name}.lua`, loading)
    .replace(/^--\[\[[\s\S]*?\]\]\n/gm, '')
    .replace(/^[ \t]*--.*\n/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  for (const [n, literal] of Object.entries(overrides)) if (loading.constants.has(n)) loading.constants.set(n, literal);
  if (loading.constants.size > 0) {
    const names = [...loading.constants.keys()].sort((a, b) => b.length - a.length);
    lua = lua.replace(new RegExp(`\\b(?:${names.join('|')})\\b`, 'g'), (n) => loading.constants.get(n)!);
  }
  return lua;
}

/** The scripts of one kind of Redis, with their SHA1s, and the same without the shebang
 * for Redis before 7. */
interface Variant {
  sources: Map<ScriptName, string>;
  shas: Map<ScriptName, string>;
  legacySources: Map<ScriptName, string>;
  legacyShas: Map<ScriptName, string>;
}

const shasOf = (sources: Map<ScriptName, string>) =>
  new Map([...sources].map(([n, lua]) => [n, createHash('sha1').update(lua).digest('hex')]));
function assembleAll(overrides: Record<string, string> = {}): Variant {
  const sources = new Map<ScriptName, string>(SCRIPT_NAMES.map((n) => [n, assemble(n, overrides)]));
  const legacySources = new Map<ScriptName, string>([...sources].map(([n, lua]) => [n, lua.replace(/^#!lua.*\n/, '')]));
  return { sources, shas: shasOf(sources), legacySources, legacyShas: shasOf(legacySources) };
}

/** One Redis: changes go by PUBLISH. */
const PLAIN = assembleAll();
/** A Redis Cluster: changes go by SPUBLISH to the shard of their cluster (lib/pubsub.lua). */
const SHARDED = assembleAll({ CHANGES_PUBLISH: "'SPUBLISH'" });

/** A script's source as Redis runs it (the benchmarks run it with redis-benchmark). */
export function scriptSource(name: ScriptName): string {
  return PLAIN.sources.get(name)!;
}

export type ScriptReply = Array<string | number | null>;
type Arg = string | number | Buffer;

/** A Redis Cluster's answers to a command sent to a node that does not serve its slot (now),
 * or cannot yet: the command did not run. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;
/** How many times a pipeline (runWaitingOn) is sent again after such an answer. */
const REDIRECTS_FOLLOWED = 5;

/** What Redis before 7 answers to a script that starts with a shebang. */
const NO_SHEBANG = /^ERR Error compiling script.* near '#'/;

/** The scripts whose writes replicas must hold before they are acknowledged: a grant, a
 * renewal (it extends a lease), a confirmation (and a leadership's grant, renewal and
 * publish), and every store write, which is every
 * script built on lib/store.lua's fenced_write, so that a new one is never left out. A
 * resignation, an expiry or a sync that Redis loses is only undone: the lease comes back
 * until its end. */
const ACKED = new Set<ScriptName>([
  'campaign',
  'renew',
  'confirm',
  'leadership_campaign',
  'leadership_renew',
  'leadership_publish',
  ...SCRIPT_NAMES.filter((n) => readFileSync(join(SCRIPTS_DIR, `${n}.lua`), 'utf8').includes('-- @include "lib/store.lua"')),
]);

/** Replication before acknowledgement: how many replicas must hold a write (0: none; of
 * the Redis that holds `key`, a Redis Cluster's shard), the connection such writes run on,
 * and how long they wait for the replicas. */
export interface ReplicaAck {
  required(key: string): number;
  connection: RedisClient;
  timeoutMs: number;
}

export class Scripts {
  /** Redis refused a shebang (before 7): the sources without it from now on. */
  private legacy = false;
  /** On a Redis Cluster, the scripts that publish changes by SPUBLISH. */
  private readonly variant: Variant;

  constructor(
    readonly redisClient: RedisClient,
    private readonly ack?: ReplicaAck,
  ) {
    this.variant = redisClient instanceof Cluster ? SHARDED : PLAIN;
  }

  async run(name: ScriptName, keys: string[], args: Arg[]): Promise<ScriptReply> {
    const replicas = this.ack && ACKED.has(name) ? this.ack.required(keys[0]) : 0;
    if (replicas > 0) return this.runAcked(name, keys, args, replicas, this.ack!);
    return this.runOn(this.redisClient, name, keys, args);
  }

  private async runOn(conn: RedisClient, name: ScriptName, keys: string[], args: Arg[]): Promise<ScriptReply> {
    const legacy = this.legacy;
    try {
      return await this.send(conn, 'evalsha', (legacy ? this.variant.legacyShas : this.variant.shas).get(name)!, keys, args);
    } catch (err) {
      // The script did not run: Redis did not know it.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    }
    try {
      return await this.send(conn, 'eval', (legacy ? this.variant.legacySources : this.variant.sources).get(name)!, keys, args);
    } catch (err) {
      // Not compiled, so not run: a Redis before 7, which knows no shebang.
      if (legacy || !(err instanceof Error) || !NO_SHEBANG.test(err.message)) throw err;
      this.legacy = true;
      return this.send(conn, 'eval', this.variant.legacySources.get(name)!, keys, args);
    }
  }

  /** Runs the script, then WAITs for `replicas` to hold what it wrote (and whatever this
   * connection wrote before it). Too few within the timeout: the write may be lost in a
   * failover, so it is not acknowledged (RedisUnavailable: outcome unknown, 503). */
  private async runAcked(name: ScriptName, keys: string[], args: Arg[], replicas: number, ack: ReplicaAck): Promise<ScriptReply> {
    const [reply, held] =
      ack.connection instanceof Cluster
        ? await this.runWaitingOn(ack.connection, name, keys, args, replicas, ack.timeoutMs)
        : [await this.runOn(ack.connection, name, keys, args), (await ack.connection.call('WAIT', replicas, ack.timeoutMs)) as number];
    if (held < replicas) {
      throw new RedisUnavailableError(new Error(`${name}: held by ${held} of ${replicas} replicas after ${ack.timeoutMs} ms`));
    }
    return reply;
  }

  /** On a Redis Cluster WAIT, which names no key, would go to any node: it goes in one
   * pipeline with the script, which ioredis sends to the node serving the script's keys.
   * ioredis follows a MOVED or ASK only when every command of a pipeline got it, which
   * WAIT never does: the script not run there (a slot moved, a failover) is sent again once
   * the slots are refreshed, and a 503 (retryable) answers if it keeps moving. */
  private async runWaitingOn(conn: Cluster, name: ScriptName, keys: string[], args: Arg[], replicas: number, timeoutMs: number): Promise<[ScriptReply, number]> {
    const attempt = async (command: 'evalsha' | 'eval', script: string): Promise<[ScriptReply, number]> => {
      for (let tries = 1; ; tries++) {
        const replies = (await conn
          .pipeline()
          .call(command, script, keys.length, ...keys, ...args)
          .call('WAIT', replicas, timeoutMs)
          .exec())!;
        const [[ran, reply], [waited, held]] = replies;
        if (ran && REDIRECTED.test(ran.message)) {
          if (tries >= REDIRECTS_FOLLOWED) throw new RedisUnavailableError(ran);
          await new Promise<void>((r) => conn.refreshSlotsCache(() => r()));
          await new Promise((r) => setTimeout(r, 20 * tries));
          continue;
        }
        if (ran) throw ran;
        // The script ran, but whether replicas hold it is unknown: not acknowledged.
        if (waited) throw new RedisUnavailableError(waited);
        return [reply as ScriptReply, held as number];
      }
    };
    const legacy = this.legacy;
    try {
      return await attempt('evalsha', (legacy ? this.variant.legacyShas : this.variant.shas).get(name)!);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    }
    return attempt('eval', (legacy ? this.variant.legacySources : this.variant.sources).get(name)!);
  }

  /** ioredis's own script commands flatten their arguments (Array.prototype.flat, about
   * 70 ns an argument; a batch of renewals has over a hundred) and copy them three times;
   * these are flat already, so the command gets them as they are. */
  private send(conn: RedisClient, name: 'eval' | 'evalsha', script: string, keys: string[], args: Arg[]): Promise<ScriptReply> {
    const command = new Command(name, [], { replyEncoding: 'utf8' });
    command.args = [script, keys.length, ...keys, ...args];
    command.stringifyArguments();
    return conn.sendCommand(command) as Promise<ScriptReply>;
  }
}
