/**
 * Tenant isolation (docs/design.md §8: a tenant flooding reads moves another cluster's
 * renewal p99 by no more than 20%): the p99 of one cluster's renewals, sent one after
 * another, while another tenant reads an 8 MiB execution plan over 50 connections without
 * pause (bench/floodWorker.ts, a process of its own at this one's priority, which honours
 * Retry-After), against the same renewals without the flood. Quiet and flood rounds
 * alternate on the same server, and the ratio is of the medians of their p99s, so that
 * other load on a shared machine weighs on both alike. The CPU each process used in each
 * kind of round (from /proc) says where the flood's time goes.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { BenchEnv } from './env.js';
import { ok, post } from './post.js';
import { mib, ms, summarize, type Row, type Summary } from './stats.js';

type Round = Summary & { failed: number };

const PLAN_BYTES = 8 * 1024 * 1024;
const CONNECTIONS = 50;
const BUDGET = 1.2;

function put(url: string, body: Buffer, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(`${res.statusCode} ${text}`));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function fairnessBenches(env: BenchEnv): Promise<Row[]> {
  const samples = env.quick ? 200 : 500;
  const rounds = Number(process.env.FAIRNESS_ROUNDS ?? (env.quick ? 3 : 5));
  const server = await env.server();
  try {
    const base = `${server.url}/v1/clusters`;
    // The flooding tenant's cluster, with a plan written under its dispatcher's lease.
    const flooded = `${base}/bench-flood-${randomBytes(4).toString('hex')}`;
    const jobId = randomBytes(16).toString('hex');
    const { leader: dispatcher } = await ok(`${flooded}/leaders/dispatcher/campaign`, { contenderId: 'd', ttlMs: 300_000 });
    const plan = randomBytes(PLAN_BYTES);
    // A server just started on a busy machine may shed it (503 Overloaded): again, shortly.
    for (let attempt = 1; ; attempt++) {
      const status = await put(`${flooded}/execution-plans/${jobId}`, plan, { 'x-fencing-token': String(dispatcher.fencingToken) });
      if (status.startsWith('200')) break;
      if (!status.startsWith('503') || attempt === 10) throw new Error(`storing the plan answered ${status}`);
      await new Promise((r) => setTimeout(r, 1000));
    }

    // The other cluster: one lease, renewed one renewal after another.
    const calm = `${base}/bench-calm-${randomBytes(4).toString('hex')}`;
    const { leader } = await ok(`${calm}/leaders/dispatcher/campaign`, { contenderId: 'r', ttlMs: 10_000 });
    const renew = { contenderId: 'r', sessionId: leader.sessionId };
    const renewals = async () => {
      const out: number[] = [];
      let failed = 0;
      for (let i = 0; i < samples; i++) {
        const t0 = performance.now();
        const r = await post(`${calm}/leaders/dispatcher/renew`, renew);
        out.push(performance.now() - t0);
        if (r.status !== 200) failed++;
      }
      return { ...summarize(out), failed };
    };
    for (let i = 0; i < 50; i++) await ok(`${calm}/leaders/dispatcher/renew`, renew); // warm-up

    /** A flood under way; `counts` are its latest (cumulative), every 200 ms. */
    const startFlood = async () => {
      const child = await env.node('bench/floodWorker.ts', [], { FLOOD_URL: `${flooded}/execution-plans/${jobId}`, FLOOD_CONNECTIONS: String(CONNECTIONS) }, 'ready');
      const flood = { child, counts: { served: 0, refused: 0, failed: 0, bytes: 0 }, at: performance.now() };
      createInterface({ input: child.stdout! }).on('line', (l) => {
        if (!l.startsWith('{')) return;
        flood.counts = JSON.parse(l);
        flood.at = performance.now();
      });
      await new Promise((r) => setTimeout(r, 1000));
      return flood;
    };

    // Where the time goes: CPU seconds of each process over each kind of round.
    const procs = { server: server.pid!, redis: env.redis.child!.pid!, bench: process.pid };
    const cpu = { quiet: new Cpu(), flood: new Cpu() };
    const quiet: Round[] = [];
    const loud: Round[] = [];
    let counts = { served: 0, refused: 0, failed: 0, bytes: 0 };
    let floodMs = 0;
    // One flood, not measured, before the rounds: the server's first reads of the plan and
    // first 429s (code compiled, buffers grown) are no tenant's steady cost.
    env.kill((await startFlood()).child);
    // Interleaved, so that whatever else loads the machine weighs on both kinds alike.
    for (let round = 0; round < rounds; round++) {
      const q = cpu.quiet.start(procs);
      quiet.push(await renewals());
      cpu.quiet.stop(q);
      const flood = await startFlood();
      try {
        const [from, fromAt] = [flood.counts, flood.at];
        const f = cpu.flood.start({ ...procs, flood: flood.child.pid! });
        loud.push(await renewals());
        cpu.flood.stop(f);
        await new Promise((r) => setTimeout(r, 250)); // its counts of the round's end
        for (const k of ['served', 'refused', 'failed', 'bytes'] as const) counts[k] += flood.counts[k] - from[k];
        floodMs += flood.at - fromAt; // between the two counts, for its rate
      } finally {
        env.kill(flood.child);
      }
    }
    const p99s = (rs: Round[]) => rs.map((r) => r.p99);
    const quietP99 = median(p99s(quiet));
    const loudP99 = median(p99s(loud));
    const failed = (rs: Round[]) => rs.reduce((n, r) => n + r.failed, 0);
    const ratio = loudP99 / quietP99;
    const list = (rs: Round[]) => p99s(rs).map((x) => x.toFixed(1)).join(', ');
    const n = rounds * samples;
    return [
      {
        name: `renew while another tenant is quiet (baseline; median of ${rounds} rounds' p99)`,
        figure: `p99 ${ms(quietP99)} (rounds: ${list(quiet)} ms), ${failed(quiet)} of ${n} failed; CPU ${cpu.quiet.figure()}`,
        p50Ms: median(quiet.map((r) => r.p50)),
        p99Ms: quietP99,
      },
      {
        name: `renew while another tenant reads an 8 MiB plan over ${CONNECTIONS} connections (interleaved rounds)`,
        figure:
          `p99 ${ms(loudP99)} (rounds: ${list(loud)} ms), ${failed(loud)} of ${n} failed; CPU ${cpu.flood.figure()}; ` +
          `the flood: ${counts.served} reads served, ${mib(counts.bytes)} at ${mib((counts.bytes / floodMs) * 1000)}/s, ${counts.refused} refused (429), ${counts.failed} failed`,
        baseline: `p99 ${ms(quietP99)} in the quiet rounds`,
        // Not a throughput: the median of the flood rounds' renewal p99s ÷ the quiet rounds'.
        ratio,
        p50Ms: median(loud.map((r) => r.p50)),
        p99Ms: loudP99,
        budget: `p99 ≤ ${BUDGET}× baseline, none failed`,
        pass: ratio <= BUDGET && failed(loud) === 0,
      },
    ];
  } finally {
    await env.stopServer(server);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** A process's CPU time so far (user + system), ms, from /proc; 0 where there is none. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime: in ticks of 10 ms
  } catch {
    return 0;
  }
}

/** CPU used per process over some spans of wall time, as a share of one core. */
class Cpu {
  private readonly used = new Map<string, number>();
  private wallMs = 0;

  start(pids: Record<string, number>) {
    return { pids, at: performance.now(), from: Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)])), ms: 0 };
  }

  stop(span: ReturnType<Cpu['start']>): void {
    span.ms = performance.now() - span.at;
    this.wallMs += span.ms;
    for (const [k, p] of Object.entries(span.pids)) this.used.set(k, (this.used.get(k) ?? 0) + cpuMs(p) - span.from[k]);
  }

  /** "server 45%, redis 12%, …" of one core. */
  figure(): string {
    return [...this.used].map(([k, used]) => `${k} ${Math.round((used / this.wallMs) * 100)}%`).join(', ');
  }
}
