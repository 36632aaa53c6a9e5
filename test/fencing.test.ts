/**
 * Fencing of every store write (docs/design.md §5, openapi.yaml): a missing, malformed or stale
 * X-Fencing-Token is refused, and a refused write leaves every store key of the cluster exactly
 * as it was (read straight from Redis with DUMP).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { scanKeys, stopAllRedis } from './support/redis.js';
import { get, post, randomJobId, connectRedis, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, type Running } from './support/app.js';

let srv: Running;
let redis: Redis;
before(async () => {
  const url = await sharedRedisUrl();
  srv = await startApp(null, url);
  redis = await connectRedis(url);
});
after(async () => {
  redis.disconnect();
  await srv.close();
  await stopAllRedis();
});

type Reply = Awaited<ReturnType<typeof get>>;

const base = (c: string) => `/v1/clusters/${c}`;
const bytes = (s: string) => new TextEncoder().encode(s);

/** A request with an optional fencing token; a Uint8Array body goes as octet-stream, anything else as JSON. */
async function send(method: string, path: string, token?: string, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = token === undefined ? {} : { 'x-fencing-token': token };
  const binary = body instanceof Uint8Array;
  if (body !== undefined) headers['content-type'] = binary ? 'application/octet-stream' : 'application/json';
  const payload = body === undefined ? undefined : binary ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body);
  const res = await fetch(srv.url + path, { method, headers, body: payload });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Leadership keys (and the leadership history) change with every campaign, so only the
 * store keys are compared. */
const LEADERSHIP = /^(index|log|components|lease:.*|leader:.*|history(:.*)?)$/;

/** Every store key of the cluster with its serialized value (DUMP, hex). */
async function storeKeys(c: string): Promise<Map<string, string>> {
  const prefix = `lh:{${c}}:`;
  const keys = (await scanKeys(redis, `${prefix}*`)).filter((k) => !LEADERSHIP.test(k.slice(prefix.length))).sort();
  const dumps = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
  return new Map(keys.map((k, i) => [k, dumps[i]?.toString('hex') ?? 'gone']));
}

interface Lease {
  token: string;
  sessionId: string;
  contenderId: string;
  component: string;
}

async function lead(c: string, component: string, contenderId: string, ttlMs = 30_000): Promise<Lease> {
  const r = await post(srv.url, `${base(c)}/leaders/${component}/campaign`, { contenderId, ttlMs });
  assert.equal(r.body.granted, true, `${contenderId} leads ${component}: ${JSON.stringify(r.body)}`);
  return { token: String(r.body.leader.fencingToken), sessionId: r.body.leader.sessionId, contenderId, component };
}

function resign(c: string, l: Lease): Promise<Reply> {
  return post(srv.url, `${base(c)}/leaders/${l.component}/resign`, { contenderId: l.contenderId, sessionId: l.sessionId });
}

/** Waits until the lease has run out as the server sees it. */
async function waitExpired(c: string, l: Lease): Promise<void> {
  await sleep(1000);
  await waitFor(async () => (await get(srv.url, `${base(c)}/leaders/${l.component}`)).body.leader === null, 5000, 'lease expiry');
}

type KindName = 'jobResult' | 'plan' | 'checkpoint' | 'counter' | 'blob' | 'cleanup';

interface Kind {
  /** Fenced by jobmanager/{jobId} rather than the dispatcher. */
  byJobManager: boolean;
  /** Status of an accepted write. */
  ok: number;
  write(c: string, job: string, token?: string): Promise<Reply>;
  /** Writes (with override) that give this write something to change or delete. */
  prepare: KindName[];
}

let nextCheckpointId = 1;
const KINDS: Record<KindName, Kind> = {
  jobResult: {
    byJobManager: false,
    ok: 201,
    prepare: [],
    write: (c, job, tok) => send('PUT', `${base(c)}/job-results/${job}`, tok, { applicationStatus: 'SUCCEEDED' }),
  },
  plan: {
    byJobManager: false,
    ok: 200,
    prepare: ['plan'],
    write: (c, job, tok) => send('PUT', `${base(c)}/execution-plans/${job}`, tok, bytes(`plan ${tok} ${Math.random()}`)),
  },
  checkpoint: {
    byJobManager: true,
    ok: 200,
    prepare: ['checkpoint'],
    write: (c, job, tok) =>
      send('POST', `${base(c)}/jobs/${job}/checkpoints`, tok, { checkpointId: nextCheckpointId++, timestamp: Date.now(), externalPointer: 's3://cp' }),
  },
  counter: {
    byJobManager: true,
    ok: 200,
    prepare: ['counter'],
    write: (c, job, tok) => send('POST', `${base(c)}/jobs/${job}/checkpoint-id-counter/increment`, tok),
  },
  blob: {
    byJobManager: false,
    ok: 201,
    prepare: ['blob'],
    write: (c, job, tok) => send('PUT', `${base(c)}/blobs/${job}/lib.jar`, tok, bytes(`blob ${tok} ${Math.random()}`)),
  },
  cleanup: {
    byJobManager: false,
    ok: 200,
    prepare: ['plan', 'checkpoint', 'counter', 'blob'],
    write: (c, job, tok) => send('DELETE', `${base(c)}/jobs/${job}`, tok),
  },
};

const owner = (kind: Kind, job: string) => (kind.byJobManager ? `jobmanager/${job}` : 'dispatcher');

async function prepare(kind: Kind, c: string, job: string): Promise<void> {
  for (const name of kind.prepare) {
    const r = await KINDS[name].write(c, job, 'override');
    assert.equal(r.status, KINDS[name].ok, `prepare ${name}: ${JSON.stringify(r.body)}`);
  }
}

/** A fresh cluster and job with the data the write would touch already stored. */
async function setup(kind: Kind): Promise<{ c: string; job: string }> {
  const c = uniqueCluster('fence');
  const job = randomJobId();
  await prepare(kind, c, job);
  return { c, job };
}

async function assertRefused(c: string, fn: () => Promise<Reply>, status: number, error: string, what: string): Promise<void> {
  const before = await storeKeys(c);
  const r = await fn();
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body?.error, error, what);
  assert.equal(r.body?.statusCode, status, what);
  assert.deepEqual(await storeKeys(c), before, `${what}: nothing written`);
}

async function assertAccepted(kind: Kind, c: string, job: string, token: string, what: string): Promise<void> {
  const before = await storeKeys(c);
  const r = await kind.write(c, job, token);
  assert.equal(r.status, kind.ok, `${what}: ${JSON.stringify(r.body)}`);
  assert.notDeepEqual(await storeKeys(c), before, `${what}: the write landed`);
}

const MALFORMED = ['abc', '-1', '1.5', '0x10', '12345678901234567', '1 2', 'overridee'];

for (const [name, kind] of Object.entries(KINDS)) {
  describe(`fencing of ${name} (by ${kind.byJobManager ? 'jobmanager/{jobId}' : 'dispatcher'})`, () => {
    test('no X-Fencing-Token: 409 FencingTokenRequired, even with a live leader; nothing written', async () => {
      const { c, job } = await setup(kind);
      await lead(c, owner(kind, job), 'a');
      await assertRefused(c, () => kind.write(c, job), 409, 'FencingTokenRequired', 'no token');
    });

    test('a malformed token: 400 BadRequest; nothing written', async () => {
      const { c, job } = await setup(kind);
      await lead(c, owner(kind, job), 'a');
      for (const tok of MALFORMED) await assertRefused(c, () => kind.write(c, job, tok), 400, 'BadRequest', `token ${JSON.stringify(tok)}`);
    });

    test('a deposed leader is refused once its lease expired and after a new leader was granted; the new one is accepted', async () => {
      const { c, job } = await setup(kind);
      const a = await lead(c, owner(kind, job), 'a', 1000);
      await waitExpired(c, a);
      await assertRefused(c, () => kind.write(c, job, a.token), 409, 'FencingTokenStale', 'expired lease, no new leader');
      const b = await lead(c, owner(kind, job), 'b');
      assert.ok(Number(b.token) > Number(a.token));
      await assertRefused(c, () => kind.write(c, job, a.token), 409, 'FencingTokenStale', 'deposed leader');
      await assertAccepted(kind, c, job, b.token, 'new leader');
    });

    test('a leader that resigned is refused; before, it was accepted', async () => {
      const c = uniqueCluster('fence');
      const job = randomJobId();
      const a = await lead(c, owner(kind, job), 'a');
      await prepare(kind, c, job);
      await assertAccepted(kind, c, job, a.token, 'live leader');
      // The refused write gets data of its own to change (a job of its own unless the lease is the job's).
      const next = kind.byJobManager ? job : randomJobId();
      await prepare(kind, c, next);
      assert.equal((await resign(c, a)).status, 200);
      await assertRefused(c, () => kind.write(c, next, a.token), 409, 'FencingTokenStale', 'resigned leader');
    });

    test('X-Fencing-Token: override is accepted with no leader at all', async () => {
      const { c, job } = await setup(kind);
      await assertAccepted(kind, c, job, 'override', 'override');
    });

    test('the live token of another component does not fence this data', async () => {
      const { c, job } = await setup(kind);
      const other = kind.byJobManager ? 'dispatcher' : `jobmanager/${job}`;
      const wrong = await lead(c, other, 'w');
      let right = await lead(c, owner(kind, job), 'r');
      // Tokens are counted per component: make sure the two differ, or the test would prove nothing.
      while (right.token === wrong.token) {
        await resign(c, right);
        right = await lead(c, owner(kind, job), 'r');
      }
      await assertRefused(c, () => kind.write(c, job, wrong.token), 409, 'FencingTokenStale', `${other} token`);
      await assertAccepted(kind, c, job, right.token, 'owner token');
    });
  });
}

test('a write racing a resign never lands after the resign answered', { timeout: 120_000 }, async (t) => {
  const names = Object.keys(KINDS) as KindName[];
  const outcomes = { accepted: 0, refused: 0 };
  for (let round = 0; round < 60; round++) {
    const kind = KINDS[names[round % names.length]];
    const { c, job } = await setup(kind);
    const a = await lead(c, owner(kind, job), 'a');
    const before = await storeKeys(c);
    const writing = kind.write(c, job, a.token);
    if (round % 3 === 1) await sleep(1);
    const resigned = resign(c, a).then(async (r) => ({ r, seen: await storeKeys(c) }));
    const [w, { r, seen }] = await Promise.all([writing, resigned]);
    assert.equal(r.status, 200, `round ${round}: resign`);
    const final = await storeKeys(c);
    const what = `round ${round} (${names[round % names.length]}): write ${w.status} ${JSON.stringify(w.body)}`;
    if (w.status === kind.ok) {
      outcomes.accepted++;
      assert.notDeepEqual(seen, before, `${what}: an accepted write is visible the moment the resign answered`);
      assert.deepEqual(final, seen, `${what}: nothing changed after the resign answered`);
    } else {
      outcomes.refused++;
      assert.equal(w.status, 409, what);
      assert.equal(w.body.error, 'FencingTokenStale', what);
      assert.deepEqual(final, before, `${what}: a refused write wrote nothing`);
    }
  }
  t.diagnostic(`accepted ${outcomes.accepted}, refused ${outcomes.refused}`);
});
