/**
 * `npm run bench -- --only stream`: renewals over the renewal stream (`GET /v1/renewals`)
 * against the bare route and against HTTP renewals of the same leases, in the same rounds
 * (fresh processes each, as `rounds` in http.ts): N leases over M streams, each keeping
 * renewals awaiting their answers, as many in flight in all as the HTTP load's connections.
 * No budget (docs/design.md, "Where the code stands"). The server's CPU per renewal (its
 * process and Redis's, from /proc) is printed beside the rates: on a busy machine it moves
 * far less than a rate does.
 */
import type { BenchEnv } from './env.js';
import type { LoadResult, LoadSpec } from './loadWorker.js';
import { CONNECTIONS, leaderRead, renewSpec, rounds, throughputRow } from './http.js';
import type { Row } from './stats.js';

/** Streams and renewals in flight on each: 50 × 1 (a stream per HTTP connection), and
 * 5 × 10 (one client holding many leases: fewer streams, more on each). */
const SHAPES = [
  { streams: CONNECTIONS, inFlight: 1 },
  { streams: 5, inFlight: CONNECTIONS / 5 },
];

export async function streamBenches(env: BenchEnv): Promise<Row[]> {
  const durationS = env.quick ? 2 : 4;
  const leases = env.quick ? 200 : 1000;
  const setup = await env.server();
  const read = await leaderRead(setup.url);
  const renewals = await renewSpec(setup.url, leases);
  await env.stopServer(setup);

  const [bare, http, ...streamed] = await rounds(env, env.quick ? 1 : 7, durationS, async () => {
    const [b, server] = await Promise.all([env.bare(read.bytes, read.path), env.server()]);
    const ws = server.url.replace(/^http/, 'ws') + '/v1/renewals';
    const pids = [server.pid!, env.redis.child!.pid!];
    return {
      specs: [
        { url: b.url, connections: CONNECTIONS, durationS },
        { ...renewals, url: server.url },
        ...SHAPES.map((s) => ({ ...streamSpec(renewals, s.streams, s.inFlight), url: ws })),
      ],
      pids: [undefined, pids, ...SHAPES.map(() => pids)],
      stop: async () => {
        b.stop();
        await env.stopServer(server);
      },
    };
  });
  const n = leases.toLocaleString('en-US');
  // A rate row, its figure followed by the server's CPU per renewal (median over rounds).
  const withCpu = (row: Row, runs: LoadResult[]): Row => {
    const cpu = [...runs.map((r) => r.cpuUs ?? 0)].sort((a, b) => a - b)[Math.floor(runs.length / 2)];
    return { ...row, figure: `${row.figure}, ${cpu.toFixed(1)} µs CPU/renewal` };
  };
  const rows: Row[] = [withCpu(throughputRow(`renew over HTTP, ${n} leases, ${CONNECTIONS} connections`, http, bare), http)];
  for (const [i, s] of SHAPES.entries()) {
    const name = `renew over the stream, ${n} leases over ${s.streams} streams × ${s.inFlight} in flight`;
    rows.push(withCpu(throughputRow(name, streamed[i], bare), streamed[i]));
    rows.push(throughputRow(`${name}, against HTTP renew`, streamed[i], http, undefined, 'HTTP renew'));
  }
  return rows;
}

/** The renewals of `http` (renewSpec's) as renewal stream messages, ids their indexes. */
export function streamSpec(http: LoadSpec, streams: number, inFlight: number): LoadSpec {
  const messages = http.requests!.map((r, id) => {
    const [, clusterId, component] = /^\/v1\/clusters\/([^/]+)\/leaders\/(.+)\/renew$/.exec(r.path)!;
    return JSON.stringify({ id, clusterId, component, ...JSON.parse(r.body!) });
  });
  return { url: '', connections: streams, durationS: 1, messages, inFlight };
}
