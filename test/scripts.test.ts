/** The Lua contract: the scripts' headers, their return codes against the TypeScript enum,
 * the decoding of every code, the leader hash's fields, and the framing of TTL messages. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { messageOrigin, parseMessage } from '../src/ha/changes.js';
import { ClusterKeys } from '../src/ha/ids.js';
import { LeaseStore } from '../src/ha/leaseStore.js';
import {
  Code,
  codeError,
  decodeChanges,
  decodeCleanupCluster,
  decodeCleanupJob,
  decodeClusterSummary,
  decodeFenceCheck,
  decodeLeadership,
  decodeOp,
  decodeRenewals,
  decodeStoreWrite,
  decodeSync,
  decodeIndexMigrate,
  decodeRaiseIndex,
  decodeFloorsWriteback,
  decodeFailoverGrace,
  decodeHistoryLost,
  decodeHistoryRead,
  LEADER_FIELDS,
  LEADERSHIP_SCRIPTS,
  type LeadershipScript,
  type OpScript,
  type RenewResult,
  type StoreScript,
} from '../src/ha/replies.js';
import { SCRIPT_NAMES, SCRIPTS_DIR, Scripts, scriptSource, type ScriptName } from '../src/ha/scripts.js';
import { stopAllRedis } from './support/redis.js';
import { connectRedis, nodeUrlOf, sharedRedisUrl, uniqueCluster } from './support/app.js';

after(() => stopAllRedis());

const lua = (file: string) => readFileSync(join(SCRIPTS_DIR, file), 'utf8');
/** FENCE_STALE -> FenceStale */
const pascal = (snake: string) => snake.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());

/** `local NAME = value` lines of a lib. */
function constants(file: string): Map<string, string> {
  return new Map([...lua(file).matchAll(/^local ([A-Z_]+) = (-?\d+|'[^']*')/gm)].map((m) => [m[1], m[2]]));
}

interface Header {
  text: string;
  codes: Map<string, number>;
}

/** The leading --[[ ]] comment of a script (after its shebang, test/redisOom.test.ts) and
 * the codes listed under `Codes:`. */
function header(name: ScriptName): Header {
  const m = /^(?:#!lua.*\n)?--\[\[\n([\s\S]*?)\n\]\]/.exec(lua(`${name}.lua`));
  assert.ok(m, `${name}.lua begins with a --[[ ]] header`);
  const text = m[1];
  const at = text.search(/^ {2}Codes:/m);
  assert.ok(at >= 0, `${name}.lua's header has a Codes: section`);
  const codes = new Map<string, number>();
  for (const c of text.slice(at).matchAll(/^ {4}([A-Z_]+) \((-?\d+)\)/gm)) codes.set(c[1], Number(c[2]));
  return { text, codes };
}

const CODE_NAMES = new Map<number, string>(Object.entries(Code).map(([k, v]) => [v, k]));

describe('the scripts’ headers and codes', () => {
  test('lib/codes.lua and the Code enum hold the same names and values, each value once', () => {
    const inLua = constants('lib/codes.lua');
    assert.deepEqual(
      [...inLua].map(([k, v]) => [pascal(k), Number(v)]).sort(),
      Object.entries(Code).sort(),
    );
    assert.equal(new Set(Object.values(Code)).size, Object.keys(Code).length, 'no two codes share a value');
  });

  test('every script has a header listing its KEYS, ARGV and codes, each code in the enum with its value', () => {
    for (const name of SCRIPT_NAMES) {
      const { text, codes } = header(name);
      assert.match(text, /^ {2}KEYS /m, `${name}: KEYS`);
      assert.match(text, /^ {2}ARGV /m, `${name}: ARGV`);
      for (const [code, value] of codes) {
        assert.equal(Code[pascal(code) as keyof typeof Code], value, `${name}: ${code} (${value}) is Code.${pascal(code)}`);
      }
    }
  });

  test('every code a script returns is in its header', () => {
    const names = [...constants('lib/codes.lua').keys()];
    const used = (source: string) => new Set(names.filter((n) => new RegExp(`\\b${n}\\b`).test(source)));
    const storeCodes = used(lua('lib/store.lua').replace(/^--.*$/gm, ''));
    for (const name of SCRIPT_NAMES) {
      const body = lua(`${name}.lua`).replace(/^(?:#!lua.*\n)?--\[\[[\s\S]*?\]\]/, '');
      const returned = used(body);
      if (body.includes('-- @include "lib/store.lua"')) for (const c of storeCodes) returned.add(c);
      if (/\bnot_held\(/.test(body)) returned.add('HELD').add('FREE');
      const listed = header(name).codes;
      for (const c of returned) assert.ok(listed.has(c), `${name} may return ${c}, which its header does not list`);
    }
  });

  test('the scripts read KEYS and ARGV into named locals, not in their logic', () => {
    for (const name of SCRIPT_NAMES) {
      const body = lua(`${name}.lua`).replace(/^(?:#!lua.*\n)?--\[\[[\s\S]*?\]\]/, '');
      for (const line of body.split('\n')) {
        if (!/\b(KEYS|ARGV)\[/.test(line)) continue;
        // Bindings at the top, and the per-item lists of the batch scripts, whose indexes
        // are computed.
        const binding = /^local [a-z0-9_, ]+ = /.test(line.trim()) || /(KEYS|ARGV)\[[^\]]*[a-z]/.test(line);
        assert.ok(binding, `${name}: ${line.trim()}`);
      }
    }
  });
});

test('Redis runs the scripts with every named constant written in place and no comments', () => {
  const names = [...constants('lib/codes.lua').keys(), ...constants('lib/leader_hash.lua').keys()];
  const named = new RegExp(`\\b(${names.join('|')})\\b`);
  for (const name of SCRIPT_NAMES) {
    const source = scriptSource(name);
    assert.doesNotMatch(source, named, `${name} as Redis runs it names no constant`);
    assert.doesNotMatch(source, /^\s*--/m, `${name} as Redis runs it has no comment lines`);
  }
  assert.match(scriptSource('fence_check'), /then return 0 end\nreturn -1$/);
});

describe('the decoders', () => {
  const opScripts: OpScript[] = ['campaign', 'confirm', 'resign', 'expire'];
  const storeScripts = SCRIPT_NAMES.filter((n) => lua(`${n}.lua`).includes('-- @include "lib/store.lua"')) as StoreScript[];

  /** Decodes a reply of `name` with `code`, and says what it decoded to. */
  const decode: Record<ScriptName, (code: number) => unknown> = {
    ...(Object.fromEntries(opScripts.map((n) => [n, (code: number) => decodeOp(n, [code, null, 0]).code])) as Record<
      OpScript,
      (code: number) => unknown
    >),
    renew: (code) => {
      const reply = code === Code.Done ? [code, 10] : code === Code.RenewedNewLeader ? [code, LEADER, 10] : [code, null, 0, 0];
      let got: RenewResult | undefined;
      decodeRenewals(reply, [1], (_, r) => (got = r));
      return got!.code;
    },
    sync: (code) => decodeSync([code], []),
    raise_index: (code) => decodeRaiseIndex([code, 5]),
    index_migrate: (code) => decodeIndexMigrate([code, 0]),
    floors_writeback: (code) => decodeFloorsWriteback([code, 1, 0, 0, 1]).behind,
    failover_grace: (code) => decodeFailoverGrace([code, 5]),
    history_read: (code) => decodeHistoryRead([code, null]).items.length,
    history_lost: (code) => decodeHistoryLost([code, 1]),
    changes: () => decodeChanges([3, 1]).index,
    fence_check: (code) => decodeFenceCheck(code),
    cleanup_job: (code) => decodeCleanupJob([code, 1, 0, 1, 0, 1]).code,
    cleanup_cluster: (code) => decodeCleanupCluster([code], 'finish').code,
    cluster_summary: () => decodeClusterSummary([null, 0, null, 0, 0, 0]).index,
    ...(Object.fromEntries(
      LEADERSHIP_SCRIPTS.map((n) => [n, (code: number) => decodeLeadership(n, [code, null, 0, 0, 0]).code]),
    ) as Record<LeadershipScript, (code: number) => unknown>),
    ...(Object.fromEntries(
      storeScripts.map((n) => [
        n,
        (code: number) => {
          const r = decodeStoreWrite(n, [0, code, '7', 'p']);
          if (r.code === Code.Done || r.code === Code.Changed) return r.code;
          const error = codeError(r.code, 'dispatcher', r.values);
          assert.ok(error, `${n}: ${CODE_NAMES.get(code)} maps to an error`);
          return error.code;
        },
      ]),
    ) as Record<StoreScript, (code: number) => unknown>),
  };

  test('every script has a decoder, and it decodes every code the script’s header lists', () => {
    for (const name of SCRIPT_NAMES) {
      assert.ok(decode[name], `${name} has a decoder`);
      for (const [code, value] of header(name).codes) {
        assert.doesNotThrow(() => decode[name](value), `${name} decodes ${code}`);
      }
    }
  });

  test('the leadership decoders keep each code; renew reports a renewal as Done whatever followed', () => {
    for (const name of opScripts) for (const [, v] of header(name).codes) assert.equal(decode[name](v), v);
    assert.equal(decode.renew(Code.Done), Code.Done);
    assert.equal(decode.renew(Code.RenewedNewLeader), Code.Done);
    assert.equal(decode.renew(Code.Held), Code.Held);
    assert.equal(decode.renew(Code.Free), Code.Free);
  });

  test('codes a script does not answer are refused, not guessed', () => {
    assert.throws(() => decodeOp('campaign', [Code.Free, null, 0]), /campaign answered code 2/);
    assert.throws(() => decodeOp('expire', [Code.AlreadyHeld, null, 0]), /expire answered code 3/);
    assert.throws(() => decodeRenewals([Code.AlreadyHeld], [1], () => {}), /renew answered code 3/);
    assert.throws(() => decodeFenceCheck(1), /fence_check answered code 1/);
    assert.throws(() => decodeCleanupCluster([Code.FenceStale], 'batch'), /cleanup_cluster answered code -1/);
  });

  test('each store error code maps to its error, with what followed it', () => {
    const errors = new Map<number, string | undefined>();
    for (const [, v] of Object.entries(Code)) errors.set(v, codeError(v, 'jobmanager/x', ['41'])?.code);
    assert.deepEqual(Object.fromEntries([...errors].map(([v, e]) => [CODE_NAMES.get(v), e ?? null])), {
      Done: null,
      Changed: null,
      Held: null,
      Free: null,
      AlreadyHeld: null,
      RenewedNewLeader: null,
      RolledBack: null,
      InGrace: null,
      LockDelay: null,
      FenceStale: 'FencingTokenStale',
      IdempotencyKeyReused: 'IdempotencyKeyReused',
      JobResultExists: 'JobResultExists',
      JobResultNotFound: 'JobResultNotFound',
      CheckpointIdNotAbove: 'CheckpointIdNotIncreasing',
      ExecutionPlanNotFound: 'ExecutionPlanNotFound',
      StagedUploadGone: 'RedisUnavailable',
      CounterBelow: 'CheckpointIdNotIncreasing',
      LeadershipHeld: null,
      ComponentLeasesHeld: null,
      Published: null,
      NotOwner: 'NotLeadershipOwner',
      QuotaExceeded: 'StorageQuotaExceeded',
      AnswerGone: 'IdempotentAnswerGone',
      NotLeaseOwner: 'NotLeaseOwner',
    });
    assert.deepEqual(codeError(Code.QuotaExceeded, 'x', ['blobs', '3'])?.details, { quota: 'blobs', limit: 3 });
    const records = codeError(Code.QuotaExceeded, 'x', ['idempotencyRecords', '10', '1500']);
    assert.deepEqual([records?.code, records?.details], ['IdempotencyQuotaExceeded', { quota: 'idempotencyRecords', limit: 10, retryAfterMs: 1500 }]);
    assert.deepEqual(codeError(Code.CheckpointIdNotAbove, 'x', ['41'])?.details, { latestCheckpointId: 41 });
    assert.match(codeError(Code.FenceStale, 'jobmanager/x')!.message, /jobmanager\/x/);
  });

  test('store values are decoded per script', () => {
    const done = <N extends StoreScript>(n: N, values: string[]) => {
      const r = decodeStoreWrite(n, [1, Code.Done, ...values]);
      assert.equal(r.code, Code.Done);
      return r.code === Code.Done ? [r.replayed, r.value] : [];
    };
    assert.deepEqual(done('checkpoint_add', ['3', 'p3', '4', 'p4']), [
      true,
      [
        { checkpointId: 3, externalPointer: 'p3' },
        { checkpointId: 4, externalPointer: 'p4' },
      ],
    ]);
    assert.deepEqual(done('checkpoint_shutdown', ['1', '2']), [true, [1, 2]]);
    assert.deepEqual(done('counter_increment', ['9007199254740991']), [true, 9007199254740991]);
    assert.deepEqual(done('counter_shutdown', ['1']), [true, true]);
    assert.deepEqual(done('blob_delete', ['2']), [true, 2]);
    assert.deepEqual(done('jobresult_clean', ['state', 'clean']), [true, ['state', 'clean']]);
    assert.deepEqual(done('plan_put', []), [true, undefined]);
  });
});

const LEADER = '{"cid":"a","sid":"s","tok":7,"addr":null,"at":1}';

describe('against Redis', () => {
  test('the leader hash has exactly the fields that lib/leader_hash.lua and LEADER_FIELDS name', async () => {
    const inLua = [...constants('lib/leader_hash.lua')].filter(([k]) => k.startsWith('F_')).map(([, v]) => v.slice(1, -1));
    assert.deepEqual(inLua.sort(), Object.values(LEADER_FIELDS).sort());
    const redis = await connectRedis(await sharedRedisUrl());
    try {
      const keys = new ClusterKeys(uniqueCluster('contract'));
      const store = new LeaseStore(new Scripts(redis), 100, 'me');
      const r = await store.campaign(keys, 'dispatcher', { contenderId: 'a', sessionId: 's1', ttlMs: 5000, address: 'x:1' }, { index: 0, token: 0, graceMs: 0 });
      assert.equal(r.code, Code.Done);
      const h = await redis.hgetall(keys.leader('dispatcher'));
      assert.deepEqual(Object.keys(h).sort(), Object.values(LEADER_FIELDS).sort());
      assert.equal(h[LEADER_FIELDS.contenderId], 'a');
      assert.equal(h[LEADER_FIELDS.sessionId], 's1');
      assert.equal(h[LEADER_FIELDS.address], 'x:1');
      assert.equal(h[LEADER_FIELDS.live], '1');
      assert.equal(h[LEADER_FIELDS.ttlMs], '5000');
      assert.equal(Number(h[LEADER_FIELDS.fencingToken]), r.leader!.fencingToken);
      assert.equal(Number(h[LEADER_FIELDS.acquiredAt]), r.leader!.acquiredAt);
    } finally {
      redis.disconnect();
    }
  });

  test('a sync records no expiry of a lease whose end the log holds after the caller\'s index', async () => {
    // A server's view believes `a` leads; `a` resigns (logged as revoked) and, before the
    // view hears of it over pub/sub, the view resyncs (after a Redis restart, say): the
    // resignation is the lease's end, and the view replays it from the log. An 'expired' on
    // top of it would tell watchers the same end twice.
    const redis = await connectRedis(await sharedRedisUrl());
    try {
      const keys = new ClusterKeys(uniqueCluster('contract'));
      const store = new LeaseStore(new Scripts(redis), 100, 'me');
      const granted = await store.campaign(keys, 'dispatcher', { contenderId: 'a', sessionId: 's1', ttlMs: 60_000, address: '' }, { index: 0, token: 0, graceMs: 0 });
      assert.equal(granted.code, Code.Done);
      const believedAt = Number(await redis.get(keys.index));
      assert.equal((await store.resign(keys, 'dispatcher', { contenderId: 'a', sessionId: 's1' }, 0)).code, Code.Done);
      const synced = await store.sync(keys, new Map([['dispatcher', 's1']]), believedAt, { tokens: {}, graceMs: 0 });
      assert.notEqual(synced, Code.Changed);
      const r = synced as Exclude<typeof synced, number>;
      assert.deepEqual(r.changes.map((c) => c.event), [], 'no change recorded by the sync');
      assert.equal(r.state.get('dispatcher')?.leader ?? null, null);
      // What the view replays: the resignation, once.
      const replayed = await store.changesSince(keys, believedAt);
      assert.deepEqual(replayed.changes.map((c) => [c.event, c.component]), [['revoked', 'dispatcher']]);
      // A believed lease that vanished with nothing logged (a loss) is still recorded.
      const lostKeys = new ClusterKeys(uniqueCluster('contract'));
      await store.campaign(lostKeys, 'dispatcher', { contenderId: 'a', sessionId: 's2', ttlMs: 60_000, address: '' }, { index: 0, token: 0, graceMs: 0 });
      const lostAt = Number(await redis.get(lostKeys.index));
      await redis.del(lostKeys.lease('dispatcher'), lostKeys.leader('dispatcher'));
      const lost = (await store.sync(lostKeys, new Map([['dispatcher', 's2']]), lostAt, { tokens: {}, graceMs: 0 })) as Exclude<typeof synced, number>;
      assert.deepEqual(lost.changes.map((c) => c.event), ['expired']);
    } finally {
      redis.disconnect();
    }
  });

  test('a script that writes the history without declaring its keys last fails before it writes any', async () => {
    const redis = await connectRedis(await sharedRedisUrl());
    try {
      const keys = new ClusterKeys(uniqueCluster('contract'));
      const scripts = new Scripts(redis);
      const leader = JSON.stringify({ cid: 'a', sid: 's1', tok: 1, at: Date.now() });
      const args = [keys.channel, 0, 100, 'dispatcher', leader];
      await assert.rejects(scripts.run('history_lost', [keys.index, keys.log], args), /without declaring its keys/);
      assert.equal(await redis.exists(keys.history, keys.historyEntries, keys.historyState), 0);
      // Declared, the same script records the leader.
      assert.deepEqual(await scripts.run('history_lost', [keys.index, keys.log, ...keys.historyKeys], args), [Code.Done, 1]);
      assert.equal(await redis.xlen(keys.history), 1);
    } finally {
      redis.disconnect();
    }
  });

  test('renewals publish their TTLs with the origin as its own field; changes have none', async () => {
    const url = await sharedRedisUrl();
    const redis = await connectRedis(url);
    const keys = new ClusterKeys(uniqueCluster('contract'));
    // On a Redis Cluster the scripts SPUBLISH, heard by SSUBSCRIBE on the node that owns the
    // channel's slot; on one Redis, PUBLISH and SUBSCRIBE.
    const sharded = (redis as unknown) instanceof Cluster;
    const sub = new Redis(await nodeUrlOf(url, keys.channel));
    try {
      const store = new LeaseStore(new Scripts(redis), 100, 'server-1');
      const messages: string[] = [];
      sub.on(sharded ? 'smessage' : 'message', (_: string, m: string) => messages.push(m));
      await (sharded ? sub.ssubscribe(keys.channel) : sub.subscribe(keys.channel));
      const granted = await store.campaign(keys, 'dispatcher', { contenderId: 'a', sessionId: 's1', ttlMs: 5000, address: '' }, { index: 0, token: 0, graceMs: 0 });
      const renewed = await Promise.all([
        store.renew(keys, 'dispatcher', { contenderId: 'a', sessionId: 's1', ttlMs: 7000, fallbackTtlMs: 1, known: granted.leader }, 0),
        store.renew(keys, 'dispatcher', { contenderId: 'b', sessionId: 's2', ttlMs: 7000, fallbackTtlMs: 1, known: null }, 0),
      ]);
      assert.deepEqual(
        renewed.map((r) => [r.code, r.leader?.sessionId ?? null, r.ttlMs > 0]),
        [
          [Code.Done, null, true],
          [Code.Held, 's1', true],
        ],
      );
      // A campaign by the holder publishes its TTL without an origin.
      await store.campaign(keys, 'dispatcher', { contenderId: 'a', sessionId: 'unused', ttlMs: 6000, address: '' }, { index: 0, token: 0, graceMs: 0 });
      const deadline = Date.now() + 5000;
      while (messages.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(messages.length, 3, messages.join('\n'));
      const [change, ttls, campaignTtls] = messages;
      assert.equal(messageOrigin(change), null);
      assert.equal((parseMessage(change) as { event: string }).event, 'granted');
      assert.equal(messageOrigin(ttls), 'server-1');
      assert.deepEqual(parseMessage(ttls), [{ component: 'dispatcher', sessionId: 's1', ttlMs: 7000 }]);
      assert.equal(messageOrigin(campaignTtls), '');
      assert.deepEqual(parseMessage(campaignTtls), [{ component: 'dispatcher', sessionId: 's1', ttlMs: 6000 }]);
      // An origin that looks like the start of another's is not it.
      assert.notEqual(messageOrigin(ttls), 'server-');
    } finally {
      sub.disconnect();
      redis.disconnect();
    }
  });

  test('an origin is a word: empty or with a space, it could not be told apart', () => {
    const scripts = new Scripts(new Redis({ lazyConnect: true }));
    assert.throws(() => new LeaseStore(scripts, 100, ''));
    assert.throws(() => new LeaseStore(scripts, 100, 'a b'));
  });
});
