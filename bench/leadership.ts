/**
 * Issue 22's figure: what renewing costs a Flink process that leads a dispatcher, a resource
 * manager, a REST endpoint and 100 job managers, as one leadership with the 103 components
 * published under it, against the same process holding 103 separate leases. Both renew every
 * TTL/3 (as the SDK does); a renewal round is one `leadership/renew` against 103
 * `leaders/{component}/renew` sent together over kept-alive connections. Figures: renewals a
 * second at the default TTL, and the work of a TTL's rounds (wall time and the server's CPU),
 * with the ratio separate ÷ leadership, measured in the same run.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { BenchEnv } from './env.js';
import { ok } from './post.js';
import { summarize, type Row } from './stats.js';

const TTL_MS = 10_000;
const ROUNDS_PER_TTL = 3;
const JOBS = 100;
const COMPONENTS = ['resourcemanager', 'dispatcher', 'rest', ...Array.from({ length: JOBS }, () => `jobmanager/${randomBytes(16).toString('hex')}`)];

/** The CPU time (user + system, ms) a process has used, from /proc (Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in ticks of 1/100 s
}

export async function leadershipBenches(env: BenchEnv): Promise<Row[]> {
  const rounds = env.quick ? 30 : 300;
  const server = await env.server();
  try {
    const base = `${server.url}/v1/clusters`;
    const one = `${base}/bench-leadership-${randomBytes(4).toString('hex')}`;
    const many = `${base}/bench-leases-${randomBytes(4).toString('hex')}`;

    const { leadership } = await ok(`${one}/leadership/campaign`, { contenderId: 'process', ttlMs: TTL_MS });
    for (const component of COMPONENTS) await ok(`${one}/leadership/publish`, { sessionId: leadership.sessionId, component, address: `akka://${component}` });
    const sessions = new Map<string, string>();
    for (const component of COMPONENTS) {
      sessions.set(component, (await ok(`${many}/leaders/${component}/campaign`, { contenderId: 'process', ttlMs: TTL_MS })).leader.sessionId);
    }

    const leadershipRound = () => ok(`${one}/leadership/renew`, { contenderId: 'process', sessionId: leadership.sessionId, ttlMs: TTL_MS });
    const separateRound = () =>
      Promise.all(COMPONENTS.map((c) => ok(`${many}/leaders/${c}/renew`, { contenderId: 'process', sessionId: sessions.get(c), ttlMs: TTL_MS })));

    // Alternating, so that both see the same machine; a warm-up round of each first.
    await leadershipRound();
    await separateRound();
    const wall = { one: [] as number[], many: [] as number[] };
    const cpu = { one: 0, many: 0 };
    const pid = server.pid!;
    for (let i = 0; i < rounds; i++) {
      for (const [kind, round] of [['one', leadershipRound], ['many', separateRound]] as const) {
        const c0 = cpuMs(pid);
        const t0 = performance.now();
        await round();
        wall[kind].push(performance.now() - t0);
        cpu[kind] += cpuMs(pid) - c0;
      }
    }
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    // The work of one TTL: ROUNDS_PER_TTL rounds, from the mean round.
    const perTtl = (xs: number[]) => (sum(xs) / xs.length) * ROUNDS_PER_TTL;
    const cpuPerTtl = (total: number) => (total / rounds) * ROUNDS_PER_TTL;
    const one1 = summarize(wall.one);
    const many1 = summarize(wall.many);
    const perSecond = (requests: number) => ((requests * ROUNDS_PER_TTL) / (TTL_MS / 1000)).toFixed(1);
    const fmt = (x: number) => `${x.toFixed(1)} ms`;
    const baseline = `${perSecond(COMPONENTS.length)} renewals/s, ${fmt(perTtl(wall.many))} wall + ${fmt(cpuPerTtl(cpu.many))} server CPU per TTL`;
    return [
      {
        name: `renewals: 103 separate leases (baseline), ttl ${TTL_MS / 1000} s`,
        figure: `${baseline} (n=${rounds} rounds)`,
        p50Ms: many1.p50,
        p99Ms: many1.p99,
      },
      {
        name: `renewals: 1 leadership, ${COMPONENTS.length} published (${JOBS} job managers)`,
        figure:
          `${perSecond(1)} renewals/s, ${fmt(perTtl(wall.one))} wall + ${fmt(cpuPerTtl(cpu.one))} server CPU per TTL; ` +
          `${COMPONENTS.length}× fewer renewals; server CPU ${cpu.one > 0 ? `${(cpu.many / cpu.one).toFixed(1)}×` : 'under one tick:'} less`,
        baseline: 'the 103 separate leases',
        // Not a throughput: the wall time of a TTL's renewals, separate ÷ leadership (how many
        // times less the leadership costs).
        ratio: perTtl(wall.many) / perTtl(wall.one),
        p50Ms: one1.p50,
        p99Ms: one1.p99,
      },
    ];
  } finally {
    await env.stopServer(server);
  }
}
