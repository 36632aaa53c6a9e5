/**
 * Loads the Lua scripts (one per file under scripts/) and registers them with ioredis,
 * which runs them by EVALSHA and falls back to EVAL when Redis does not know them yet.
 * A line `-- @include "lib/x.lua"` is replaced by that file, so that shared helpers live
 * once.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'scripts');
const NAMES = [
  // leadership
  'campaign',
  'renew',
  'confirm',
  'resign',
  'expire',
  'sync',
  'changes',
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
  // cleanup
  'cleanup_job',
  'cleanup_cluster',
] as const;
export type ScriptName = (typeof NAMES)[number];

function load(file: string): string {
  return readFileSync(join(DIR, file), 'utf8').replace(
    /^-- @include "([^"]+)"$/gm,
    (_, lib: string) => load(lib),
  );
}

const SOURCES = new Map<ScriptName, string>(NAMES.map((n) => [n, load(`${n}.lua`)]));

/** A script's source as Redis runs it (the benchmarks run it with redis-benchmark). */
export function scriptSource(name: ScriptName): string {
  return SOURCES.get(name)!;
}

export type ScriptReply = Array<string | number | null>;
type Runner = (numKeys: number, ...keysAndArgs: Array<string | number | Buffer>) => Promise<ScriptReply>;

export class Scripts {
  constructor(readonly redisClient: Redis) {
    for (const [name, lua] of SOURCES) redisClient.defineCommand(name, { lua });
  }

  run(name: ScriptName, keys: string[], args: Array<string | number | Buffer>): Promise<ScriptReply> {
    const runner = (this.redisClient as unknown as Record<ScriptName, Runner>)[name];
    return runner.call(this.redisClient, keys.length, ...keys, ...args);
  }
}
