/**
 * npm run chaos: a bounded run that injects faults into real processes (Redis, leasehold
 * replicas, contenders, watchers; all on 127.0.0.1), then checks leasehold's guarantees on
 * the recorded history.
 *
 *   node --import tsx chaos/run.ts [--topology single|sentinel|restore|logcut|cluster] [--seed N] [--duration 2m]
 *   node --import tsx chaos/run.ts --replay chaos-history-N.json
 *
 * `--topology` picks the Redis setups and their faults (cluster.ts, faults.ts). Prints one
 * line per invariant and `faults injected N, operations M, violations V`; exits 1 on a
 * violation, and then writes the whole history to chaos-history-[<topology>-]<seed>.json.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs as parseArgv } from 'node:util';
import { check, formatReport } from './check.js';
import { MAX_RETAINED, Topology } from './cluster.js';
import { QUIESCE_MS, runFaults } from './faults.js';
import { durabilityOf, loadHistory, saveHistory, sharedNow, TOPOLOGIES, type History, type Holder, type SetupInfo, type SetupName, type TopologyName } from './history.js';

interface Args {
  topology: TopologyName;
  seed: number;
  durationMs: number;
  replay?: string;
}

function parseArgs(argv: string[]): Args {
  const { values } = parseArgv({
    args: argv,
    options: {
      topology: { type: 'string', default: 'single' },
      seed: { type: 'string' },
      duration: { type: 'string', default: '2m' },
      replay: { type: 'string' },
    },
  });
  const topology = values.topology as TopologyName;
  if (!TOPOLOGIES.includes(topology)) throw new Error(`--topology takes ${TOPOLOGIES.join(', ')}; got ${values.topology}`);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed takes a non-negative integer');
  return { topology, seed, durationMs: parseDuration(values.duration), replay: values.replay };
}

/** How a setup's Redis runs, for the log. */
function describe(info: SetupInfo, port: number, topology: TopologyName): string {
  if (topology === 'cluster') return `the shard of primary :${port} of a Redis Cluster of three primaries, each with a replica (one replica acknowledges every write)`;
  switch (durabilityOf(info)) {
    case 'aof':
      return `redis :${port} (AOF, appendfsync always${info.changeLogSize ? `; change log of ${info.changeLogSize}` : ''})`;
    case 'none':
      return `redis :${port} (no persistence)`;
    case 'replicated':
      return `redis primary :${port}, a replica and three Sentinels (one replica acknowledges every write)`;
    case 'restored':
      return `redis :${port} (no persistence; restarted from older snapshots)`;
  }
}

function parseDuration(text: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text ?? '');
  if (!m) throw new Error(`--duration takes 500ms, 20s, 2m or seconds; got ${text}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's']!;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function retry<T>(what: string, fn: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(300);
    }
  }
}

function report(history: History, path: string | null, topo?: Topology): number {
  const r = check(history);
  for (const line of formatReport(r)) console.log(line);
  if (r.violations > 0 && path) {
    saveHistory(path, history);
    console.log(`history written to ${path} (re-check: node --import tsx chaos/run.ts --replay ${path})`);
    if (topo) {
      // What the servers logged (warnings and errors; the last 20 kB of each) says why.
      const logs = path.replace(/\.json$/, '.servers.log');
      writeFileSync(logs, topo.servers.map((s) => `==== ${s.name} :${s.process.port}\n${s.process.output}\n`).join(''));
      console.log(`servers' logs written to ${logs}`);
    }
  }
  return r.violations > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.replay) return report(loadHistory(args.replay), null);

  const seconds = `${args.durationMs / 1000}s`;
  const lane = args.topology === 'single' ? '' : ` --topology ${args.topology}`;
  console.log(`chaos: topology ${args.topology}, seed ${args.seed}, duration ${seconds} (again: node --import tsx chaos/run.ts${lane} --seed ${args.seed} --duration ${seconds})`);
  const t0 = sharedNow();
  const log = (line: string) => console.log(`[${((sharedNow() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  const topo = new Topology(args.topology);
  topo.onSentinelEvent = log;
  let interrupted = false;
  const stopOnSignal = (sig: NodeJS.Signals) => {
    interrupted = true;
    console.log(`${sig}: stopping everything`);
    void topo.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  process.once('exit', () => void topo.stop());
  const path = resolve(`chaos-history-${args.topology === 'single' ? '' : `${args.topology}-`}${args.seed}.json`);
  const history = (): History => ({
    version: 1,
    topology: args.topology,
    seed: args.seed,
    durationMs: args.durationMs,
    maxRetained: MAX_RETAINED,
    setups: Object.fromEntries([...topo.setups].map(([n, s]) => [n, s.info])) as History['setups'],
    records: topo.records,
  });
  try {
    await topo.launch();
    for (const [name, s] of topo.setups) {
      log(`${name}: cluster ${s.info.clusterId}, ${describe(s.info, s.redis.port, args.topology)}, servers ${s.info.servers.map((n) => `${n} :${topo.serverNode(n).process.port}${topo.serverNode(n).proxy ? ' via link proxy' : ''}`).join(', ')}`);
    }
    await waitForLeaders(topo);
    log('every component has a leader: faults start');
    const faults = await runFaults(topo, args.seed, args.durationMs, log);
    log(`${faults} faults injected; all healed, quiescing ${QUIESCE_MS} ms`);
    await sleep(QUIESCE_MS);
    if (!(await topo.idleContenders(20_000))) log('some contenders did not go idle in 20 s');
    await settle(topo);
    for (const setup of topo.setups.keys()) await readBack(topo, setup);
    log('read back; checking');
    await topo.stop();
    if (topo.badLines > 0) log(`${topo.badLines} lines of children were not JSON (cut by a kill?) and were dropped`);
    return report(history(), path, topo);
  } catch (err) {
    if (interrupted) return 130;
    console.error(`chaos run failed: ${(err as Error).stack ?? err}`);
    saveHistory(path, history());
    console.error(`history so far written to ${path}`);
    return 2;
  } finally {
    await topo.stop();
  }
}

/** Until every component has a leader (the run starts from a steady state). */
async function waitForLeaders(topo: Topology): Promise<void> {
  const deadline = sharedNow() + 60_000;
  for (;;) {
    const missing = [...topo.setups.values()].flatMap((s) => s.info.components.filter((c) => !topo.leaderOf(s.name, c)).map((c) => `${s.name}/${c}`));
    if (missing.length === 0) return;
    if (sharedNow() > deadline) throw new Error(`no leader after 60 s for ${missing.join(', ')}`);
    await sleep(100);
  }
}

/**
 * Waits (up to 15 s) until every replica of a setup answers the same leaders and every
 * watcher of it knows them, then records what each replica answers.
 */
async function settle(topo: Topology): Promise<void> {
  const deadline = sharedNow() + 15_000;
  // Every server of every setup (a server of the cluster topology serves three).
  const pairs = [...topo.setups.values()].flatMap((s) => s.info.servers.map((name) => ({ setup: s.name, s: topo.serverNode(name) })));
  for (;;) {
    const answers = await Promise.all(pairs.map(async ({ setup, s }) => ({ setup, s, a: await topo.leadersOf(s, setup).catch(() => null) })));
    const agreed = answers.every(({ setup, s, a }) => a && agree(topo, setup, s.name, a.leaders));
    if (agreed || sharedNow() > deadline) {
      for (const { setup, s, a } of answers) if (a) topo.push({ k: 'final', setup, server: s.name, t: sharedNow(), index: a.index, leaders: a.leaders });
      return;
    }
    await sleep(200);
  }
}

/** Whether the watcher of `setup` knows, from `server`, exactly `leaders`. */
function agree(topo: Topology, setup: SetupName, server: string, leaders: Record<string, Holder | null>): boolean {
  const known = topo.watched.get(`${setup}:watcher@${server}`);
  if (!known) return false;
  for (const c of new Set([...known.keys(), ...Object.keys(leaders)])) {
    if ((known.get(c) ?? null) !== (leaders[c]?.s ?? null)) return false;
  }
  return true;
}

/** Records what a setup's stores, change log and replicas' health say at the end. */
async function readBack(topo: Topology, setup: SetupName): Promise<void> {
  const s = topo.setup(setup);
  const node = topo.serverNode(s.info.servers[0]);
  const cluster = topo.client(node).cluster(s.info.clusterId);
  const jobResults = await retry('job results', async () => (await cluster.jobResults('override').list()).map((e) => e.jobId));
  const planStore = cluster.executionPlans('override');
  const ids = await retry('plan ids', () => planStore.jobIds());
  const plans: Record<string, string> = {};
  for (let i = 0; i < ids.length; i += 16) {
    await Promise.all(
      ids.slice(i, i + 16).map(async (id) => {
        const bytes = await retry(`plan ${id}`, () => planStore.get(id));
        if (bytes) plans[id] = bytes.toString();
      }),
    );
  }
  const checkpoints: Record<string, number[]> = {};
  const counters: Record<string, number> = {};
  for (const c of s.info.components.filter((x) => x.startsWith('jobmanager/'))) {
    const jobId = c.slice('jobmanager/'.length);
    checkpoints[jobId] = await retry('checkpoints', async () => (await cluster.checkpoints(jobId, 'override').list()).map((x) => x.checkpointId));
    counters[jobId] = await retry('counter', () => cluster.checkpointIdCounter(jobId, 'override').current());
  }
  topo.push({ k: 'readback', setup, jobResults, plans, checkpoints, counters });

  const entries = await retry('change log', () =>
    topo.redisCommand(setup, (r) => r.xrange(`lh:{${s.info.clusterId}}:log`, '-', '+')),
  );
  topo.push({
    k: 'log',
    setup,
    entries: entries.map(([id, fields]) => [Number(id.split('-')[0]), JSON.parse(fields[fields.indexOf('d') + 1]).c as string]),
  });

  for (const name of s.info.servers) {
    const url = topo.serverNode(name).process.url;
    const health = await retry(`readyz of ${name}`, async () => (await (await fetch(`${url}/readyz`)).json()) as { dataLoss: { count: number } });
    const metrics = await retry(`metrics of ${name}`, async () => (await fetch(`${url}/metrics`)).text());
    const m = /^leasehold_redis_data_loss_total (\d+)/m.exec(metrics);
    topo.push({ k: 'health', setup, server: name, dataLossCount: health.dataLoss.count, dataLossMetric: m ? Number(m[1]) : null });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error((err as Error).message);
    process.exit(2);
  },
);
