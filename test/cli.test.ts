/**
 * The operator CLI (`bin/leasehold.js`) run as a child process against a real server:
 * stdout, stderr and the exit code of every command, usage errors, the global options and
 * their env variables, and `serve`. Each process costs a Node start, so the tests run a few
 * at a time, each on a cluster of its own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { LeaseholdClient, type Cluster } from '../src/client/index.js';
import { EXIT } from '../src/cli/common.js';
import { appRedis, randomJobId, sharedRedisUrl, sleep, startApp, uniqueCluster, waitFor, type Running } from './support/app.js';
import { freePort, stopAllRedis } from './support/redis.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Generous: two cores, shared with whatever else runs. */
const CLI_TIMEOUT_MS = 60_000;
/** One-shot CLI runs at a time: more only queue for the CPU, each starting Node. */
const MAX_RUNNING = 3;
const ADMIN = 'cli-admin-token-0123456789';
/** Redis calls and health pings get time to spare on a busy machine: a 503 would fail a test for nothing. */
const PATIENT = { REDIS_COMMAND_TIMEOUT_MS: '5000', REDIS_HEALTH_INTERVAL_MS: '2000' };

const children = new Set<ChildProcess>();
let srv: Running;
let sdk: LeaseholdClient;

before(async () => {
  srv = await startApp(null, await sharedRedisUrl(), PATIENT);
  sdk = new LeaseholdClient({ url: srv.url });
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await srv?.close();
  await stopAllRedis();
});

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** One CLI process, with LEASEHOLD_URL set to the test server unless `env` says otherwise
 * (an undefined value unsets a variable); killed if it outlives CLI_TIMEOUT_MS. */
class Cli {
  stdout = '';
  stderr = '';
  readonly done: Promise<Result>;
  private readonly child: ChildProcess;

  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    const merged: Record<string, string | undefined> = { ...process.env, LEASEHOLD_URL: srv.url, LEASEHOLD_TOKEN: undefined, ...env };
    const child = spawn(process.execPath, ['bin/leasehold.js', ...args], {
      cwd: ROOT,
      env: Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    children.add(child);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    this.done = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        children.delete(child);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      }),
    );
  }

  lines(): string[] {
    return this.stdout.split('\n').filter(Boolean);
  }

  async waitForLines(n: number, what: string): Promise<string[]> {
    await waitFor(() => this.lines().length >= n, CLI_TIMEOUT_MS, what).catch((err: Error) => {
      throw new Error(`${err.message}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
    });
    return this.lines();
  }

  kill(signal: NodeJS.Signals): Promise<Result> {
    this.child.kill(signal);
    return this.done;
  }
}

let running = 0;
const queue: Array<() => void> = [];

/** Runs the CLI to its end, at most MAX_RUNNING at a time (their clocks start at spawn). */
async function cli(args: string[], env?: Record<string, string | undefined>): Promise<Result> {
  if (running < MAX_RUNNING) running++;
  else await new Promise<void>((r) => queue.push(r)); // a finishing run hands its slot over
  try {
    return await new Cli(args, env).done;
  } finally {
    const next = queue.shift();
    if (next) next();
    else running--;
  }
}

function expectExit(r: Result, code: number): void {
  assert.equal(r.code, code, `exit ${r.code} (signal ${r.signal}), expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Lines of a table, split into cells. */
function cells(stdout: string): string[][] {
  return stdout.trimEnd().split('\n').map((l) => l.split(/\s{2,}/));
}

async function lead(cluster: Cluster, component: 'dispatcher' | 'rest' | `jobmanager/${string}`, contenderId: string, address?: string) {
  const r = await cluster.campaign(component, { contenderId, ttlMs: 60_000, address });
  assert.equal(r.granted, true);
  return r.leader;
}

const WATCH_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\d+) (\S+) (\S+) (\S+) (\S+)$/;

describe('leasehold CLI', { concurrency: 4 }, () => {
  test('--help, usage errors (exit 2)', async () => {
    const [help, sub, none, unknownCmd, missingArg, unknownOpt, missingOpt, badInt, badRedis, badNodes] =
      await Promise.all([
        cli(['--help']),
        cli(['watch', '--help']),
        cli([]),
        cli(['frobnicate']),
        cli(['leaders']),
        cli(['leaders', 'c', '--bogus']),
        cli(['campaign', 'c', 'dispatcher']),
        cli(['watch', 'c', '--count', '0']),
        cli(['serve', '--redis-url', 'localhost:6379']),
        cli(['serve', '--redis-cluster-nodes', 'localhost']),
      ]);
    expectExit(help, 0);
    for (const word of ['serve', 'clusters', 'leaders', 'leadership', 'watch', 'campaign', 'resign', 'job-results', 'cleanup-job', 'cleanup-cluster', 'history', 'LEASEHOLD_URL', 'LEASEHOLD_TOKEN', '--timeout']) {
      assert.match(help.stdout, new RegExp(word));
    }
    assert.match(help.stdout, /Exit codes:[\s\S]*6 {2}unavailable/);
    expectExit(sub, 0);
    assert.match(sub.stdout, /--count <n>[\s\S]*Global Options:[\s\S]*--url <url>[\s\S]*Exit codes:/);
    expectExit(none, 2);
    assert.match(none.stderr, /Usage: leasehold/);
    const usage: [Result, RegExp][] = [
      [unknownCmd, /unknown command 'frobnicate'/],
      [missingArg, /missing required argument 'cluster'/],
      [unknownOpt, /unknown option '--bogus'/],
      [missingOpt, /required option '--contender <id>' not specified/],
      [badInt, /'--count <n>' argument '0' is invalid/],
      [badRedis, /expected redis:\/\//],
      [badNodes, /expected host:port/],
    ];
    for (const [r, message] of usage) {
      expectExit(r, 2);
      assert.match(r.stderr, /^leasehold: Usage: /);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    }
  });

  test('leaders: a table and --json, with and without leaders', async () => {
    const id = uniqueCluster('cli');
    const [empty, emptyJson] = await Promise.all([cli(['leaders', id]), cli(['leaders', id, '--json'])]);
    expectExit(empty, 0);
    assert.equal(empty.stderr, '');
    const rows = cells(empty.stdout);
    assert.deepEqual(rows[0], ['COMPONENT', 'CONTENDER', 'TOKEN', 'ADDRESS', 'LEASE', 'SESSION']);
    assert.deepEqual(rows.slice(1, 4), ['resourcemanager', 'dispatcher', 'rest'].map((c) => [c, '-', '-', '-', '-', '-']));
    assert.match(rows[4][0], /^index \d+$/);
    assert.equal(rows.length, 5);
    expectExit(emptyJson, 0);
    const state = JSON.parse(emptyJson.stdout);
    assert.deepEqual(state.leaders.map((l: { leader: unknown }) => l.leader), [null, null, null]);
    assert.equal(typeof state.index, 'number');

    const cluster = sdk.cluster(id);
    const jobId = randomJobId();
    const d = await lead(cluster, 'dispatcher', 'disp-1', 'http://10.0.0.5:8081');
    const jm = await lead(cluster, `jobmanager/${jobId}`, 'jm-1');
    const [table, json] = await Promise.all([cli(['leaders', id]), cli(['leaders', id, '--json'])]);
    expectExit(table, 0);
    const t = cells(table.stdout);
    const dispatcher = t.find((r) => r[0] === 'dispatcher')!;
    assert.deepEqual([dispatcher[1], dispatcher[2], dispatcher[3], dispatcher[5]], ['disp-1', String(d.fencingToken), 'http://10.0.0.5:8081', d.sessionId]);
    assert.match(dispatcher[4], /^\d+\.\ds$/);
    const job = t.find((r) => r[0] === `jobmanager/${jobId}`)!;
    assert.deepEqual([job[1], job[2], job[3], job[5]], ['jm-1', String(jm.fencingToken), '-', jm.sessionId]);
    assert.match(t.at(-1)![0], /^index \d+$/);
    expectExit(json, 0);
    const answer = JSON.parse(json.stdout);
    assert.equal(answer.leaders.find((l: { component: string }) => l.component === 'dispatcher').leader.sessionId, d.sessionId);
    assert.ok(answer.index > state.index);
  });

  test('campaign: granted (exit 0), not granted (exit 3), a bad component (exit 2)', async () => {
    const id = uniqueCluster('cli');
    const granted = await cli(['campaign', id, 'dispatcher', '--contender', 'disp-1', '--ttl', '30000', '--address', 'host:1']);
    expectExit(granted, 0);
    assert.match(granted.stdout, /^granted: disp-1 leads dispatcher \(token \d+, session [0-9a-f-]{36}, lease 30\.0s, address host:1\)\n$/);
    assert.equal(granted.stderr, '');
    const [refused, refusedJson, bad] = await Promise.all([
      cli(['campaign', id, 'dispatcher', '--contender', 'disp-2']),
      cli(['campaign', id, 'dispatcher', '--contender', 'disp-2', '--json']),
      cli(['campaign', id, 'nameserver', '--contender', 'x']),
    ]);
    expectExit(refused, 3);
    assert.match(refused.stdout, /^not granted: disp-1 leads dispatcher \(token \d+/);
    expectExit(refusedJson, 3);
    const r = JSON.parse(refusedJson.stdout);
    assert.equal(r.granted, false);
    assert.equal(r.leader.contenderId, 'disp-1');
    expectExit(bad, 2);
    assert.match(bad.stderr, /^leasehold: BadRequest: .*component/);
    assert.equal(bad.stdout, '');
  });

  test('campaign --hold: leads, renews, and resigns on SIGINT', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const holder = new Cli(['campaign', id, 'rest', '--contender', 'holder', '--ttl', '3000', '--hold']);
    const [line] = await holder.waitForLines(1, 'granted');
    assert.match(line, /^\S+Z granted rest to holder \(token \d+, session [0-9a-f-]{36}, lease 3\.0s, address -\)$/);
    // Past the TTL: only renewals keep it.
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await cluster.leader('rest'))?.contenderId, 'holder');
    const r = await holder.kill('SIGINT');
    expectExit(r, 0);
    assert.match(r.stdout.trimEnd().split('\n').at(-1)!, /^\S+Z revoked rest from holder \(resigned\)$/);
    assert.equal(await cluster.leader('rest'), null);
  });

  test('resign: forced, nothing to release, wrong session (exit 3)', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const d = await lead(cluster, 'dispatcher', 'disp-1');
    const wrong = await cli(['resign', id, 'dispatcher', '--contender', 'disp-1', '--session', randomUUID()]);
    expectExit(wrong, 3);
    assert.match(wrong.stderr, /^leasehold: NotLeader: /);
    assert.equal(wrong.stdout, '');
    const forced = await cli(['resign', id, 'dispatcher']);
    expectExit(forced, 0);
    assert.equal(forced.stdout, `released dispatcher: disp-1 (session ${d.sessionId})\n`);
    assert.equal(await cluster.leader('dispatcher'), null);

    const again = await lead(cluster, 'dispatcher', 'disp-2');
    const [none, explicit] = await Promise.all([
      cli(['resign', id, 'rest']),
      cli(['resign', id, 'dispatcher', '--contender', 'disp-2', '--session', again.sessionId, '--json']),
    ]);
    expectExit(none, 0);
    assert.equal(none.stdout, 'rest has no leader: nothing to release\n');
    expectExit(explicit, 0);
    assert.deepEqual(JSON.parse(explicit.stdout), { component: 'dispatcher', released: true, contenderId: 'disp-2', sessionId: again.sessionId });
  });

  test('watch --count: a snapshot, then one line per change, exit 0', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const watch = new Cli(['watch', id, '--count', '2']);
    const snapshot = await watch.waitForLines(3, 'the snapshot');
    assert.deepEqual(
      snapshot.map((l) => WATCH_LINE.exec(l)!.slice(2)),
      ['resourcemanager', 'dispatcher', 'rest'].map((c) => ['snapshot', c, '-', '-']),
    );
    const d = await lead(cluster, 'dispatcher', 'disp-1', 'host:9');
    await cluster.resign('dispatcher', { contenderId: d.contenderId, sessionId: d.sessionId });
    await lead(cluster, 'rest', 'not-counted');
    const r = await watch.done;
    expectExit(r, 0);
    assert.equal(r.stderr, '');
    const changes = r.stdout.trimEnd().split('\n').slice(3).map((l) => WATCH_LINE.exec(l)!);
    assert.deepEqual(changes.map((m) => m.slice(2)), [
      ['granted', 'dispatcher', 'disp-1', 'host:9'],
      ['revoked', 'dispatcher', '-', '-'],
    ]);
    assert.ok(Number(changes[0][1]) < Number(changes[1][1]));
  });

  test('watch --json: NDJSON snapshot and changes, exit 0 on SIGTERM; --since replays', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const watch = new Cli(['watch', id, '--json', '--components', 'dispatcher']);
    const [first] = await watch.waitForLines(1, 'the snapshot');
    const snapshot = JSON.parse(first);
    assert.equal(snapshot.type, 'snapshot');
    assert.deepEqual(snapshot.leaders, [{ component: 'dispatcher', leader: null }]);
    const before = (await cluster.leaders()).index;
    await lead(cluster, 'rest', 'filtered-out');
    const d = await lead(cluster, 'dispatcher', 'disp-1');
    await watch.waitForLines(2, 'the change');
    const r = await watch.kill('SIGTERM');
    expectExit(r, 0);
    const change = JSON.parse(r.stdout.split('\n')[1]);
    assert.deepEqual({ ...change, index: 0 }, { type: 'change', event: 'granted', component: 'dispatcher', leader: { ...d, leaseRemainingMs: change.leader.leaseRemainingMs }, index: 0 });
    assert.ok(change.index > snapshot.index);

    const replay = await cli(['watch', id, '--json', '--since', String(before), '--count', '2']);
    expectExit(replay, 0);
    const messages = replay.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(messages.map((m) => [m.type, m.event, m.leader.contenderId]), [
      ['change', 'granted', 'filtered-out'],
      ['change', 'granted', 'disp-1'],
    ]);
  });

  test('leadership campaign --publish, show, leaders grouped by session, not granted (exit 3), resign, revoke', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const jobId = randomJobId();
    const won = await cli(['leadership', 'campaign', id, '--contender', 'proc-1', '--ttl', '30000', '--publish', 'dispatcher=akka://d', '--publish', `jobmanager/${jobId}=akka://jm`]);
    expectExit(won, 0);
    assert.match(won.stdout, new RegExp(`^granted: proc-1 \\(token \\d+, session [0-9a-f-]{36}, lease \\d+\\.\\ds\\) leads ${id}, publishing dispatcher, jobmanager/${jobId}\n$`));
    const l = (await cluster.leadership())!;
    assert.equal(l.contenderId, 'proc-1');

    const [show, showJson, leaders, refused, bad] = await Promise.all([
      cli(['leadership', 'show', id]),
      cli(['leadership', 'show', id, '--json']),
      cli(['leaders', id]),
      cli(['leadership', 'campaign', id, '--contender', 'proc-2']),
      cli(['leadership', 'campaign', id, '--contender', 'x', '--publish', 'nothing']),
    ]);
    expectExit(show, 0);
    assert.equal(show.stdout, `leadership: proc-1 (token ${l.token}, session ${l.sessionId}, lease ${show.stdout.match(/lease (\S+)\)/)![1]})\n  dispatcher akka://d\n  jobmanager/${jobId} akka://jm\n`);
    expectExit(showJson, 0);
    assert.equal(JSON.parse(showJson.stdout).leadership.sessionId, l.sessionId);
    expectExit(leaders, 0);
    const rows = leaders.stdout.trimEnd().split('\n');
    assert.equal(rows.at(-2), `leadership ${l.sessionId} proc-1: dispatcher, jobmanager/${jobId}`);
    assert.match(rows.at(-1)!, /^index \d+$/);
    expectExit(refused, 3);
    assert.match(refused.stdout, /^not granted: proc-1 \(token/);
    expectExit(bad, 2);
    assert.match(bad.stderr, /expected component=address/);

    const wrong = await cli(['leadership', 'revoke', id, '--session', randomUUID()]);
    expectExit(wrong, 3);
    assert.match(wrong.stderr, /^leasehold: NotLeader: /);
    const resigned = await cli(['leadership', 'resign', id, '--json']);
    expectExit(resigned, 0);
    assert.deepEqual(JSON.parse(resigned.stdout), { released: true, contenderId: 'proc-1', sessionId: l.sessionId });
    assert.equal(await cluster.leader('dispatcher'), null);
    // One after the other: a campaign that won first would be what `show` reads.
    const none = await cli(['leadership', 'show', id]);
    const again = await cli(['leadership', 'campaign', id, '--contender', 'proc-3', '--json']);
    assert.equal(none.stdout, `${id} has no leadership\n`);
    expectExit(again, 0);
    const revoked = await cli(['leadership', 'revoke', id]);
    expectExit(revoked, 0);
    assert.equal(revoked.stdout, `revoked the leadership of ${id}\n`);
    assert.equal(await cluster.leadership(), null);
  });

  test('leadership campaign --hold: publishes on the grant, renews, resigns on SIGINT', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const holder = new Cli(['leadership', 'campaign', id, '--contender', 'holder', '--ttl', '3000', '--publish', 'rest=http://r', '--hold']);
    const [line] = await holder.waitForLines(1, 'granted');
    assert.match(line, new RegExp(`^\\S+Z granted the leadership of ${id} to holder \\(token \\d+, session [0-9a-f-]{36}, lease 3\\.0s\\)$`));
    await waitFor(async () => (await cluster.leader('rest'))?.address === 'http://r', 10_000, 'rest published');
    // Past the TTL: only renewals keep it.
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await cluster.leader('rest'))?.contenderId, 'holder');
    const r = await holder.kill('SIGINT');
    expectExit(r, 0);
    assert.match(r.stdout.trimEnd().split('\n').at(-1)!, new RegExp(`^\\S+Z revoked the leadership of ${id} from holder \\(resigned\\)$`));
    assert.equal(await cluster.leadership(), null);
    assert.equal(await cluster.leader('rest'), null);
  });

  test('history: a table newest first, --component, --limit, --json', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const a = await lead(cluster, 'rest', 'a', 'http://a');
    assert.equal(await cluster.resign('rest', { contenderId: 'a', sessionId: a.sessionId }), true);
    const b = await lead(cluster, 'rest', 'b');
    const d = await lead(cluster, 'dispatcher', 'd');
    const [all, rest, one, json] = await Promise.all([
      cli(['history', id]),
      cli(['history', id, '--component', 'rest']),
      cli(['history', id, '--limit', '1']),
      cli(['history', id, '--json']),
    ]);
    expectExit(all, 0);
    const rows = cells(all.stdout);
    assert.deepEqual(rows[0], ['COMPONENT', 'CONTENDER', 'TOKEN', 'ADDRESS', 'GRANTED', 'ENDED', 'HOW', 'GAP']);
    assert.deepEqual(
      rows.slice(1).map((r) => [r[0], r[1], r[2], r[3], r[6]]),
      [
        ['dispatcher', 'd', String(d.fencingToken), '-', 'leading'],
        ['rest', 'b', String(b.fencingToken), '-', 'leading'],
        ['rest', 'a', String(a.fencingToken), 'http://a', 'resigned'],
      ],
    );
    assert.match(rows[2][7], /^\d+ ms$/, 'the takeover gap of b');
    expectExit(rest, 0);
    assert.deepEqual(cells(rest.stdout).slice(1).map((r) => r[1]), ['b', 'a']);
    expectExit(one, 0);
    assert.equal(cells(one.stdout).length, 2);
    expectExit(json, 0);
    assert.deepEqual(JSON.parse(json.stdout).entries.map((e: { contenderId: string }) => e.contenderId), ['d', 'b', 'a']);
  });

  test('job-results: all, --dirty, --json', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const empty = await cli(['job-results', id]);
    expectExit(empty, 0);
    assert.equal(empty.stdout, 'JOB ID  STATUS  STATE  CREATED  CLEANED\n');
    const results = cluster.jobResults((await lead(cluster, 'dispatcher', 'disp-1')).fencingToken);
    const [dirtyJob, cleanJob] = [randomJobId(), randomJobId()];
    const dirty = await results.createDirty(dirtyJob, { applicationStatus: 'FAILED' });
    await results.createDirty(cleanJob, { applicationStatus: 'SUCCEEDED', jobName: 'wordcount' });
    const clean = await results.markClean(cleanJob);
    const [all, onlyDirty, json] = await Promise.all([cli(['job-results', id]), cli(['job-results', id, '--dirty']), cli(['job-results', id, '--json'])]);
    expectExit(all, 0);
    const rows = cells(all.stdout);
    assert.deepEqual(rows[0], ['JOB ID', 'STATUS', 'STATE', 'CREATED', 'CLEANED']);
    assert.deepEqual(
      rows.slice(1).sort(),
      [
        [dirtyJob, 'FAILED', 'dirty', dirty.createdAt, '-'],
        [cleanJob, 'SUCCEEDED', 'clean', clean.createdAt, clean.cleanedAt!],
      ].sort(),
    );
    expectExit(onlyDirty, 0);
    assert.deepEqual(cells(onlyDirty.stdout).slice(1), [[dirtyJob, 'FAILED', 'dirty', dirty.createdAt, '-']]);
    expectExit(json, 0);
    const entries = JSON.parse(json.stdout).jobResults;
    assert.deepEqual(entries.find((e: { jobId: string }) => e.jobId === cleanJob), clean);
  });

  test('clusters: a table, --prefix and --json, every page; the SDK lists the same', async () => {
    const p = uniqueCluster('cli-clusters');
    const empty = await cli(['clusters', '--prefix', p]);
    expectExit(empty, 0);
    assert.equal(empty.stdout, 'CLUSTER  LEADERSHIP  RESOURCEMANAGER  DISPATCHER  REST  JOBS  LAST CHANGE\n');
    const [a, b] = [`${p}-a`, `${p}-b`];
    await lead(sdk.cluster(a), 'dispatcher', 'disp-1', 'http://10.0.0.5:8081');
    await lead(sdk.cluster(a), `jobmanager/${randomJobId()}`, 'jm-1');
    await sdk.cluster(b).campaignLeadership({ contenderId: 'jm-process', ttlMs: 60_000 });
    await waitFor(async () => (await sdk.clusters().list({ prefix: p })).length === 2, 10_000, 'both listed');
    const [table, json] = await Promise.all([cli(['clusters', '--prefix', p]), cli(['clusters', '--prefix', p, '--json'])]);
    expectExit(table, 0);
    const rows = cells(table.stdout);
    assert.deepEqual(rows[0], ['CLUSTER', 'LEADERSHIP', 'RESOURCEMANAGER', 'DISPATCHER', 'REST', 'JOBS', 'LAST CHANGE']);
    assert.deepEqual(rows[1].slice(0, 6), [a, '-', '-', 'disp-1@http://10.0.0.5:8081', '-', '1']);
    assert.match(rows[1][6], /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(rows[2].slice(0, 6), [b, 'jm-process', '-', '-', '-', '0']);
    assert.equal(rows.length, 3);
    expectExit(json, 0);
    const listed = JSON.parse(json.stdout).clusters;
    assert.deepEqual(listed.map((e: { clusterId: string }) => e.clusterId), [a, b]);
    assert.equal(listed[1].leadership.contenderId, 'jm-process');
    const each: string[] = [];
    for await (const e of sdk.clusters().each({ prefix: p })) each.push(e.clusterId);
    assert.deepEqual(each, [a, b]);
    await assert.rejects(sdk.clusters().list({ prefix: p, max: 1 }), RangeError);
  });

  test('cleanup-job: override by default, a stale token (exit 3)', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const jobId = randomJobId();
    await lead(cluster, `jobmanager/${jobId}`, 'jm-1');
    await cluster.executionPlans('override').put(jobId, new Uint8Array([1, 2, 3]));
    const stale = await cli(['cleanup-job', id, jobId, '--fencing-token', '12345']);
    expectExit(stale, 3);
    assert.match(stale.stderr, /^leasehold: FencingTokenStale: /);
    assert.equal(await cluster.executionPlans('override').get(jobId).then((p) => p?.length), 3);

    const r = await cli(['cleanup-job', id, jobId]);
    expectExit(r, 0);
    assert.deepEqual(cells(r.stdout), [
      ['PART', 'OUTCOME'],
      ['leader', 'deleted'],
      ['executionPlan', 'deleted'],
      ['checkpoints', 'absent'],
      ['checkpointIdCounter', 'absent'],
      ['blobs', 'absent'],
    ]);
    assert.equal(await cluster.leader(`jobmanager/${jobId}`), null);
    const json = await cli(['cleanup-job', id, jobId, '--json']);
    expectExit(json, 0);
    assert.deepEqual(JSON.parse(json.stdout), {
      jobId,
      parts: { leader: 'absent', executionPlan: 'absent', checkpoints: 'absent', checkpointIdCounter: 'absent', blobs: 'absent' },
    });
  });

  test('cleanup-cluster: refused without --yes (exit 2), then done', async () => {
    const id = uniqueCluster('cli');
    const cluster = sdk.cluster(id);
    const d = await lead(cluster, 'dispatcher', 'disp-1');
    await cluster.jobResults(d.fencingToken).createDirty(randomJobId(), { applicationStatus: 'SUCCEEDED' });
    const refused = await cli(['cleanup-cluster', id]);
    expectExit(refused, 2);
    assert.match(refused.stderr, /^leasehold: Usage: .*--yes/);
    assert.equal(refused.stdout, '');
    assert.equal((await cluster.leader('dispatcher'))?.sessionId, d.sessionId);

    const r = await cli(['cleanup-cluster', id, '--yes']);
    expectExit(r, 0);
    const counts = Object.fromEntries(cells(r.stdout).slice(1));
    assert.equal(cells(r.stdout)[0].join(' '), 'DELETED COUNT');
    assert.equal(counts.leaders, '1');
    assert.equal(counts.jobResults, '1');
    assert.match(counts.keys, /^\d+$/);
    assert.equal(await cluster.leader('dispatcher'), null);
    const json = await cli(['cleanup-cluster', id, '--yes', '--json']);
    expectExit(json, 0);
    assert.equal(JSON.parse(json.stdout).deleted.leaders, 0);
  });

  test('unreachable, timed out, wrong base URL: exit 6, 6, 4', async (t) => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    // Accepts connections and never answers.
    const sockets = new Set<Socket>();
    const silent = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    t.after(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    const id = uniqueCluster('cli');
    const [refused, watch, timedOut, notFound] = await Promise.all([
      cli(['leaders', id, '--url', closed]),
      cli(['watch', id], { LEASEHOLD_URL: closed }),
      cli(['leaders', id, '--url', silentUrl, '--timeout', '300']),
      cli(['leaders', id, '--url', `${srv.url}/not-here`]),
    ]);
    for (const r of [refused, watch]) {
      expectExit(r, 6);
      assert.match(r.stderr, /^leasehold: Unavailable: .*ECONNREFUSED/);
      assert.equal(r.stdout, '');
    }
    expectExit(timedOut, 6);
    assert.match(timedOut.stderr, /^leasehold: Unavailable: .*timed out/);
    expectExit(notFound, 4);
    assert.match(notFound.stderr, /^leasehold: [^:]+: /);
  });

  test('LEASEHOLD_URL and LEASEHOLD_TOKEN, and --url and --token over them', async (t) => {
    const secured = await startApp(t, await sharedRedisUrl(), { ...PATIENT, ADMIN_TOKENS: ADMIN });
    const id = uniqueCluster('cli');
    const [noToken, envToken, wrongFlag, flagOverEnv] = await Promise.all([
      cli(['cleanup-cluster', id, '--yes'], { LEASEHOLD_URL: secured.url }),
      cli(['cleanup-cluster', id, '--yes'], { LEASEHOLD_URL: secured.url, LEASEHOLD_TOKEN: ADMIN }),
      cli(['cleanup-cluster', id, '--yes', '--token', 'not-the-admin-token-000'], { LEASEHOLD_URL: secured.url, LEASEHOLD_TOKEN: ADMIN }),
      cli(['cleanup-cluster', id, '--yes', '--url', secured.url, '--token', ADMIN], { LEASEHOLD_URL: 'http://127.0.0.1:1' }),
    ]);
    expectExit(noToken, 5);
    assert.match(noToken.stderr, /^leasehold: \w+: .*token/);
    expectExit(envToken, 0);
    expectExit(wrongFlag, 5);
    expectExit(flagOverEnv, 0);
  });

  test('serve: runs the server on --port with --redis-url (a Redis Cluster: --redis-cluster-nodes), stops on SIGTERM', async () => {
    const port = await freePort();
    const url = await sharedRedisUrl();
    const nodes = (await appRedis(url)).config.redis?.clusterNodes;
    const redis = nodes ? ['--redis-cluster-nodes', nodes.map((n) => `${n.host}:${n.port}`).join(',')] : ['--redis-url', url];
    const server = new Cli(['serve', '--port', String(port), '--host', '127.0.0.1', ...redis], { LOG_LEVEL: 'warn' });
    const healthy = () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false);
    await waitFor(healthy, CLI_TIMEOUT_MS, `serve answering /healthz: ${server.stderr}`);
    // A fresh server on a loaded machine may shed the first read (503 Overloaded, exit 6):
    // a retryable answer, tried again as an operator would.
    let leaders = await cli(['leaders', uniqueCluster('cli'), '--url', `http://127.0.0.1:${port}`]);
    for (let i = 0; i < 10 && leaders.code === EXIT.unavailable && /overloaded/i.test(leaders.stderr); i++) {
      await sleep(300);
      leaders = await cli(['leaders', uniqueCluster('cli'), '--url', `http://127.0.0.1:${port}`]);
    }
    expectExit(leaders, 0);
    expectExit(await server.kill('SIGTERM'), 0);
  });
});
