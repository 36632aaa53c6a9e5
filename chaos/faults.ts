/**
 * The fault schedule of a run, drawn from its seed, in two lanes that run side by side:
 *   process  kill -9 of the process of a component's leading contender (a replacement
 *            starts, with the same contenderIds or new ones), or SIGSTOP of it past its
 *            lease, then SIGCONT;
 *   infra    one at a time, from a shuffled deck of every kind: kill -9 and restart of the
 *            AOF Redis and of the Redis without persistence, kill -9 and restart of a server
 *            replica (its websocket clients connected), CLIENT PAUSE, SIGSTOP/SIGCONT of
 *            redis-server, a slow link and a blackholed link between a server and Redis.
 * Every fault is healed before its lane draws the next; each is recorded with its times.
 * Which process a fault hits is decided when it fires (the leader of the moment).
 */
import { MAX_TTL_MS, READY_TIMEOUT_MS, ttlOf, type Topology, type Worker } from './cluster.js';
import { sharedNow, type SetupName } from './history.js';

/** A deterministic generator of numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const INFRA = ['kill-redis-aof', 'kill-redis-volatile', 'kill-server', 'client-pause', 'stop-redis', 'slow-link', 'blackhole-link'] as const;
type InfraKind = (typeof INFRA)[number];

interface Lane {
  topo: Topology;
  random: () => number;
  log: (line: string) => void;
  /** Faults injected so far (all lanes). */
  count: { n: number };
}

/** Runs both lanes until `durationMs` has passed and their last faults are healed;
 * answers how many faults were injected. */
export async function runFaults(topo: Topology, seed: number, durationMs: number, log: (line: string) => void): Promise<number> {
  const end = sharedNow() + durationMs;
  const count = { n: 0 };
  await Promise.all([
    processLane({ topo, random: rng(seed), log, count }, end),
    infraLane({ topo, random: rng(seed ^ 0x5eed), log, count }, end),
  ]);
  topo.healAll();
  return count.n;
}

/** `x` in [0, 1) scaled to [min, max]. */
const scale = (x: number, min: number, max: number) => Math.round(min + x * (max - min));

async function processLane(lane: Lane, end: number): Promise<void> {
  const { topo, random } = lane;
  const targets = [...topo.setups.values()].flatMap((s) => s.info.components.map((component) => ({ setup: s.name, component })));
  while (sharedNow() < end) {
    // Draws that do not depend on what happens, so a seed always draws the same numbers.
    const gap = scale(random(), 500, 2500);
    const kill = random() < 0.5;
    const first = Math.floor(random() * targets.length);
    const hold = 1.3 + random() * 1.2;
    const pause = scale(random(), 200, 1200);
    const sameId = random() < 0.5;
    await sleep(gap);
    if (sharedNow() >= end) break;
    let target: { setup: SetupName; component: string; w: Worker } | null = null;
    for (let i = 0; i < targets.length && !target; i++) {
      const t = targets[(first + i) % targets.length];
      const w = topo.leaderOf(t.setup, t.component);
      if (w) target = { ...t, w };
    }
    if (!target) continue;
    lane.count.n++;
    if (kill) await killLeader(lane, target.setup, target.component, target.w, pause, sameId);
    else await stopLeader(lane, target.setup, target.w, Math.round(ttlOf(target.component) * hold));
  }
}

async function killLeader(lane: Lane, setup: SetupName, component: string, w: Worker, pauseMs: number, sameId: boolean): Promise<void> {
  const { topo } = lane;
  const start = sharedNow();
  await topo.killWorker(w);
  const dead = sharedNow();
  await sleep(pauseMs);
  const next = topo.spawnContenders(setup, w.server, sameId ? w.contenders : {});
  const detail = `replaced by ${next.proc} (${sameId ? 'same' : 'new'} contenderId) after ${pauseMs} ms`;
  topo.push({ k: 'fault', kind: 'kill-leader', setup, target: w.proc, start, dead, end: sharedNow(), detail });
  lane.log(`kill -9 leader ${w.proc} of ${setup}/${component}; ${detail}`);
}

async function stopLeader(lane: Lane, setup: SetupName, w: Worker, holdMs: number): Promise<void> {
  const start = sharedNow();
  w.stopped = true;
  w.child.kill('SIGSTOP');
  await sleep(holdMs);
  if (w.alive) w.child.kill('SIGCONT');
  w.stopped = false;
  lane.topo.push({ k: 'fault', kind: 'stop-leader', setup, target: w.proc, start, end: sharedNow(), detail: `stopped ${holdMs} ms` });
  lane.log(`SIGSTOP leader ${w.proc} for ${holdMs} ms, then SIGCONT`);
}

async function infraLane(lane: Lane, end: number): Promise<void> {
  let deck: InfraKind[] = [];
  while (sharedNow() < end) {
    if (deck.length === 0) deck = shuffle([...INFRA], lane.random);
    const kind = deck.pop()!;
    const gap = scale(lane.random(), 800, 2000);
    const draws = [lane.random(), lane.random(), lane.random()];
    await sleep(gap);
    if (sharedNow() >= end) break;
    lane.count.n++;
    await infraFault(lane, kind, draws);
  }
}

/** `draws`: three numbers in [0, 1): how long, which target, and which setup. */
async function infraFault(lane: Lane, kind: InfraKind, [a, b, c]: number[]): Promise<void> {
  const { topo } = lane;
  const setup: SetupName = c < 0.5 ? 'aof' : 'volatile';
  const start = sharedNow();
  const record = (s: SetupName, target: string, detail: string, dead?: number) => {
    topo.push({ k: 'fault', kind, setup: s, target, start, ...(dead === undefined ? {} : { dead }), end: sharedNow(), detail });
    lane.log(`${kind} ${target}: ${detail}`);
  };
  switch (kind) {
    case 'kill-redis-aof':
    case 'kill-redis-volatile': {
      const s: SetupName = kind === 'kill-redis-aof' ? 'aof' : 'volatile';
      const redis = topo.setup(s).redis;
      const downMs = scale(a, 200, 1500);
      await redis.kill();
      const dead = sharedNow();
      await sleep(downMs);
      await redis.restart();
      return record(s, `redis-${s}`, `kill -9, down ${downMs} ms, restarted on port ${redis.port}${s === 'volatile' ? ' (data lost)' : ''}`, dead);
    }
    case 'kill-server': {
      // Only replicas of the AOF setup: those of the other must live through every loss of
      // its Redis, to be asked at the end whether they reported it.
      const servers = topo.servers.filter((s) => s.setup === 'aof');
      const node = servers[Math.floor(b * servers.length)];
      const downMs = scale(a, 200, 1500);
      await node.process.kill();
      const dead = sharedNow();
      await sleep(downMs);
      await node.process.launch(READY_TIMEOUT_MS);
      return record('aof', node.name, `kill -9, down ${downMs} ms, restarted on port ${node.process.port}`, dead);
    }
    case 'client-pause': {
      const ms = scale(a, 500, 2500);
      await topo.redisCommand(setup, (r) => r.call('CLIENT', 'PAUSE', String(ms), 'ALL'));
      await sleep(ms + 50);
      return record(setup, `redis-${setup}`, `CLIENT PAUSE ${ms} ALL`);
    }
    case 'stop-redis': {
      const ms = scale(a, 500, 2500);
      const redis = topo.setup(setup).redis;
      redis.pause();
      await sleep(ms);
      redis.resume();
      return record(setup, `redis-${setup}`, `SIGSTOP for ${ms} ms, then SIGCONT`);
    }
    case 'slow-link':
    case 'blackhole-link': {
      const proxied = topo.servers.filter((s) => s.proxy);
      const node = proxied[Math.floor(b * proxied.length)];
      const proxy = node.proxy!;
      if (kind === 'slow-link') {
        const delay = scale(a, 30, 400);
        const ms = scale(c, 2000, 5000);
        proxy.setDelay(delay);
        await sleep(ms);
        proxy.setDelay(0);
        return record('aof', `${node.name}<->redis-aof`, `${delay} ms each way for ${ms} ms, then healed`);
      }
      const ms = scale(a, 1000, 3500);
      proxy.blackhole();
      await sleep(ms);
      proxy.restore();
      return record('aof', `${node.name}<->redis-aof`, `blackholed for ${ms} ms, then healed`);
    }
  }
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/** How long to let things settle after the last fault: a few TTLs. */
export const QUIESCE_MS = 2 * MAX_TTL_MS + 1000;
