/**
 * `npm run bench:peers`: leasehold beside etcd 3.4 and ZooKeeper 3.8 from Debian's packages
 * (installed with apt-get where missing; a peer whose install fails is skipped with a
 * message). Every server is a process of this run on free ports with its own data dir — never
 * the packaged services — and is stopped at the end. The load comes from one Go program,
 * tools/peersbench, through each side's own client with the same sessions and requests in
 * flight; rounds interleave the sides (the order rotates each round) and the table gives
 * medians over rounds, leasehold's ratio to the best peer (above 1: leasehold ahead), and the
 * server CPU per operation beside each throughput, read from /proc/<pid>/stat.
 *
 * `--rounds N` (default 5), `--quick` (one round, short runs), `--only read,renew,…`
 * (`renew-stream`, leasehold's renewal stream, brings `renew` along: its peers are that row's).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { BenchEnv } from './env.js';
import { freePort } from '../test/support/redis.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ROWS = ['read', 'renew', 'renew-stream', 'renew-clusters', 'campaign', 'push', 'failover', 'memory'] as const;
type RowName = (typeof ROWS)[number];

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' }, only: { type: 'string' } },
});
const quick = values.quick!;
const roundCount = Number(values.rounds ?? (quick ? 1 : 5));
if (!(Number.isInteger(roundCount) && roundCount >= 1)) {
  console.error(`--rounds takes a count of rounds, at least 1: ${values.rounds}`);
  process.exit(2);
}
const only = (values.only?.split(',') ?? [...ROWS]) as RowName[];
// The streamed renewal is measured against the peers of the renewal row, in the same rounds.
if (only.includes('renew-stream') && !only.includes('renew')) only.unshift('renew');
const unknown = only.filter((r) => !ROWS.includes(r));
if (unknown.length) {
  console.error(`unknown row: ${unknown.join(', ')} (known: ${ROWS.join(', ')})`);
  process.exit(2);
}
const durationS = quick ? 2 : 4;
const latencySamples = quick ? 100 : 300;
const FAILOVERS_PER_ROUND = 2;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);

// ---------------------------------------------------------------------------------------
// Processes: everything started here is killed when the run ends, however it ends.

const children = new Set<ChildProcess>();
const dirs: string[] = [];
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
process.once('SIGINT', () => process.exit(130));

function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `leasehold-peers-${name}-`));
  dirs.push(d);
  return d;
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function waitUntil(what: string, ok: () => Promise<boolean>, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await ok().catch(() => false))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${what} did not start:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-3000) : ''}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** apt-get install, for a peer whose program is missing; false (with a message) when it fails. */
function ensureInstalled(pkg: string, path: string, service: string): boolean {
  if (existsSync(path)) return true;
  console.error(`${path} is missing: apt-get install ${pkg}…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (!run(['install', '-y', '-q', pkg]) && !(run(['update', '-q']) && run(['install', '-y', '-q', pkg]))) {
    console.error(`could not install ${pkg}: its column is skipped`);
    return false;
  }
  // The package may have started its service: this run starts its own process instead.
  spawnSync('sh', ['-c', `systemctl stop ${service} 2>/dev/null || service ${service} stop 2>/dev/null || true`], { stdio: 'ignore' });
  return existsSync(path);
}

interface Peer {
  /** The server's processes (leasehold: its server and its Redis), read for CPU and RSS. */
  pids(): number[];
  target: string;
  stop(): Promise<void>;
}

async function startEtcd(): Promise<Peer> {
  const [client, peer] = [await freePort(), await freePort()];
  const dir = tempDir('etcd');
  const log = join(dir, 'etcd.log');
  const url = `http://127.0.0.1:${client}`;
  const purl = `http://127.0.0.1:${peer}`;
  const child = track(
    spawn('etcd', [
      '--name', 'peers', '--data-dir', join(dir, 'data'),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', purl, '--initial-advertise-peer-urls', purl, '--initial-cluster', `peers=${purl}`,
      '--logger', 'zap', '--log-level', 'warn', '--log-outputs', log,
    ], { stdio: 'ignore' }),
  );
  await waitUntil('etcd', async () => (await fetch(`${url}/health`)).ok, child, log);
  return { pids: () => [child.pid!], target: url, stop: () => kill(child) };
}

/** ZooKeeper's standalone server from Debian's jar, a tick of 500 ms so that sessions may be
 * as short as 1 s (the failover row's TTL is 2 s), and the heap of zkServer.sh's default. */
async function startZooKeeper(): Promise<Peer> {
  const port = await freePort();
  const dir = tempDir('zk');
  const cfg = join(dir, 'zoo.cfg');
  const log = join(dir, 'zookeeper.log');
  writeFileSync(cfg, [
    'tickTime=500', 'minSessionTimeout=1000', 'maxSessionTimeout=120000', `dataDir=${join(dir, 'data')}`,
    `clientPort=${port}`, 'clientPortAddress=127.0.0.1', 'admin.enableServer=false', 'maxClientCnxns=0',
    '4lw.commands.whitelist=srvr,ruok', '',
  ].join('\n'));
  const fd = openSync(log, 'w');
  const child = track(
    spawn('java', ['-Xmx1000m', '-cp', '/usr/share/java/zookeeper.jar', 'org.apache.zookeeper.server.ZooKeeperServerMain', cfg], {
      stdio: ['ignore', fd, fd],
    }),
  );
  await waitUntil('ZooKeeper', async () => (await fourLetters(port, 'srvr')).includes('Mode:'), child, log);
  return { pids: () => [child.pid!], target: `127.0.0.1:${port}`, stop: () => kill(child) };
}

function fourLetters(port: number, word: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = connect(port, '127.0.0.1', () => s.end(word));
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

// ---------------------------------------------------------------------------------------
// /proc readings.

function cpuTicks(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    t += Number(f[11]) + Number(f[12]);
  }
  return t;
}

function rssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m![1]) * 1024;
}

// ---------------------------------------------------------------------------------------
// The load generator.

interface Result {
  ops: number;
  totalOps: number;
  rps: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  n: number;
  samples?: number[];
  /** Server CPU per operation (µs), over the whole run. */
  cpuUs?: number;
}

const BIN = join(tempDir('bin'), 'peersbench');

function buildTool(): void {
  execFileSync('go', ['build', '-o', BIN, '.'], { cwd: join(ROOT, 'tools/peersbench'), stdio: ['ignore', 'inherit', 'inherit'] });
}

let runId = 0;
async function measure(system: string, row: string, target: string, pids: number[], args: string[] = []): Promise<Result> {
  const before = cpuTicks(pids);
  const child = track(
    spawn(BIN, ['-system', system, '-row', row, '-target', target, '-prefix', `pb${process.pid}r${runId++}`, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`peersbench ${system} ${row} exited with ${code}`);
  const res = JSON.parse(out) as Result;
  if (res.errors > 0) throw new Error(`peersbench ${system} ${row}: ${res.errors} errors`);
  if (res.totalOps) res.cpuUs = (((cpuTicks(pids) - before) / CLK_TCK) * 1e6) / res.totalOps;
  return res;
}

/** Holds 10,000 leases while the servers' RSS is read; answers the growth of each pid. */
async function leasesGrowth(system: string, target: string, pids: number[]): Promise<number[]> {
  const before = pids.map(rssBytes);
  const child = track(
    spawn(BIN, ['-system', system, '-row', 'leases', '-n', '10000', '-target', target, '-prefix', `pb${process.pid}l${runId++}`], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => l === 'ready' && resolve());
    child.once('exit', (c) => reject(new Error(`peersbench ${system} leases exited with ${c}`)));
  });
  await new Promise((r) => setTimeout(r, 1000));
  const after = pids.map(rssBytes);
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  return after.map((a, i) => a - before[i]);
}

// ---------------------------------------------------------------------------------------
// The run.

interface Variant {
  column: 'leasehold' | 'etcd' | 'zk';
  label: string;
  system: string;
}
const THROUGHPUT: Record<'read' | 'renew' | 'renew-stream' | 'renew-clusters', Variant[]> = {
  read: [
    { column: 'leasehold', label: 'GET', system: 'leasehold' },
    { column: 'etcd', label: 'gRPC Range', system: 'etcd' },
    { column: 'etcd', label: 'HTTP gateway', system: 'etcd-http' },
    { column: 'zk', label: 'getData', system: 'zk' },
  ],
  renew: [
    { column: 'leasehold', label: 'HTTP renew', system: 'leasehold' },
    { column: 'etcd', label: 'gRPC LeaseKeepAlive streams', system: 'etcd' },
    { column: 'etcd', label: 'HTTP keepalive', system: 'etcd-http' },
    { column: 'zk', label: 'exists on its own znode', system: 'zk' },
  ],
  // Its peers are the renewal row's (one stream or connection per session there too).
  'renew-stream': [{ column: 'leasehold', label: 'renewal stream, a websocket per session', system: 'leasehold' }],
  'renew-clusters': [{ column: 'leasehold', label: 'HTTP renew', system: 'leasehold' }],
};
const LATENCY: Record<'campaign' | 'push' | 'failover', Variant[]> = {
  campaign: [
    { column: 'leasehold', label: 'campaign', system: 'leasehold' },
    { column: 'etcd', label: 'grant + txn create', system: 'etcd' },
    { column: 'zk', label: 'ephemeral create', system: 'zk' },
  ],
  push: [
    { column: 'leasehold', label: 'websocket watch', system: 'leasehold' },
    { column: 'etcd', label: 'Watch', system: 'etcd' },
    { column: 'zk', label: 'exists watch', system: 'zk' },
  ],
  failover: [
    { column: 'leasehold', label: 'SDK-like contender', system: 'leasehold' },
    { column: 'etcd', label: 'concurrency.Election', system: 'etcd' },
    { column: 'zk', label: 'election recipe', system: 'zk' },
  ],
};

const VARIANTS: Record<string, Variant[]> = { ...THROUGHPUT, ...LATENCY };

const started = Date.now();
if (spawnSync('go', ['version']).status !== 0) {
  console.error('bench:peers needs Go (for tools/peersbench): not found');
  process.exit(2);
}
buildTool();
const env = await BenchEnv.start({ quick });
const hasEtcd = ensureInstalled('etcd-server', '/usr/bin/etcd', 'etcd');
const hasZk = ensureInstalled('zookeeper', '/usr/share/java/zookeeper.jar', 'zookeeper');
let peers: Partial<Record<Variant['column'], Peer>> = {};

/** A fresh server of each side: leasehold's on the run's Redis. */
async function startPeers(): Promise<Partial<Record<Variant['column'], Peer>>> {
  // The +10,000 leases row campaigns 10,000 job managers in one cluster, above the default
  // per-cluster quota (QUOTA_JOB_MANAGERS, 1000).
  const lh = await env.server({ QUOTA_JOB_MANAGERS: '20000' });
  const set: Partial<Record<Variant['column'], Peer>> = {
    leasehold: { pids: () => [lh.pid!, env.redis.child!.pid!], target: lh.url, stop: () => env.stopServer(lh) },
  };
  peers = set; // stopped at the end even if a start below fails
  if (hasEtcd) set.etcd = await startEtcd();
  if (hasZk) set.zk = await startZooKeeper();
  await new Promise((r) => setTimeout(r, 2000)); // settled before the idle reading
  return set;
}

try {
  // Memory first, on servers of its own that no load has grown yet; the leases are then
  // dropped with those servers (and Redis flushed) before the load rounds start.
  const idle: Record<string, number[]> = {};
  const growth: Record<string, number[]> = {};
  if (only.includes('memory')) {
    const fresh = await startPeers();
    for (const c of Object.keys(fresh) as Variant['column'][]) {
      idle[c] = fresh[c]!.pids().map(rssBytes);
      growth[c] = await leasesGrowth(c, fresh[c]!.target, fresh[c]!.pids());
    }
    await Promise.all(Object.values(fresh).map((p) => p!.stop()));
    execFileSync('redis-cli', ['-p', String(env.redis.port), 'flushall']);
  }
  peers = await startPeers();

  const results = new Map<string, Result[]>(); // by row/system
  const add = (key: string, r: Result) => (results.get(key) ?? results.set(key, []).get(key)!).push(r);
  for (let round = 0; round < roundCount; round++) {
    console.error(`round ${round + 1} of ${roundCount}…`);
    for (const row of only) {
      const variants = VARIANTS[row];
      if (!variants) continue;
      const present = variants.filter((v) => peers[v.column]);
      // The order rotates from round to round: no side always runs first or last.
      const order = present.map((_, i) => present[(i + round) % present.length]);
      for (const v of order) {
        const p = peers[v.column]!;
        const args =
          row in THROUGHPUT ? ['-duration', `${durationS}s`] : row === 'failover' ? ['-samples', String(FAILOVERS_PER_ROUND), '-ttl', '2s'] : ['-samples', String(latencySamples)];
        const r = await measure(v.system, row, p.target, p.pids(), args);
        add(`${row}/${v.system}`, r);
      }
    }
  }

  // -------------------------------------------------------------------------------------
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const k = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));
  const msf = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
  const mibf = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const lines: string[][] = [];
  const cell = (row: string, column: Variant['column'], fmt: (v: Variant, rs: Result[]) => string) => {
    const vs = VARIANTS[row].filter((v) => v.column === column && results.has(`${row}/${v.system}`));
    return vs.map((v) => fmt(v, results.get(`${row}/${v.system}`)!)).join('; ') || (peers[column] ? '' : 'skipped');
  };
  const best = (row: string, column: Variant['column'], score: (rs: Result[]) => number, higher: boolean) => {
    const vs = VARIANTS[row].filter((v) => v.column === column && results.has(`${row}/${v.system}`));
    const xs = vs.map((v) => score(results.get(`${row}/${v.system}`)!));
    return xs.length ? (higher ? Math.max(...xs) : Math.min(...xs)) : undefined;
  };
  const ratioOf = (row: string, score: (rs: Result[]) => number, higher: boolean) => {
    const mine = best(row, 'leasehold', score, higher);
    const theirs = (['etcd', 'zk'] as const).map((c) => best(row, c, score, higher)).filter((x): x is number => x !== undefined);
    if (mine === undefined || !theirs.length) return '';
    const b = higher ? Math.max(...theirs) : Math.min(...theirs);
    return `${(higher ? mine / b : b / mine).toFixed(2)}×`;
  };
  const rps = (rs: Result[]) => med(rs.map((r) => r.rps));
  const tp = (v: Variant, rs: Result[]) => `${k(rps(rs))}/s, ${med(rs.map((r) => r.cpuUs ?? 0)).toFixed(0)} µs CPU/op (${v.label})`;
  const p50 = (rs: Result[]) => med(rs.map((r) => r.p50Ms));
  const p99 = (rs: Result[]) => med(rs.map((r) => r.p99Ms));
  const lat = (v: Variant, rs: Result[]) => `${msf(p50(rs))} / ${msf(p99(rs))} ms (${v.label})`;
  const cols = ['leasehold', 'etcd', 'zk'] as const;
  const push = (name: string, row: string, fmt: typeof tp, ratio: string) => lines.push([name, ...cols.map((c) => cell(row, c, fmt)), ratio]);

  if (results.has('read/leasehold')) push('leader read, 50 sessions', 'read', tp, ratioOf('read', rps, true));
  if (results.has('renew/leasehold')) push('renewal, 50 contenders of one cluster', 'renew', tp, ratioOf('renew', rps, true));
  // Rows of leasehold alone, against the renewal row's best peer.
  const againstRenewal = (row: 'renew-stream' | 'renew-clusters', name: string) => {
    if (!results.has(`${row}/leasehold`)) return;
    const mine = rps(results.get(`${row}/leasehold`)!);
    const theirs = (['etcd', 'zk'] as const).map((c) => best('renew', c, rps, true)).filter((x): x is number => x !== undefined);
    lines.push([name, cell(row, 'leasehold', tp), 'as above', 'as above', theirs.length ? `${(mine / Math.max(...theirs)).toFixed(2)}×` : '']);
  };
  againstRenewal('renew-stream', 'renewal over the stream, 50 contenders of one cluster');
  againstRenewal('renew-clusters', 'renewal, 50 clusters');
  if (results.has('campaign/leasehold')) push('campaign p50 / p99', 'campaign', lat, `${ratioOf('campaign', p50, false)} / ${ratioOf('campaign', p99, false)}`);
  if (results.has('push/leasehold')) push('push p50 / p99', 'push', lat, `${ratioOf('push', p50, false)} / ${ratioOf('push', p99, false)}`);
  if (results.has('failover/leasehold')) {
    // Every failover is one sample: the median and the worst of all of them.
    const all = (rs: Result[]) => rs.flatMap((r) => r.samples ?? []);
    const fo = (_v: Variant, rs: Result[]) => `${(med(all(rs)) / 1000).toFixed(2)} s, worst ${(Math.max(...all(rs)) / 1000).toFixed(2)} s`;
    push('failover, kill -9, TTL 2 s (median, worst)', 'failover', fo, ratioOf('failover', (rs) => med(all(rs)), false));
  }
  if (only.includes('memory')) {
    const mem = (c: Variant['column']) => {
      if (!peers[c]) return 'skipped';
      const extra = c === 'leasehold' ? ` (Redis: ${mibf(idle[c][1])} / +${mibf(growth[c][1])})` : '';
      return `${mibf(idle[c][0])} / +${mibf(growth[c][0])}${extra}`;
    };
    const peerIdle = (['etcd', 'zk'] as const).filter((c) => peers[c]).map((c) => idle[c][0]);
    lines.push(['server RSS idle / +10,000 leases', mem('leasehold'), mem('etcd'), mem('zk'), peerIdle.length ? `${(Math.min(...peerIdle) / idle.leasehold[0]).toFixed(2)}× idle` : '']);
  }

  const etcdVersion = peers.etcd ? execFileSync('etcd', ['--version']).toString().match(/etcd Version: (\S+)/)?.[1] : 'skipped';
  const zkVersion = peers.zk ? execFileSync('dpkg-query', ['-W', '-f=${Version}', 'zookeeper']).toString() : 'skipped';
  console.log(
    `\nleasehold beside its peers${quick ? ' (--quick)' : ''}: ${roundCount} round(s), ${cpus().length} × ${cpus()[0]?.model.trim()}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, load ${spawnSync('cat', ['/proc/loadavg']).stdout.toString().split(' ').slice(0, 3).join(' ')}; ` +
      `etcd ${etcdVersion}, ZooKeeper ${zkVersion}; ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  console.log('| row | leasehold | etcd | ZooKeeper | leasehold vs best peer (> 1: ahead) |');
  console.log('|---|---|---|---|---|');
  for (const l of lines) console.log(`| ${l.join(' | ')} |`);
} finally {
  await Promise.allSettled(Object.values(peers).map((p) => p!.stop()));
  await env.close();
}
process.exit(0);
