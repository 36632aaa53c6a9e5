/**
 * A Redis failover through Sentinel, end to end: a primary, one replica and three Sentinels
 * (quorum 2) as processes, a leasehold server that finds the primary through them, and
 * contender A holding a component with its grants and renewals acknowledged by the replica.
 * A stops renewing and the primary is killed with -9 at the same moment (A died with the
 * primary's host); contender B campaigns for the component in a loop. Measured from the kill
 * until B's first `granted: true`, with the times of Sentinel's own steps (its events on
 * pub/sub) beside it, to show where the time goes (bench/RESULTS.md).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ServerProcess } from '../test/support/app.js';
import { replicatedRedis, stopReplicatedRedis, type BenchEnv } from './env.js';
import { post } from './post.js';
import type { Row } from './stats.js';

/** Sentinel's failover-timeout: bounds a failover that stalls; a first failover does not
 * wait for it. */
const FAILOVER_TIMEOUT_MS = 3000;
/** Between two of B's campaigns: the resolution of the figure. */
const CAMPAIGN_EVERY_MS = 50;

/** The Sentinel events whose first occurrence is kept, in the order a failover goes. */
const STEPS = ['+sdown', '+odown', '+elected-leader', '+promoted-slave', '+switch-master'] as const;
type Step = (typeof STEPS)[number];

interface Failover {
  /** From the kill until B's first grant (ms); null: none before the deadline. */
  grantMs: number | null;
  /** From the kill until the first Sentinel announced each step (ms). From +promoted-slave
   * on, the Sentinel leading the failover names the new primary to whoever asks. */
  steps: Partial<Record<Step, number>>;
  /** A's lease was over by then, at the latest (ms after the kill). */
  leaseOverMs: number;
  /** What B's campaigns were answered, counted: `503 RedisUnavailable`, `not granted`, … */
  answers: Map<string, number>;
}

export async function sentinelBenches(env: BenchEnv): Promise<Row[]> {
  const downAfterMs = env.downAfterMs;
  // Shorter than Sentinel's detection, so that A's lease is not what B waits for.
  const ttlMs = Math.max(1000, Math.min(2000, Math.floor(downAfterMs / 2)));
  const runs: Failover[] = [];
  for (let i = 0; i < (env.quick ? 1 : 3); i++) runs.push(await failoverOnce(env, downAfterMs, ttlMs));

  const s = (x: number) => (x / 1000).toFixed(2);
  const mid = <T>(xs: T[], key: (x: T) => number) => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)];
  const granted = runs.filter((r) => r.grantMs !== null);
  const median = granted.length ? mid(granted, (r) => r.grantMs!) : null;
  const steps = (r: Failover) =>
    STEPS.filter((k) => r.steps[k] !== undefined)
      .map((k) => `${k.slice(1)} ${s(r.steps[k]!)}`)
      .join(', ');
  const answers = (r: Failover) => [...r.answers].map(([k, n]) => `${k} ×${n}`).join(', ');
  const switched = runs.filter((r) => r.steps['+switch-master'] !== undefined);
  const switchMedian = switched.length ? mid(switched, (r) => r.steps['+switch-master']!) : null;
  const setup = `down-after ${downAfterMs} ms, quorum 2`;
  return [
    {
      name: `Sentinel: kill -9 of the primary → +switch-master, ${setup}`,
      figure: switchMedian
        ? `median ${s(switchMedian.steps['+switch-master']!)} s (n=${runs.length}: ${runs.map((r) => (r.steps['+switch-master'] === undefined ? 'none' : s(r.steps['+switch-master']))).join(', ')} s); median run, s after the kill: ${steps(switchMedian)}`
        : `no switch-master (n=${runs.length})`,
    },
    {
      name: `Sentinel failover: kill -9 of the primary → first grant, ${setup}, ttl ${ttlMs / 1000} s`,
      figure: median
        ? `median ${s(median.grantMs!)} s (n=${runs.length}: ${runs.map((r) => (r.grantMs === null ? 'none' : s(r.grantMs))).join(', ')} s); ` +
          `after +promoted-slave: ${runs.map((r) => (r.grantMs === null || r.steps['+promoted-slave'] === undefined ? '?' : s(r.grantMs - r.steps['+promoted-slave']))).join(', ')} s; ` +
          `median run: A's lease over by ${s(median.leaseOverMs)} s, B's answers before: ${answers(median)}`
        : `no grant (n=${runs.length}; B's answers: ${answers(runs[0])})`,
      budget: 'a grant, every run',
      pass: granted.length === runs.length,
    },
  ];
}

async function failoverOnce(env: BenchEnv, downAfterMs: number, ttlMs: number): Promise<Failover> {
  const topology = await replicatedRedis({ replicas: 1, sentinels: 3, downAfterMs, failoverTimeoutMs: FAILOVER_TIMEOUT_MS });
  const watchers: Redis[] = [];
  let server: ServerProcess | null = null;
  try {
    // `auto`: one replica must hold each write while the primary has one. The new primary
    // has none (the old one stays dead), and with a fixed 1 nothing would be granted.
    server = await env.server({ ...topology.env, REDIS_MIN_REPLICAS_ACK: 'auto' });
    await waitForReplica(server.url);
    const lp = `${server.url}/v1/clusters/bench-sentinel-${randomBytes(4).toString('hex')}/leaders/dispatcher`;

    const a = await post(`${lp}/campaign`, { contenderId: 'A', ttlMs });
    if (a.status !== 200 || !a.body.granted) throw new Error(`A's campaign answered ${a.status}: ${JSON.stringify(a.body)}`);
    let renewedAt = performance.now();
    for (let i = 0; i < 3; i++) {
      await sleep(ttlMs / 3);
      const r = await post(`${lp}/renew`, { contenderId: 'A', sessionId: a.body.leader.sessionId, ttlMs });
      if (r.status !== 200) throw new Error(`A's renewal answered ${r.status}: ${JSON.stringify(r.body)}`);
      renewedAt = performance.now();
    }

    const steps: Partial<Record<Step, number>> = {};
    let killedAt = Infinity;
    for (const sentinel of topology.sentinels) {
      const w = new Redis({ host: '127.0.0.1', port: sentinel.port, retryStrategy: () => null, lazyConnect: true });
      w.on('error', () => {});
      watchers.push(w);
      w.on('pmessage', (_pattern: string, channel: string, message: string) => {
        const step = channel as Step;
        // Only the primary's own downs: a Sentinel also marks replicas and Sentinels down.
        const ofPrimary = step === '+sdown' || step === '+odown' ? message.startsWith('master ') : true;
        if (STEPS.includes(step) && ofPrimary && steps[step] === undefined) {
          steps[step] = performance.now() - killedAt;
        }
      });
      await w.connect();
      await w.psubscribe('*');
    }

    const primary = await topology.primary();
    killedAt = performance.now();
    await primary.kill();

    const answers = new Map<string, number>();
    const count = (k: string) => answers.set(k, (answers.get(k) ?? 0) + 1);
    let grantMs: number | null = null;
    for (const deadline = killedAt + downAfterMs + FAILOVER_TIMEOUT_MS + 20_000; performance.now() < deadline; await sleep(CAMPAIGN_EVERY_MS)) {
      try {
        const r = await post(`${lp}/campaign`, { contenderId: 'B', ttlMs }, 2000);
        if (r.status === 200 && r.body.granted) {
          grantMs = performance.now() - killedAt;
          break;
        }
        count(r.status === 200 ? 'not granted' : `${r.status} ${r.body?.error ?? ''}`.trim());
      } catch (err) {
        count(`no answer (${(err as Error).message})`);
      }
    }
    return { grantMs, steps, leaseOverMs: renewedAt + ttlMs - killedAt, answers };
  } finally {
    for (const w of watchers) w.disconnect();
    if (server) await env.stopServer(server);
    await stopReplicatedRedis(topology);
  }
}

/** The server sees the replica, so that A's grant and renewals wait for it (`auto`). */
async function waitForReplica(url: string): Promise<void> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(100)) {
    const ready = (await (await fetch(`${url}/readyz`)).json()) as { replicas?: { requiredForAck: number } };
    if (ready.replicas?.requiredForAck === 1) return;
  }
  throw new Error('the server never saw the replica');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
