/**
 * Tenant isolation (docs/design.md §8: a tenant flooding reads moves another cluster's
 * renewal p99 by no more than 20%): the p99 of one cluster's renewals, sent one after
 * another, while another tenant reads an 8 MiB execution plan over 50 connections without
 * pause (bench/floodWorker.ts, a process of its own), against the same renewals without
 * the flood, measured first in the same run on the same server.
 */
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { BenchEnv } from './env.js';
import { ok, post } from './post.js';
import { ms, summarize, type Row } from './stats.js';

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
  const samples = env.quick ? 200 : 1000;
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
    const quiet = await renewals();

    const flood = await env.node('bench/floodWorker.ts', [], { FLOOD_URL: `${flooded}/execution-plans/${jobId}`, FLOOD_CONNECTIONS: String(CONNECTIONS) }, 'ready');
    let counts = { served: 0, refused: 0, failed: 0, bytes: 0 };
    createInterface({ input: flood.stdout! }).on('line', (l) => {
      if (l.startsWith('{')) counts = JSON.parse(l);
    });
    let loud;
    try {
      await new Promise((r) => setTimeout(r, 1000)); // the flood under way
      loud = await renewals();
    } finally {
      env.kill(flood);
    }
    const ratio = loud.p99 / quiet.p99;
    const fmt = (s: typeof quiet) => `p99 ${ms(s.p99)}, ${s.failed} of ${s.n} failed`;
    return [
      {
        name: 'renew while another tenant is quiet (baseline)',
        figure: fmt(quiet),
        p50Ms: quiet.p50,
        p99Ms: quiet.p99,
      },
      {
        name: `renew while another tenant reads an 8 MiB plan over ${CONNECTIONS} connections`,
        figure: `${fmt(loud)}; the flood: ${counts.served} reads served (${(counts.bytes / 2 ** 20).toFixed(0)} MiB), ${counts.refused} refused (429), ${counts.failed} failed`,
        baseline: `p99 ${ms(quiet.p99)} without the flood`,
        // Not a throughput: the renewal p99 with the flood ÷ without.
        ratio,
        p50Ms: loud.p50,
        p99Ms: loud.p99,
        budget: `p99 ≤ ${BUDGET}× baseline, none failed`,
        pass: ratio <= BUDGET && loud.failed === 0,
      },
    ];
  } finally {
    await env.stopServer(server);
  }
}
